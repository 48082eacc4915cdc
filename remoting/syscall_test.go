package remoting

import "syscall"

// syscallReset: a server closing with unread bytes may reset the connection.
const syscallReset = syscall.ECONNRESET
