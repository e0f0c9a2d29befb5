package web

import (
	"net/url"
	"strings"
)

// LocalNext keeps a post-login target only if it is a clean absolute path
// on this server, and returns it rebuilt from its parsed form; anything
// else is "/". An open redirect is a phishing tool, and browsers are
// lenient: they drop tabs and newlines and read a backslash as a slash, so
// "/\t/evil.example" or "/\\evil.example" would leave the site. Control
// characters and backslashes, decoded or percent-encoded, are refused.
func LocalNext(next string) string {
	if next == "" || next[0] != '/' || !cleanTarget(next) {
		return "/"
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" || u.Fragment != "" {
		return "/"
	}
	p := u.EscapedPath()
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || !cleanTarget(u.Path) || strings.Contains(u.Path+"/", "/../") || strings.Contains(u.Path+"/", "/./") {
		return "/"
	}
	if u.RawQuery != "" {
		p += "?" + u.RawQuery
	}
	return p
}

// cleanTarget refuses what a browser may rewrite into another origin.
func cleanTarget(s string) bool {
	if strings.ContainsRune(s, '\\') {
		return false
	}
	for _, c := range s {
		if c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}
