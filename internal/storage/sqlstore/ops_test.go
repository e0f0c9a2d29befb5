package sqlstore

import "testing"

func TestOpOf(t *testing.T) {
	s := New(nil, nil, nil, Options{})
	for q, want := range map[string]string{
		"SELECT hash, app_id FROM tokens WHERE hash = $1":                "select tokens",
		"\n\tINSERT INTO dpop_proofs (hash, expires_at) VALUES ($1, $2)": "insert dpop_proofs",
		"UPDATE codes SET used_at = $1 WHERE hash = $2":                  "update codes",
		"DELETE FROM consents WHERE user_id = $1":                        "delete consents",
		"VACUUM": "vacuum",
		"":       "other",
	} {
		if got := s.opOf(q); got != want {
			t.Errorf("opOf(%q) = %q, want %q", q, got, want)
		}
		if got := s.opOf(q); got != want {
			t.Errorf("opOf(%q), cached, = %q", q, got)
		}
	}
}
