package bench

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkAPIHandler measures one API call through the whole server handler
// (middleware, dispatcher, token check, rate limiter, envelope), without the
// network.
func BenchmarkAPIHandler(b *testing.B) {
	t, err := newTarget(context.Background(), Options{Tokens: 1, Duration: time.Second, Concurrency: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer t.close()
	h := t.srv.Handler
	req := httptest.NewRequest("GET", "/method/account.getAppPermissions?v=5.199&access_token="+t.tokens[0], nil)
	b.ReportAllocs()
	for b.Loop() {
		r := req.Clone(context.Background())
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != 200 {
			b.Fatal(w.Code)
		}
	}
}
