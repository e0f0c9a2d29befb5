package api

import (
	"net/url"
	"testing"
)

var paramCases = []string{
	"v=5.199&access_token=lku1abc",
	"user_ids=1%2C2&fields=photo_50,screen_name",
	"message=hello+world&random_id=7",
	"a=1&a=2&b=",
	"&&x=1&=y&z",
	"bad=%zz&good=1",
	"k%20ey=v%26al",
	"",
}

func TestParamsGet(t *testing.T) {
	ps := params{}.appendPairs("message=hello+world&a=1&a=2&bad=%zz&k%20ey=v%26al")
	for k, want := range map[string]string{"message": "hello world", "a": "1", "bad": "", "k ey": "v&al", "missing": ""} {
		if got := ps.Get(k); got != want {
			t.Errorf("Get(%q) = %q, want %q", k, got, want)
		}
	}
}

// FuzzParams checks the API's parameter decoding against net/url: for every
// key url.ParseQuery finds in a well-formed query, Get returns its first value.
func FuzzParams(f *testing.F) {
	for _, c := range paramCases {
		f.Add(c)
	}
	f.Fuzz(func(t *testing.T, q string) {
		want, err := url.ParseQuery(q)
		if err != nil {
			return // net/url skips malformed pairs too, but reports an error
		}
		got := params{}.appendPairs(q)
		for k, vs := range want {
			if k == "" {
				continue
			}
			if g := got.Get(k); g != vs[0] {
				t.Fatalf("query %q: Get(%q) = %q, want %q", q, k, g, vs[0])
			}
		}
		for _, p := range got {
			if _, ok := want[p.Key]; !ok {
				t.Fatalf("query %q: key %q that net/url does not see", q, p.Key)
			}
		}
	})
}
