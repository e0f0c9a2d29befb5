package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"latchkey/internal/config"
	"latchkey/internal/scope"
	"latchkey/internal/storage"
	"latchkey/internal/token"
)

// lockedBuffer is a log sink the server writes from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// With tracing on, a request is a span with a child span per storage call;
// a W3C trace context from a trusted proxy is continued, from any other
// peer ignored; and the request's log lines carry its trace id. Spans are
// caught with the OpenTelemetry SDK's in-memory exporter.
func TestTracingSpansAndLogLines(t *testing.T) {
	const traceID, parentID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	traceparent := "00-" + traceID + "-" + parentID + "-01"
	behindProxy := func(c *config.Config) { c.Proxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")} }
	for _, tc := range []struct {
		name    string
		opts    []option
		trusted bool
	}{
		{"behind a trusted proxy", []option{behindProxy}, true},
		{"from an untrusted peer", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			exp := tracetest.NewInMemoryExporter()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
			t.Cleanup(func() { tp.Shutdown(context.Background()) })
			var logs lockedBuffer
			e := start(t, startOptions{tracing: tp, log: &logs}, tc.opts...)
			u := e.user("tess", "")
			app := e.app(u.ID, storage.Standalone)
			tok, _, err := e.P.Tokens.IssueToken(t.Context(), storage.Token{Kind: token.User, AppID: app.ID, UserID: u.ID, Scope: scope.Friends, Flow: storage.FlowImplicit}, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			e.P.Cache.Clear() // the call below reads the token from storage
			exp.Reset()
			req, _ := http.NewRequest("GET", e.URL+"/method/users.get?v=5.199&access_token="+tok, nil)
			req.Header.Set("traceparent", traceparent)
			req.Header.Set("X-Forwarded-For", "203.0.113.7")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()

			spans := exp.GetSpans()
			var server *tracetest.SpanStub
			for i := range spans {
				if spans[i].Name == "HTTP GET /method/{name}" {
					server = &spans[i]
				}
			}
			if server == nil {
				t.Fatalf("no request span among %d spans: %v", len(spans), names(spans))
			}
			got := server.SpanContext.TraceID().String()
			if tc.trusted && (got != traceID || server.Parent.SpanID().String() != parentID) {
				t.Fatalf("trace %s, parent %s: the proxy's trace context was not continued", got, server.Parent.SpanID())
			}
			if !tc.trusted && got == traceID {
				t.Fatal("an untrusted peer's traceparent was believed")
			}
			var storageSpans int
			for _, s := range spans {
				if strings.HasPrefix(s.Name, "storage ") && s.SpanContext.TraceID() == server.SpanContext.TraceID() {
					storageSpans++
					if s.Parent.SpanID() != server.SpanContext.SpanID() {
						t.Errorf("%s is not a child of the request's span", s.Name)
					}
				}
			}
			if storageSpans == 0 {
				t.Fatalf("no storage span in the request's trace: %v", names(spans))
			}
			for _, s := range spans {
				for _, a := range s.Attributes {
					if strings.Contains(a.Value.String(), tok) {
						t.Fatalf("span %s carries the token in %s", s.Name, a.Key)
					}
				}
			}
			if line := `"trace_id":"` + got + `"`; !strings.Contains(logs.String(), line) {
				t.Fatalf("no log line with %s:\n%s", line, logs.String())
			}
		})
	}
}

func names(spans tracetest.SpanStubs) string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return fmt.Sprint(out)
}
