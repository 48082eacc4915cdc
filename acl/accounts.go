package acl

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Perm is a set of permissions on a topic or group, with RocketMQ's bits.
type Perm uint8

// Permission bits (RocketMQ's Permission: DENY 1, ANY 2, PUB 4, SUB 8).
const (
	PermDeny Perm = 1
	PermAny  Perm = 2 // needed: any of PUB or SUB will do
	PermPub  Perm = 4
	PermSub  Perm = 8
)

// ParsePerm parses DENY, PUB, SUB, PUB|SUB or SUB|PUB (any case, spaces
// allowed). Unlike RocketMQ, which reads anything else as DENY, it refuses
// other text, so a typo is reported rather than silently denying.
func ParsePerm(s string) (Perm, error) {
	switch strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(s), " ", "")) {
	case "DENY":
		return PermDeny, nil
	case "PUB":
		return PermPub, nil
	case "SUB":
		return PermSub, nil
	case "PUB|SUB", "SUB|PUB":
		return PermPub | PermSub, nil
	}
	return 0, fmt.Errorf("permission %q: want DENY, PUB, SUB or PUB|SUB", s)
}

func (p Perm) String() string {
	switch {
	case p&PermDeny != 0:
		return "DENY"
	case p&(PermPub|PermSub) == PermPub|PermSub:
		return "PUB|SUB"
	case p&PermPub != 0:
		return "PUB"
	case p&PermSub != 0:
		return "SUB"
	case p&PermAny != 0:
		return "ANY"
	}
	return "NONE"
}

// grants reports whether owned permission satisfies needed (RocketMQ's
// Permission.checkPermission): ANY is met by PUB or SUB; DENY meets nothing.
func (owned Perm) grants(needed Perm) bool {
	if owned&PermDeny != 0 {
		return false
	}
	if needed&PermAny != 0 && owned&(PermPub|PermSub) != 0 {
		return true
	}
	return needed&owned&(PermPub|PermSub) != 0
}

// Account is one accessKey's secret and permissions.
type Account struct {
	AccessKey        string
	SecretKey        Secret
	Admin            bool
	Remote           AddrMatcher // where the account may be used from; empty = anywhere
	DefaultTopicPerm Perm        // for topics not in TopicPerms (default DENY)
	DefaultGroupPerm Perm        // for groups not in GroupPerms (default DENY)
	TopicPerms       map[string]Perm
	GroupPerms       map[string]Perm
}

// Accounts is a parsed accounts file: accounts by accessKey.
type Accounts struct {
	byKey map[string]*Account
	// Warnings are things the file said that are not applied (e.g.
	// globalWhiteRemoteAddresses); the Store logs them on load.
	Warnings []string
}

// Lookup returns the account of accessKey.
func (a *Accounts) Lookup(accessKey string) (*Account, bool) {
	if a == nil {
		return nil, false
	}
	acc, ok := a.byKey[accessKey]
	return acc, ok
}

// Len returns the number of accounts.
func (a *Accounts) Len() int { return len(a.byKey) }

// MaxFileSize bounds an accounts file; a bigger one is refused unread.
const MaxFileSize = 4 << 20

// fileFormat is plain_acl.yml as RocketMQ 4.x writes it.
type fileFormat struct {
	GlobalWhiteRemoteAddresses []string      `yaml:"globalWhiteRemoteAddresses"`
	Accounts                   []fileAccount `yaml:"accounts"`
	DataVersion                yaml.Node     `yaml:"dataVersion"` // written by RocketMQ's admin API; not used
}

type fileAccount struct {
	AccessKey          string   `yaml:"accessKey"`
	SecretKey          string   `yaml:"secretKey"`
	WhiteRemoteAddress string   `yaml:"whiteRemoteAddress"`
	Admin              bool     `yaml:"admin"`
	DefaultTopicPerm   string   `yaml:"defaultTopicPerm"`
	DefaultGroupPerm   string   `yaml:"defaultGroupPerm"`
	TopicPerms         []string `yaml:"topicPerms"`
	GroupPerms         []string `yaml:"groupPerms"`
}

// RocketMQ requires keys of at least 6 characters; so do we.
const minKeyLen = 6

// ParseAccounts parses a plain_acl.yml-style file. Unknown keys, duplicate
// accessKeys, short keys and unknown permissions are errors: the whole file
// is refused, nothing of it applies. Errors never quote a secretKey.
func ParseAccounts(data []byte) (*Accounts, error) {
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("acl: accounts file of %d bytes exceeds %d", len(data), MaxFileSize)
	}
	var f fileFormat
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("acl: accounts file: %w", redactYAMLError(err))
	}
	out := &Accounts{byKey: make(map[string]*Account, len(f.Accounts))}
	if len(f.GlobalWhiteRemoteAddresses) > 0 {
		out.Warnings = append(out.Warnings, "globalWhiteRemoteAddresses is ignored: an address never replaces a signature")
	}
	for i, fa := range f.Accounts {
		acc, err := fa.account()
		if err != nil {
			return nil, fmt.Errorf("acl: account %d (accessKey %q): %w", i, fa.AccessKey, err)
		}
		if _, dup := out.byKey[acc.AccessKey]; dup {
			return nil, fmt.Errorf("acl: account %d: accessKey %q appears twice", i, acc.AccessKey)
		}
		out.byKey[acc.AccessKey] = acc
	}
	return out, nil
}

// redactYAMLError drops the parser's quotation of the offending text, which
// could be part of a secret; the line number stays.
func redactYAMLError(err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return fmt.Errorf("%d field(s) of the wrong type or unknown (first: %s)", len(te.Errors), firstLineRef(te.Errors))
	}
	return err
}

// firstLineRef keeps "line N" and the field name of a yaml.v3 type error,
// dropping any quoted value.
func firstLineRef(errs []string) string {
	if len(errs) == 0 {
		return "?"
	}
	e := errs[0]
	if i := strings.Index(e, "`"); i >= 0 {
		e = strings.TrimSpace(e[:i]) + " <value>"
	}
	return e
}

func (fa fileAccount) account() (*Account, error) {
	if len(fa.AccessKey) < minKeyLen {
		return nil, fmt.Errorf("accessKey must have at least %d characters", minKeyLen)
	}
	if len(fa.SecretKey) < minKeyLen {
		return nil, fmt.Errorf("secretKey must have at least %d characters", minKeyLen)
	}
	remote, err := ParseAddrMatcher(fa.WhiteRemoteAddress)
	if err != nil {
		return nil, fmt.Errorf("whiteRemoteAddress: %w", err)
	}
	acc := &Account{
		AccessKey:        fa.AccessKey,
		SecretKey:        Secret(fa.SecretKey),
		Admin:            fa.Admin,
		Remote:           remote,
		DefaultTopicPerm: PermDeny,
		DefaultGroupPerm: PermDeny,
	}
	if fa.DefaultTopicPerm != "" {
		if acc.DefaultTopicPerm, err = ParsePerm(fa.DefaultTopicPerm); err != nil {
			return nil, fmt.Errorf("defaultTopicPerm: %w", err)
		}
	}
	if fa.DefaultGroupPerm != "" {
		if acc.DefaultGroupPerm, err = ParsePerm(fa.DefaultGroupPerm); err != nil {
			return nil, fmt.Errorf("defaultGroupPerm: %w", err)
		}
	}
	if acc.TopicPerms, err = parseResourcePerms(fa.TopicPerms); err != nil {
		return nil, fmt.Errorf("topicPerms: %w", err)
	}
	if acc.GroupPerms, err = parseResourcePerms(fa.GroupPerms); err != nil {
		return nil, fmt.Errorf("groupPerms: %w", err)
	}
	return acc, nil
}

// parseResourcePerms parses entries "name=PERM"; nil for none.
func parseResourcePerms(entries []string) (map[string]Perm, error) {
	if len(entries) == 0 {
		return nil, nil
	}
	out := make(map[string]Perm, len(entries))
	for _, e := range entries {
		name, perm, ok := strings.Cut(e, "=")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			return nil, fmt.Errorf("entry %q: want name=PERM", e)
		}
		p, err := ParsePerm(perm)
		if err != nil {
			return nil, fmt.Errorf("entry %q: %w", e, err)
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("%q appears twice", name)
		}
		out[name] = p
	}
	return out, nil
}
