package gateway

import (
	"net/url"
	"testing"
)

// mustPath reads an identifier's path as url.Parse would.
func TestMustPath(t *testing.T) {
	for _, id := range []string{"https://shop.example", "https://shop.example/", "https://shop.example/v1", "https://shop.example:8443/v1/orders",
		"https://shop.example/v1?x=1", "https://shop.example/v1#f", "https://shop.example?x=/y", "http://127.0.0.1:8080/api/mcp", "https://shop.example/a%20b"} {
		u, _ := url.Parse(id)
		if got := mustPath(id); got != u.Path {
			t.Errorf("mustPath(%q) = %q, want %q", id, got, u.Path)
		}
	}
}
