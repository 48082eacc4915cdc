package acl

import (
	"fmt"
	"net/netip"
	"strconv"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/raftmq/raftmq/remoting"
)

// Refusal is why a request was not allowed. Its text is safe to send to the
// client and to log: it names the accessKey, never a secret.
type Refusal struct {
	AccessKey string
	Code      int32 // the request code
	Reason    string
}

func (r *Refusal) Error() string { return "acl: " + r.Reason }

// Authorizer authenticates requests against the current accounts and checks
// their permissions.
type Authorizer struct {
	accounts   func() *Accounts
	rules      map[int32]rule
	logger     hclog.Logger
	logLimit   *remoting.LogLimiter
	now        func() time.Time
	sendWindow time.Duration
}

// Option configures an Authorizer.
type Option func(*Authorizer)

// SendWindow refuses signed sends whose bornTimestamp is more than d away
// from this process's clock (0 = no check). ACL 1.0 signs no nonce, so a
// captured request can be replayed; a send, though, signs its bornTimestamp
// and its UNIQ_KEY. With d no longer than the broker's duplicate window
// (duplicateWindowSeconds), a replayed send is either refused here or
// answered from the duplicate table, and is never stored twice. Clients
// whose clock is off by more than d are refused with a remark saying so.
func SendWindow(d time.Duration) Option { return func(a *Authorizer) { a.sendWindow = d } }

// RefusalLogInterval is how often at most an Authorizer logs a refusal.
const RefusalLogInterval = 10 * time.Second

// NewAuthorizer returns an authorizer reading the accounts in force from
// accounts on every request (Store.Accounts), logging refusals to logger.
func NewAuthorizer(accounts func() *Accounts, logger hclog.Logger, opts ...Option) *Authorizer {
	return newAuthorizer(accounts, logger, nil, opts...)
}

// newAuthorizer takes the clock (nil = time.Now) for tests.
func newAuthorizer(accounts func() *Accounts, logger hclog.Logger, clock func() time.Time, opts ...Option) *Authorizer {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	if clock == nil {
		clock = time.Now
	}
	a := &Authorizer{
		accounts: accounts,
		rules:    rules(),
		logger:   logger,
		logLimit: remoting.NewLogLimiter(RefusalLogInterval, clock),
		now:      clock,
	}
	for _, o := range opts {
		o(a)
	}
	return a
}

// Check authenticates req, sent from remoteAddr, and authorizes it: nil if
// allowed, else a *Refusal. It reads req and never changes it.
func (a *Authorizer) Check(remoteAddr string, req *remoting.Command) error {
	ak := req.Ext(FieldAccessKey)
	refuse := func(format string, args ...any) error {
		return &Refusal{AccessKey: ak, Code: req.Code, Reason: fmt.Sprintf(format, args...)}
	}
	if ak == "" {
		return refuse("request %s is not signed: no AccessKey", remoting.CodeName(req.Code))
	}
	acc, ok := a.accounts().Lookup(ak)
	if !ok {
		return refuse("no account for accessKey %q", ak)
	}
	if !acc.Remote.Match(remoteAddr) {
		return refuse("accessKey %q may not be used from %s", ak, hostOf(remoteAddr))
	}
	if !Verify(req.ExtFields, req.Body, acc.SecretKey) {
		return refuse("signature check failed for accessKey %q", ak)
	}
	if reason := a.checkSendAge(req); reason != "" {
		return refuse("%s", reason)
	}
	if acc, ak, ok = a.effective(acc, req); !ok {
		return refuse("accessKey %q named by %s has no account", ak, FieldOnBehalfOf)
	}
	r, known := a.rules[req.Code]
	if !known {
		r = adminOnly
	}
	if r.admin && !acc.Admin {
		return refuse("request %s needs an admin account; accessKey %q is not one", remoting.CodeName(req.Code), ak)
	}
	if r.needs == nil {
		return nil
	}
	needs, err := r.needs(req)
	if err != nil {
		return refuse("cannot read the resources of %s: %v", remoting.CodeName(req.Code), err)
	}
	for _, n := range needs {
		if !acc.allows(n) {
			return refuse("accessKey %q has no %s permission on %s %q", ak, n.perm, n.kind, n.name)
		}
	}
	return nil
}

// MayUseTopic checks, for a request the hook already let through, that its
// account has perm (PermPub or PermSub) on topic: for handlers that learn the
// topic only after a lookup. CONSUMER_SEND_MSG_BACK copies the message at an
// offset, whatever its topic, into the caller's retry topic (SUB needed);
// END_TRANSACTION commits or rolls back the half message at an offset (PUB on
// its real topic needed). nil when allowed.
func (a *Authorizer) MayUseTopic(req *remoting.Command, topic string, perm Perm) error {
	ak := req.Ext(FieldAccessKey)
	acc, ok := a.accounts().Lookup(ak)
	if ok {
		acc, ak, ok = a.effective(acc, req)
	}
	if !ok {
		return &Refusal{AccessKey: ak, Code: req.Code, Reason: fmt.Sprintf("no account for accessKey %q", ak)}
	}
	if n := topicNeed(topic, perm); !acc.allows(n) {
		return &Refusal{AccessKey: ak, Code: req.Code, Reason: fmt.Sprintf("accessKey %q has no %s permission on %s %q", ak, n.perm, n.kind, n.name)}
	}
	return nil
}

// bornTimestampKey names the send header field holding bornTimestamp, per code.
var bornTimestampKey = map[int32]string{
	remoting.SendMessage: "bornTimestamp", remoting.SendReplyMessage: "bornTimestamp",
	remoting.SendMessageV2: "g", remoting.SendBatchMessage: "g", remoting.SendReplyMessageV2: "g",
}

// checkSendAge applies SendWindow: "" when req passes.
func (a *Authorizer) checkSendAge(req *remoting.Command) string {
	key, isSend := bornTimestampKey[req.Code]
	if a.sendWindow <= 0 || !isSend {
		return ""
	}
	ms, err := strconv.ParseInt(req.Ext(key), 10, 64)
	if err != nil {
		return fmt.Sprintf("a signed %s must carry its bornTimestamp", remoting.CodeName(req.Code))
	}
	if skew := a.now().Sub(time.UnixMilli(ms)).Abs(); skew > a.sendWindow {
		return fmt.Sprintf("bornTimestamp is %v away from the broker's clock (allowed %v): a replayed request, or the client's clock is wrong",
			skew.Round(time.Second), a.sendWindow)
	}
	return ""
}

// effective returns the account whose permissions apply to req, signed by
// signer: the client's named in FieldOnBehalfOf when an admin (a forwarding
// member) signed it, else the signer's. ok is false for an unknown client.
func (a *Authorizer) effective(signer *Account, req *remoting.Command) (acc *Account, accessKey string, ok bool) {
	onBehalf := req.Ext(FieldOnBehalfOf)
	if !signer.Admin || onBehalf == "" {
		return signer, signer.AccessKey, true
	}
	acc, ok = a.accounts().Lookup(onBehalf)
	return acc, onBehalf, ok
}

// allows reports whether the account may use n: an admin without resource
// lists may use every resource (as RocketMQ), others need owns.
func (acc *Account) allows(n need) bool {
	return acc.Admin && acc.TopicPerms == nil && acc.GroupPerms == nil || acc.owns(n)
}

// owns reports whether the account's permission on n's resource grants n.
func (acc *Account) owns(n need) bool {
	perms, def := acc.TopicPerms, acc.DefaultTopicPerm
	if n.kind == kindGroup {
		perms, def = acc.GroupPerms, acc.DefaultGroupPerm
	}
	if p, ok := perms[n.name]; ok {
		return p.grants(n.perm)
	}
	return def.grants(n.perm)
}

// Authenticate is the remoting.ServerConfig.Authenticate hook: nil lets the
// request through, otherwise the NO_PERMISSION response to send instead.
// Refusals are logged at most once per RefusalLogInterval.
func (a *Authorizer) Authenticate(c *remoting.Conn, req *remoting.Command) *remoting.Command {
	err := a.Check(c.RemoteAddr(), req)
	if err == nil {
		return nil
	}
	if ok, suppressed := a.logLimit.Allow(); ok {
		a.logger.Warn("request refused", "remote", c.RemoteAddr(), "code", req.Code,
			"reason", err.Error(), "refused_since_last_log", suppressed)
	}
	return remoting.NewResponse(remoting.NoPermission, err.Error())
}

func hostOf(addr string) string {
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		return ap.Addr().String()
	}
	return addr
}
