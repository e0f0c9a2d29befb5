package server

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestMethodsFirstRoutesAsTheMux: every request reaches what the mux alone
// would have sent it to, with the same pattern, name and answer; and the
// plain API calls do not reach the mux at all.
func TestMethodsFirstRoutesAsTheMux(t *testing.T) {
	type seen struct {
		by, pattern, name string
		code              int
		location          string
	}
	var got seen
	api := dispatcher(func(w http.ResponseWriter, r *http.Request, name string) {
		got.by, got.pattern, got.name = "api", r.Pattern, name
	})
	newMux := func(muxCalls *int) http.Handler {
		mux := http.NewServeMux()
		mux.Handle(apiGET, api)
		mux.Handle(apiPOST, api)
		mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { got.by, got.pattern = "else", r.Pattern })
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { *muxCalls++; mux.ServeHTTP(w, r) })
	}
	var plainCalls, behindCalls int
	plain := newMux(&plainCalls)
	fast := methodsFirst{api: api, mux: newMux(&behindCalls)}
	serve := func(h http.Handler, method, target string) seen {
		got = seen{}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(method, target, nil))
		got.code, got.location = w.Code, w.Header().Get("Location")
		return got
	}
	for _, c := range []struct {
		method, target string
		fast           bool // taken before the mux
	}{
		{"GET", "/method/users.get?user_ids=1", true},
		{"POST", "/method/messages.send", true},
		{"GET", "/method/a.b.c", true},
		{"HEAD", "/method/users.get", false},
		{"PUT", "/method/users.get", false},
		{"OPTIONS", "/method/users.get", false},
		{"GET", "/method/", false},
		{"GET", "/method", false},
		{"GET", "/method/users.get/", false},
		{"GET", "/method/a/b", false},
		{"GET", "/method/.", false},
		{"GET", "/method/..", false},
		{"GET", "/method/%2e%2e", false},
		{"GET", "/method/a%2Fb", false},
		{"GET", "/method/users%2Eget", false},
		{"GET", "/method//users.get", false},
		{"GET", "/methods/users.get", false},
		{"GET", "//method/users.get", false},
		{"GET", "/x/../method/users.get", false},
	} {
		before := behindCalls
		want, have := serve(plain, c.method, c.target), serve(fast, c.method, c.target)
		if have != want {
			t.Errorf("%s %s: fast path %+v, the mux alone %+v", c.method, c.target, have, want)
		}
		if took := behindCalls == before; took != c.fast {
			t.Errorf("%s %s: taken before the mux %v, want %v", c.method, c.target, took, c.fast)
		}
	}
	if plainCalls == 0 {
		t.Fatal("the mux alone served nothing")
	}
}

// dispatcher is a stand-in for api.Dispatcher: Serve, and ServeHTTP with
// the name the mux read.
type dispatcher func(w http.ResponseWriter, r *http.Request, name string)

func (d dispatcher) Serve(w http.ResponseWriter, r *http.Request, name string) { d(w, r, name) }
func (d dispatcher) ServeHTTP(w http.ResponseWriter, r *http.Request)          { d(w, r, r.PathValue("name")) }
