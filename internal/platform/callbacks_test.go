package platform

import (
	"errors"
	"net/netip"
	"testing"
)

// A callback URL is refused when it is added, in every form of a refused
// address that a resolver would accept, not only when it is dialled.
func TestCallbackURLsRefusedAtRegistration(t *testing.T) {
	c := &Callbacks{out: &Outbound{}}
	for _, u := range []string{
		"http://localhost/cb", "http://localhost./cb", "http://LOCALHOST:8080/cb", "http://bot.localhost./cb",
		"http://127.0.0.1/cb", "http://127.1/cb", "http://127.0.1/cb", "http://0x7f000001/cb", "http://0x7F.1/cb",
		"http://2130706433/cb", "http://0177.0.0.1/cb", "http://017700000001/cb", "http://127.0.0.1./cb",
		"http://0/cb", "http://0.0.0.0/cb", "http://10.1/cb", "http://0xa000001/cb", "http://192.168.1.1/cb", "http://169.254.169.254/latest",
		"http://[::1]/cb", "http://[::ffff:127.0.0.1]/cb", "http://[fe80::1%25eth0]/cb", "http://[fd00::1]/cb", "https://0300.0250.0.1/cb",
	} {
		if err := c.checkURL(u); !errors.Is(err, ErrTargetRefused) {
			t.Errorf("%s: %v, want refused", u, err)
		}
	}
	for _, u := range []string{
		"https://bot.example/cb", "http://93.184.216.34/cb", "http://1.2.3/cb", "https://0x5db8d822/cb", "https://example.localhost.example/cb",
		"https://127.0.0.1.example/cb", "https://1.2.3.4.5/cb", "https://08.0.0.1/cb",
	} {
		if err := c.checkURL(u); err != nil {
			t.Errorf("%s: %v, want accepted", u, err)
		}
	}
	allowed := &Callbacks{out: &Outbound{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}}
	if err := allowed.checkURL("http://127.1:8080/cb"); err != nil {
		t.Errorf("127.1 with loopback allowed: %v", err)
	}
}

// inet_aton's forms, and what it refuses.
func TestInetAton(t *testing.T) {
	for in, want := range map[string]string{
		"127.1": "127.0.0.1", "2130706433": "127.0.0.1", "0x7f000001": "127.0.0.1", "0177.0.0.1": "127.0.0.1",
		"10.0x10.1": "10.16.0.1", "1.2.3.4": "1.2.3.4", "0": "0.0.0.0", "4294967295": "255.255.255.255",
	} {
		if got, ok := inetAton(in); !ok || got.String() != want {
			t.Errorf("inetAton(%q) = %v %v, want %s", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "1.2.3.4.5", "256.1.1.1", "1.2.3.256", "4294967296", "08", "0x", "1..2", "a.b.c.d", "+1", "1_0", "1.2.65536"} {
		if got, ok := inetAton(in); ok {
			t.Errorf("inetAton(%q) = %v, want refused", in, got)
		}
	}
}
