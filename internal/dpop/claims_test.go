package dpop

import (
	"encoding/json"
	"testing"
)

var claimsSeeds = []string{
	`{"jti":"j","htm":"GET","htu":"https://lk.example/method/users.get","iat":1800000000,"ath":"fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"}`,
	` { "jti" : "a" , "iat" : -5 } `,
	`{}`,
	`{"jti":"a","jti":"b"}`,
	`{"JTI":"upper"}`,
	`{"jti":"\u0041"}`,
	`{"jti":"é"}`,
	`{"iat":1.5}`,
	`{"iat":1e3}`,
	`{"iat":01}`,
	`{"iat":9999999999999999999}`,
	`{"jti":null}`,
	`{"cnf":{"a":1}}`,
	`{"jti":"a",}`,
	`{"jti":"a"}x`,
	`[1]`,
	``,
}

// Where flatClaims answers, encoding/json answers the same.
func FuzzParseClaims(f *testing.F) {
	for _, s := range claimsSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		fast, ok := flatClaims(body)
		if !ok {
			return
		}
		var slow claims
		if err := json.Unmarshal(body, &slow); err != nil {
			t.Fatalf("flatClaims read %q, encoding/json refuses it: %v", body, err)
		}
		if fast != slow {
			t.Fatalf("%q: flatClaims %+v, encoding/json %+v", body, fast, slow)
		}
	})
}

// The shapes a proof has are read in place, and those it may have are
// read the general way, with the same result.
func TestParseClaims(t *testing.T) {
	for _, s := range claimsSeeds {
		var want claims
		wantErr := json.Unmarshal([]byte(s), &want)
		got, err := parseClaims([]byte(s))
		if (err != nil) != (wantErr != nil) || (err == nil && got != want) {
			t.Errorf("%q: %+v, %v; encoding/json %+v, %v", s, got, err, want, wantErr)
		}
	}
	if _, ok := flatClaims([]byte(claimsSeeds[0])); !ok {
		t.Error("a proof's usual claims were not read in place")
	}
	if _, ok := flatClaims([]byte(`{"jti":"\u0041"}`)); ok {
		t.Error("an escape was read in place")
	}
}
