package remoting

import "syscall"

const (
	// syscallReset: a server closing with unread bytes may reset the connection.
	syscallReset  = syscall.ECONNRESET
	syscallEMFILE = syscall.EMFILE
)
