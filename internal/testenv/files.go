package testenv

import (
	"bytes"
	"os"
	"testing"
)

// AssertFilesLack fails the test if any of the secrets appears, byte for
// byte, in the files (a database and its WAL): storage must keep hashes and
// ciphertexts only. Files that do not exist are skipped; at least one must.
func AssertFilesLack(t testing.TB, secrets []string, files ...string) {
	t.Helper()
	var all []byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	if len(all) == 0 {
		t.Fatal("no database bytes read")
	}
	for _, s := range secrets {
		if s == "" {
			t.Fatal("empty secret in the list")
		}
		if bytes.Contains(all, []byte(s)) {
			t.Errorf("the database contains %q in the clear", s)
		}
	}
}
