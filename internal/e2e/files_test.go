package e2e

import (
	"bytes"
	"os"
	"testing"
)

func assertFilesLackSecrets(t *testing.T, secrets []string, files ...string) {
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
