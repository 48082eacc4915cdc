package remoting

// Request codes raftmq adds for its Raft groups. They sit far above RocketMQ's own
// code space (which stops in the low thousands outside the 200050+ POP range) so
// that they never collide with a code an official client or tool sends.
const (
	// RaftStatus asks a broker for its node's view of the Raft group (JSON body).
	RaftStatus int32 = 9100
	// RaftTransferLeader asks a group's leader to hand leadership over; ext
	// `targetId` names the node (dLegerSelfId), absent = any up-to-date peer.
	RaftTransferLeader int32 = 9101
)
