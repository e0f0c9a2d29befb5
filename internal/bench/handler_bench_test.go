package bench

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// BenchmarkAPIHandler measures one API call through the whole server handler
// (middleware, dispatcher, token check, rate limiter, envelope), without the
// network.
func BenchmarkAPIHandler(b *testing.B) { benchAPIHandler(b, Options{}) }

// BenchmarkAPIHandlerTraced is the same call with tracing on: every
// request sampled, its spans batched to an exporter that drops them.
func BenchmarkAPIHandlerTraced(b *testing.B) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
	defer tp.Shutdown(context.Background())
	benchAPIHandler(b, Options{Tracing: tp})
}

func benchAPIHandler(b *testing.B, o Options) {
	o.Tokens, o.Duration, o.Concurrency = 1, time.Second, 1
	t, err := newTarget(context.Background(), o)
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
