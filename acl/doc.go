// Package acl owns request authentication and authorization compatible with
// RocketMQ ACL 1.0, the scheme the official clients implement when given
// credentials (primitive.Credentials in the Go client):
//
//   - Signature: a client sends ext fields AccessKey and Signature (and
//     optionally SecurityToken). Signature is base64(HmacSHA1(secretKey,
//     values of all other ext fields sorted by key, then the body)). Canonical
//     builds those bytes exactly as the clients do; Verify compares in
//     constant time (hmac.Equal).
//   - Accounts: a plain_acl.yml-style file (ParseAccounts, Store), reloaded
//     when its modification time or size changes; a file that does not parse
//     is refused whole and the previous accounts stay in force.
//   - Authorizer: every request code is classified (codes.go) as needing
//     publish or subscribe permission on the topics and groups it names,
//     needing an admin account, or only a valid signature. Retry topics
//     (%RETRY%G) are resources of their group G. Codes this package does not
//     know need an admin account, so a handler added without a table entry
//     fails closed.
//   - Hook: a remoting.ServerConfig.Authenticate function that answers a
//     refused request NO_PERMISSION (16) with a remark saying why, before the
//     request reaches any handler, so a refused request changes nothing.
//
// Invariants and deliberate departures from RocketMQ's PlainPermissionManager:
//
//   - A whitelisted address never replaces the signature. whiteRemoteAddress
//     only restricts where an account may be used from; globalWhiteRemoteAddresses
//     is parsed and ignored (with a warning), so such a file fails closed.
//   - Secrets (secretKey) never reach a log line, an error or fmt output:
//     they are held as Secret, whose String and GoString print a mask.
//   - Refusals are logged at most once per interval per Authorizer (the rest
//     counted), so a flood of bad requests cannot flood the log.
//   - ACL 1.0 signs no timestamp or nonce and binds no field names, so a
//     captured request can be replayed; that is the protocol the official
//     clients speak. Sends do sign their bornTimestamp and UNIQ_KEY: with
//     SendWindow a stale send is refused and a fresh replay falls to the
//     broker's duplicate table. Other replays need a new scheme (or TLS).
//   - Raft members forwarding a client's request re-sign it with their own
//     admin credentials (ForwardSigner): the fields they add break the
//     client's signature, which the first hop checked. The client's accessKey
//     travels in raftmqOnBehalfOf, honoured only under an admin's signature,
//     so the leader still judges the request with the client's permissions.
//   - No package-level mutable state: accounts live in a Store passed in.
package acl
