package acl

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/raftmq/raftmq/remoting"
)

// Ext field names of ACL 1.0, as the official clients spell them.
const (
	FieldAccessKey     = "AccessKey"
	FieldSignature     = "Signature"
	FieldSecurityToken = "SecurityToken"
	// FieldOnBehalfOf (raftmq) names the client account a forwarded request
	// came from; it is honoured only when an admin account signed it.
	FieldOnBehalfOf = "raftmqOnBehalfOf"
)

// Canonical returns the bytes ACL 1.0 signs: the values of ext, sorted by key
// (byte order, which is Java's String order for the ASCII keys the protocol
// uses), without the Signature field and without the keys in skip, followed
// by the body. Values are concatenated without delimiters, as the clients do.
func Canonical(ext map[string]string, body []byte, skip ...string) []byte {
	keys := make([]string, 0, len(ext))
	n := len(body)
	for k, v := range ext {
		if k == FieldSignature || slices.Contains(skip, k) {
			continue
		}
		keys = append(keys, k)
		n += len(v)
	}
	slices.Sort(keys)
	out := make([]byte, 0, n)
	for _, k := range keys {
		out = append(out, ext[k]...)
	}
	return append(out, body...)
}

// Sign returns base64(HmacSHA1(secret, content)), the Signature field's value.
func Sign(content []byte, secret Secret) string {
	return base64.StdEncoding.EncodeToString(mac(content, secret))
}

func mac(content []byte, secret Secret) []byte {
	m := hmac.New(sha1.New, []byte(secret))
	m.Write(content)
	return m.Sum(nil)
}

// Verify reports whether ext's Signature signs ext and body with secret.
//
// Two canonical forms are accepted, because the official clients differ on
// one point: the Java client signs SecurityToken with the other fields, the
// Go client sends it but leaves it out of what it signs. The comparison is
// constant-time in the signature's content.
func Verify(ext map[string]string, body []byte, secret Secret) bool {
	got, err := base64.StdEncoding.DecodeString(ext[FieldSignature])
	if err != nil || len(got) != sha1.Size {
		return false
	}
	ok := hmac.Equal(got, mac(Canonical(ext, body), secret))
	if _, hasToken := ext[FieldSecurityToken]; hasToken {
		// Evaluate both forms whichever matched, so the time taken does not
		// say which one did.
		ok = hmac.Equal(got, mac(Canonical(ext, body, FieldSecurityToken), secret)) || ok
	}
	return ok
}

// SignRequest adds AccessKey (and SecurityToken when set) and Signature to
// ext, computed over ext and body as the official clients do; it is the
// client side of Verify, for raftmq's own clients (brokers registering with
// a namesrv that checks ACL, the admin tool).
func SignRequest(ext map[string]string, body []byte, c Credentials) {
	ext[FieldAccessKey] = c.AccessKey
	if c.SecurityToken != "" {
		ext[FieldSecurityToken] = c.SecurityToken
	}
	delete(ext, FieldSignature)
	ext[FieldSignature] = Sign(Canonical(ext, body), c.SecretKey)
}

// Credentials are what a client signs with.
type Credentials struct {
	AccessKey     string
	SecretKey     Secret
	SecurityToken string
}

// Secret is a secret key. It prints as a mask in every fmt verb and
// marshals as one, so it cannot leak into logs or config dumps by accident.
type Secret string

const secretMask = "******"

// String returns a mask, never the secret.
func (Secret) String() string { return secretMask }

// GoString returns a mask, never the secret.
func (Secret) GoString() string { return `"` + secretMask + `"` }

// MarshalText returns a mask, so JSON or YAML dumps of a config hide it too.
func (Secret) MarshalText() ([]byte, error) { return []byte(secretMask), nil }

// Signer returns a remoting.ClientConfig.Sign function signing every request
// with c, as the official clients' ACL hooks do.
func Signer(c Credentials) func(*remoting.Command) {
	return func(req *remoting.Command) {
		if req.ExtFields == nil {
			req.ExtFields = make(map[string]string)
		}
		body := req.Body
		if len(req.BodyParts) > 0 {
			body = append(append([]byte(nil), req.Body...), slices.Concat(req.BodyParts...)...)
		}
		SignRequest(req.ExtFields, body, c)
	}
}

// ForwardSigner returns a remoting.ClientConfig.Sign function for a member
// relaying a client's request: the fields the member adds break the client's
// signature, so the member signs with its own (admin) credentials c, and
// keeps the client's accessKey in FieldOnBehalfOf so that the receiver
// applies the client's permissions, not the member's.
func ForwardSigner(c Credentials) func(*remoting.Command) {
	sign := Signer(c)
	return func(req *remoting.Command) {
		if ak := req.Ext(FieldAccessKey); ak != "" && req.Ext(FieldOnBehalfOf) == "" {
			req.SetExt(FieldOnBehalfOf, ak)
		}
		sign(req)
	}
}

// ParseCredentials parses RocketMQ's innerClientAuthenticationCredentials
// value, {"accessKey":"…","secretKey":"…"}. Errors never quote the secret.
func ParseCredentials(s string) (Credentials, error) {
	var v struct {
		AccessKey string `json:"accessKey"`
		SecretKey string `json:"secretKey"`
	}
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return Credentials{}, errors.New(`acl: credentials: want {"accessKey":"…","secretKey":"…"}`)
	}
	if len(v.AccessKey) < minKeyLen || len(v.SecretKey) < minKeyLen {
		return Credentials{}, fmt.Errorf("acl: credentials: accessKey and secretKey need at least %d characters", minKeyLen)
	}
	return Credentials{AccessKey: v.AccessKey, SecretKey: Secret(v.SecretKey)}, nil
}
