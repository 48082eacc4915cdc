package wire

import "strings"

// REGISTER_BROKER ext fields raftmq brokers add (plain brokers send neither);
// the namesrv builds write aliases from them.
const (
	// ExtMemberID is the member's dLegerSelfId, stable across restarts.
	ExtMemberID = "raftmqMemberId"
	// ExtMemberOrdinal is the member's 0-based index in dLegerPeers; its
	// stable brokerId is 1+ordinal.
	ExtMemberOrdinal = "raftmqMemberOrdinal"
	// ExtUnreachable, sent by the leader only, lists the member ids
	// (comma-separated, "" = none) it has not heard from lately; the namesrv
	// leaves them out of topic routes for that leader's term.
	ExtUnreachable = "raftmqUnreachable"
)

// AliasSeparator joins a brokerName and a member id into the write alias
// brokerName "broker-a@n1" that raftmq namesrvs add to topic routes; real
// brokerNames and member ids may not contain it.
const AliasSeparator = "@"

// AliasName is the write-alias brokerName of member memberID of group brokerName.
func AliasName(brokerName, memberID string) string {
	return brokerName + AliasSeparator + memberID
}

// SplitAlias splits a write-alias brokerName into its group and member id;
// ok is false for a name that is no alias.
func SplitAlias(name string) (brokerName, memberID string, ok bool) {
	return strings.Cut(name, AliasSeparator)
}
