package web

import (
	"net/http"
	"strings"
)

// CSP is a Content Security Policy: default-src 'none' and base-uri 'none'
// always, and the sources each directive below allows ("" leaves the
// directive out, so default-src 'none' applies).
type CSP struct {
	Script         string
	Style          string
	Img            string
	Connect        string // connect-src: what the page's scripts may fetch
	Frame          string // frame-src: what the page may embed
	FrameAncestors string // who may embed the page
}

// PageCSP is every page's policy: its own scripts, styles and images, and
// no framing. Routes that need more start from it (SetCSP).
var PageCSP = CSP{Script: "'self'", Style: "'self'", Img: "'self' data:", FrameAncestors: "'none'"}

func (c CSP) String() string {
	var b strings.Builder
	b.WriteString("default-src 'none'")
	for _, d := range []struct{ name, v string }{
		{"script-src", c.Script}, {"style-src", c.Style}, {"img-src", c.Img}, {"connect-src", c.Connect}, {"frame-src", c.Frame}, {"frame-ancestors", c.FrameAncestors},
	} {
		if d.v != "" {
			b.WriteString("; " + d.name + " " + d.v)
		}
	}
	b.WriteString("; base-uri 'none'")
	return b.String()
}

// SetCSP replaces the page's policy with c. A page that lets another
// origin frame it also drops X-Frame-Options, which cannot name one.
func SetCSP(w http.ResponseWriter, c CSP) {
	h := w.Header()
	h.Set("Content-Security-Policy", c.String())
	if c.FrameAncestors != PageCSP.FrameAncestors {
		h.Del("X-Frame-Options")
	}
}

// Secure adds the browser-side protections to every page: PageCSP, nosniff,
// no referrer, no caching (pages carry CSRF tokens and personal data), and
// Go's cross-origin request protection (Sec-Fetch-Site / Origin) in front of
// the CSRF tokens.
func Secure(next http.Handler) http.Handler {
	return http.NewCrossOriginProtection().Handler(SecureHeaders(next))
}

// SecureHeaders are Secure's headers without its cross-origin protection:
// for a page another site may post to (RP-Initiated Logout), which must
// then change nothing a forged request could.
func SecureHeaders(next http.Handler) http.Handler {
	policy := PageCSP.String()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", policy)
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}
