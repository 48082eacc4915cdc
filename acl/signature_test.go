package acl

import (
	"fmt"
	"maps"
	"strings"
	"testing"
)

func TestSignMatchesTheGoClientsPublishedVector(t *testing.T) {
	// rocketmq-client-go internal/remote/interceptor_test.go: Test_CalculateSignature.
	got := Sign([]byte("Hello RocketMQ Client ACL Feature"), "adiaushdiaushd")
	if got != "tAb/54Rwwcq+pbH8Loi7FWX4QSQ=" {
		t.Fatalf("Sign = %s", got)
	}
}

// goClientRequest is a V2 send header and body as signed by the official Go
// client's ACLInterceptor (run verbatim, its types stubbed): credentials
// RocketMQ / 12345678, with and without SecurityToken "tok-1". Both gave
// upDWwtMpH6WOsKZA/1J3gLnNKw0=, because that client leaves SecurityToken out
// of what it signs.
func goClientRequest(token string) (map[string]string, []byte) {
	ext := map[string]string{
		"b": "TopicTest", "a": "ProducerGroupName", "e": "3", "i": "UNIQ_KEY\x01ABC\x02", "m": "false", "empty": "",
		FieldAccessKey: "RocketMQ", FieldSignature: "upDWwtMpH6WOsKZA/1J3gLnNKw0=",
	}
	if token != "" {
		ext[FieldSecurityToken] = token
	}
	return ext, []byte("Hello RocketMQ")
}

func TestVerifyAcceptsTheGoClientsSignature(t *testing.T) {
	for _, token := range []string{"", "tok-1"} {
		ext, body := goClientRequest(token)
		if !Verify(ext, body, "12345678") {
			t.Fatalf("token %q: the official client's signature refused", token)
		}
		if Verify(ext, body, "12345679") {
			t.Fatalf("token %q: accepted with the wrong secret", token)
		}
	}
}

func TestVerifyRefusesAnyChange(t *testing.T) {
	ext, body := goClientRequest("")
	for name, mutate := range map[string]func(map[string]string, []byte) (map[string]string, []byte){
		"value changed": func(e map[string]string, b []byte) (map[string]string, []byte) { e["e"] = "4"; return e, b },
		"field added":   func(e map[string]string, b []byte) (map[string]string, []byte) { e["x"] = "1"; return e, b },
		"field dropped": func(e map[string]string, b []byte) (map[string]string, []byte) { delete(e, "b"); return e, b },
		"body changed":  func(e map[string]string, b []byte) (map[string]string, []byte) { return e, []byte("Hello RocketMQ!") },
		"body dropped":  func(e map[string]string, b []byte) (map[string]string, []byte) { return e, nil },
		"access key": func(e map[string]string, b []byte) (map[string]string, []byte) {
			e[FieldAccessKey] = "RocketMQ2"
			return e, b
		},
		"no signature": func(e map[string]string, b []byte) (map[string]string, []byte) {
			delete(e, FieldSignature)
			return e, b
		},
		"signature noise": func(e map[string]string, b []byte) (map[string]string, []byte) {
			e[FieldSignature] = "%%%"
			return e, b
		},
		"short signature": func(e map[string]string, b []byte) (map[string]string, []byte) {
			e[FieldSignature] = "AAAA"
			return e, b
		},
	} {
		e, b := mutate(maps.Clone(ext), append([]byte(nil), body...))
		if Verify(e, b, "12345678") {
			t.Errorf("%s: still verified", name)
		}
	}
}

func TestSignRequestRoundTripsThroughVerify(t *testing.T) {
	for _, token := range []string{"", "tok"} {
		ext := map[string]string{"topic": "T", "queueId": "1", FieldSignature: "stale"}
		SignRequest(ext, []byte("body"), Credentials{AccessKey: "admin1", SecretKey: "s3cret-key", SecurityToken: token})
		if ext[FieldAccessKey] != "admin1" || !Verify(ext, []byte("body"), "s3cret-key") {
			t.Fatalf("token %q: self-signed request refused: %v", token, ext)
		}
	}
}

func TestCanonicalSortsByKeyAndSkipsSignature(t *testing.T) {
	got := string(Canonical(map[string]string{"b": "2", "a": "1", "Signature": "x", "C": "0"}, []byte("!")))
	if got != "012!" {
		t.Fatalf("Canonical = %q", got)
	}
}

func TestSecretNeverPrints(t *testing.T) {
	acc := Account{AccessKey: "ak-visible", SecretKey: "TOPSECRET-42"}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X"} {
		if out := fmt.Sprintf(verb, acc); strings.Contains(out, "TOPSECRET") || strings.Contains(out, fmt.Sprintf("%x", "TOPSECRET")) {
			t.Errorf("%s printed the secret: %s", verb, out)
		}
		if out := fmt.Sprintf(verb, acc.SecretKey); strings.Contains(out, "TOPSECRET") {
			t.Errorf("%s printed the secret: %s", verb, out)
		}
	}
}

func FuzzCanonicalVerify(f *testing.F) {
	f.Add("topic", "T", "queueId", "3", []byte("body"), "secret-1")
	f.Add("Signature", "x", "AccessKey", "ak", []byte{}, "")
	f.Add("", "", "\x00", "\xff", []byte{0}, "k")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string, body []byte, secret string) {
		ext := map[string]string{k1: v1, k2: v2}
		c := Canonical(ext, body)
		// The canonical form is the values (bar Signature) and then the body.
		n := len(body)
		for k, v := range ext {
			if k != FieldSignature {
				n += len(v)
			}
		}
		if len(c) != n || string(c[len(c)-len(body):]) != string(body) {
			t.Fatalf("Canonical(%q, %q) = %q", ext, body, c)
		}
		SignRequest(ext, body, Credentials{AccessKey: "ak", SecretKey: Secret(secret)})
		if !Verify(ext, body, Secret(secret)) {
			t.Fatalf("own signature refused: %q", ext)
		}
		if Verify(ext, body, Secret(secret+"x")) {
			t.Fatal("verified with another secret")
		}
	})
}
