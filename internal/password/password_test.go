package password

import (
	"strings"
	"testing"
)

func TestHashVerify(t *testing.T) {
	h := Hash("correct horse")
	if !strings.HasPrefix(h, "$argon2id$v=19$") || strings.Contains(h, "correct horse") {
		t.Fatalf("Hash = %q", h)
	}
	if err := Verify(h, "correct horse"); err != nil {
		t.Fatalf("Verify(right password) = %v", err)
	}
	if err := Verify(h, "correct horse "); err != ErrMismatch {
		t.Fatalf("Verify(wrong password) = %v, want ErrMismatch", err)
	}
	if h1, h2 := Hash("x"), Hash("x"); h1 == h2 {
		t.Fatal("two hashes of one password are equal: salt missing")
	}
	for _, bad := range []string{"", "$argon2i$v=19$m=1,t=1,p=1$AA$AA", "$argon2id$v=19$m=x$AA$AA", "$argon2id$v=19$m=1,t=1,p=1$!!$AA"} {
		if err := Verify(bad, "x"); err == nil || err == ErrMismatch {
			t.Errorf("Verify(%q) = %v, want a format error", bad, err)
		}
	}
}
