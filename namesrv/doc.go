// Package namesrv is raftmq's name server: the route registry RocketMQ clients
// and brokers talk to (docs/protocol.md §2.3, §5.1, §5.2, §5.6, §5.7). It owns the
// route table (broker live table, broker groups, clusters, topic queues), the KV
// config store and the remoting handlers serving them. Several namesrvs run
// independently with no sync between them; every broker registers with each.
//
// The route table (RouteTable) is pure state with the time passed in, so its
// rules are tested without I/O; Server wires it to remoting handlers, a periodic
// expiry scan and connection-close events.
//
// # Requests
//
// REGISTER_BROKER (103), UNREGISTER_BROKER (104), GET_ROUTEINFO_BY_TOPIC (105),
// GET_BROKER_CLUSTER_INFO (106), GET_ALL_TOPIC_LIST_FROM_NAMESERVER (206),
// GET_TOPICS_BY_CLUSTER (224), DELETE_TOPIC_IN_NAMESRV (216), PUT/GET/DELETE_KV_CONFIG
// (100/101/102), GET_KVLIST_BY_NAMESPACE (219), WIPE/ADD_WRITE_PERM_OF_BROKER
// (205/327), QUERY_DATA_VERSION (322), BROKER_HEARTBEAT (904), GET_NAMESRV_CONFIG
// (319). UPDATE_NAMESRV_CONFIG (318) is refused; other codes get the remoting
// server's REQUEST_CODE_NOT_SUPPORTED. Malformed requests get INVALID_PARAMETER
// or SYSTEM_ERROR with a remark and change nothing.
//
// # Liveness
//
// A broker is live from its registration until it unregisters, its connection
// closes, or it stays silent (no REGISTER_BROKER, BROKER_HEARTBEAT or unchanged
// QUERY_DATA_VERSION) longer than its heartbeatTimeoutMillis or Config.BrokerTimeout
// (120 s); the scan runs every Config.ScanInterval (10 s). When a group loses its
// last address, the group, its cluster membership and its topic queues go too.
//
// # Topic queues
//
// The brokerId-0 registration's topicConfigTable defines the group's queues; it
// is applied when its dataVersion differs from the one last registered from that
// address or the address newly took the id, and topics missing from it lose
// that group's queues. While no live registration claims brokerId 0 (an
// election), any member's table is used: Raft replicates topic configs, so members agree, and
// readers keep their routes. WIPE/ADD_WRITE_PERM change the namesrv's copy only,
// until the next changed registration, as in Java.
//
// # Leader fencing (raftmq's rule; Java only has its weaker precursor)
//
// Brokers put their Raft term in the RegisterBrokerBody's
// dataVersion.stateVersion. For each brokerName:
//
//   - brokerId 0 belongs to the registration with the highest term. A
//     registration of another address for an id held by a live broker with a
//     higher term is refused (SYSTEM_ERROR, remark "register broker failed: stale
//     term: ..."), and nothing changes — not even the refused broker's liveness.
//     For brokerId 0 an equal term > 0 from another address is refused too: Raft
//     elects at most one leader per term. Term 0 carries no fencing information
//     (plain Java brokers): then the last registration wins, as in Java.
//   - A higher term (or the same address again) takes brokerId 0 at once: the old
//     holder's address leaves brokerAddrs[0]; when it re-registers as a follower
//     it appears under its new id.
//   - One address holds one brokerId: re-registering under another id removes the
//     address's old id entry (and under another brokerName, its old group entry).
//   - A brokerName belongs to one cluster: a registration naming another
//     clusterName is refused while the group has live members.
//   - A registration carrying a lower term than the same address last registered
//     is refused as overtaken in flight (a follower registration that arrives after
//     the promotion must not demote the new leader).
//
// Fencing compares against live registrations only: once the holder expired or
// its connection closed, any term may register. For brokerId 0 the holder's
// term is the term it took id 0 with, not its latest registration's.
//
// # raftmq members (ext raftmqMemberId, raftmqMemberOrdinal)
//
// A raftmq broker registers its dLegerSelfId as raftmqMemberId and its index
// in dLegerPeers as raftmqMemberOrdinal; its stable brokerId is 1+ordinal (a
// follower registers exactly that id; without the ordinal field the follower's
// id gives it). For a group whose brokers are members:
//
//   - The group is not routable (absent from topic routes) until some member
//     has registered as brokerId 0: a route without brokerId 0 makes the Go
//     client drop the group's write queues until its next 30 s refresh.
//   - brokerId 0 then stays with the last leader until a registration with a
//     higher term takes it, even when that leader steps down, expires or
//     unregisters (a graceful stop unregisters before the successor is
//     elected). Its address may then refuse connections or answer "not
//     leader"; clients retry those on another brokerName, whereas without
//     brokerId 0 they lose the group's queues for 30 s. Raft elects the
//     successor (which registers within about a second) or the group has no
//     quorum and could not take writes through any address. The claim ends
//     only with the group, when no member is live.
//   - Topic routes list every live member at its stable id, the leader too
//     (pulls redirected to a member's stable id find it); cluster info lists a
//     live leader once, at 0.
//   - One member, one address: a member registering from a new address
//     removes its old registration.
//
// # Write aliases
//
// For a group with at least two live members and a topic with PERM_WRITE, the
// route holds QueueData brokerName with the topic's perm minus WRITE (omitted
// when the topic lacks READ) and, per live member m sorted by member id,
// QueueData "brokerName@m" (perm minus READ, same queue numbers) with
// BrokerData "brokerName@m" = {0: m's address}. Producers, which skip
// non-writable queues, spread sends over the members and retry another member
// when one fails; consumers, which skip non-readable ones, see the group once.
// Queue q of an alias is queue q of the group. Topics without WRITE, groups
// with one live member and plain brokers get no aliases, and the order topic
// conf (KV namespace ORDER_TOPIC_CONFIG) is passed through untouched. Aliases
// never appear in cluster info, topic lists or TopicsByCluster (which, like
// routes, leave out a raftmq group before its first leader), and
// WIPE/ADD_WRITE_PERM take the group's name (wiping removes the aliases).
// brokerNames may not contain '@'.
//
// # Unreachable members (ext raftmqUnreachable)
//
// A leader's registration (a member registering as brokerId 0) lists the
// member ids it has not heard from lately, comma-separated; topic routes
// then leave those members out (no write alias, no stable-id entry) so
// clients stop sending to and pulling from a paused or dead follower long
// before its registration expires. Cluster info still lists them. The view
// is the leader's, for its term:
//
//   - Each registration of the brokerId-0 holder replaces it; one listing
//     nobody (or without the field) restores everyone. Anyone else's list is
//     ignored, and fencing refuses a deposed leader's.
//   - A member's own registrations do not restore it: a follower cut off
//     from its leader still reaches the namesrv, and Raft, not the namesrv,
//     knows whether it replicates. Only the leader hearing from it again
//     does.
//   - The view ends with its sender's hold on brokerId 0 in that term: a new
//     leader or term, the leader registering as follower, or its
//     registration going (expiry, unregistration, closed connection).
//   - The leader itself is never left out, nor are all members.
//
// # Choices
//
// Compressed RegisterBrokerBody (Java's compressedRegister=true) is answered with
// a clear SYSTEM_ERROR; raftmq brokers send JSON. A body with any invalid topic
// (name outside ^[%|a-zA-Z0-9_-]+$ or longer than 255 bytes, queue counts outside
// 0..16384, unknown perm bits) is refused as a whole, so no route ever carries
// something a client cannot handle; the broker's log shows the remark. KV config lives in memory only.
// Routes are emitted as compact standard JSON with quoted brokerId keys
// ({"0":"ip:port"}), which the Go client's hand-rolled parser and Java accept.
package namesrv
