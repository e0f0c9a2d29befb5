package cli

import (
	"errors"
	"testing"
)

type keysOut struct {
	Keys []struct {
		KID     string `json:"kid"`
		Alg     string `json:"alg"`
		Created int64  `json:"created"`
		Current bool   `json:"current"`
		Retired bool   `json:"retired"`
	} `json:"keys"`
}

// keys rotate adds a current key and keeps the old one; keys retire takes
// an old key out, and refuses the current one.
func TestSigningKeysCommands(t *testing.T) {
	c := newCLI(t)
	c.ok(nil, "user", "create", "--login", "alice", "--password", "correct horse")
	var out keysOut
	c.ok(&out, "keys", "list")
	if len(out.Keys) != 0 {
		t.Fatalf("a new database lists keys: %+v", out)
	}
	c.ok(&out, "keys", "rotate")
	if len(out.Keys) != 1 || !out.Keys[0].Current || out.Keys[0].Alg != "RS256" || out.Keys[0].KID == "" || out.Keys[0].Created == 0 {
		t.Fatalf("after the first rotation: %+v", out)
	}
	first := out.Keys[0].KID
	c.ok(&out, "keys", "rotate")
	if len(out.Keys) != 2 || !out.Keys[0].Current || out.Keys[0].KID == first || out.Keys[1].KID != first || out.Keys[1].Current {
		t.Fatalf("after the second rotation: %+v", out)
	}
	current := out.Keys[0].KID
	_, err := c.run("keys", "retire", "--kid", current)
	if ExitCode(err) != 2 {
		t.Fatalf("retiring the current key: %v (exit %d), want a refusal", err, ExitCode(err))
	}
	_, err = c.run("keys", "retire", "--kid", "no-such-key")
	if ExitCode(err) != 2 {
		t.Fatalf("retiring an unknown key: %v, want exit 2", err)
	}
	c.ok(&out, "keys", "retire", "--kid", first)
	if len(out.Keys) != 2 || !out.Keys[1].Retired || out.Keys[0].KID != current || !out.Keys[0].Current {
		t.Fatalf("after retiring the old key: %+v", out)
	}
	var ue *UsageError
	if _, err := c.run("keys", "retire"); !errors.As(err, &ue) {
		t.Fatalf("retire without --kid: %v, want a usage error", err)
	}
}
