package testenv

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Directory is an OpenLDAP server (Debian's slapd) the test started on a
// free loopback port, with its own configuration and data.
type Directory struct {
	URL    string
	Suffix string
	// AdminDN and AdminPassword are the directory's root, used as the
	// service account.
	AdminDN, AdminPassword string
	cmd                    *exec.Cmd
}

// Slapd starts slapd with the suffix dc=example,dc=org and the entries of
// ldif (people, with their passwords in userPassword), and stops it when
// the test ends.
func Slapd(t testing.TB, ldif string) *Directory {
	t.Helper()
	bin := "/usr/sbin/slapd"
	if _, err := os.Stat(bin); err != nil {
		if bin, err = exec.LookPath("slapd"); err != nil {
			Missing(t, "OpenLDAP's slapd (apt-get install slapd ldap-utils)")
		}
	}
	dir := t.TempDir()
	d := &Directory{Suffix: "dc=example,dc=org", AdminDN: "cn=admin,dc=example,dc=org", AdminPassword: "admin-secret"}
	if err := os.Mkdir(filepath.Join(dir, "db"), 0o700); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(`include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/nis.schema
include /etc/ldap/schema/inetorgperson.schema
pidfile %[1]s/slapd.pid
modulepath /usr/lib/ldap
moduleload back_mdb
database mdb
maxsize 10485760
suffix "%[2]s"
rootdn "%[3]s"
rootpw %[4]s
directory %[1]s/db
`, dir, d.Suffix, d.AdminDN, d.AdminPassword)
	confPath := filepath.Join(dir, "slapd.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	base := fmt.Sprintf("dn: %s\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n\ndn: ou=people,%s\nobjectClass: organizationalUnit\nou: people\n\n", d.Suffix, d.Suffix)
	dataPath := filepath.Join(dir, "data.ldif")
	if err := os.WriteFile(dataPath, []byte(base+ldif), 0o600); err != nil {
		t.Fatal(err)
	}
	slapadd := filepath.Join(filepath.Dir(bin), "slapadd")
	if out, err := exec.Command(slapadd, "-f", confPath, "-l", dataPath).CombinedOutput(); err != nil {
		t.Fatalf("slapadd: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	d.URL = "ldap://" + addr
	var logs bytes.Buffer
	d.cmd = exec.Command(bin, "-f", confPath, "-h", d.URL+"/", "-d", "0")
	d.cmd.Stdout, d.cmd.Stderr = &logs, &logs
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("slapd: %v", err)
	}
	t.Cleanup(d.Stop)
	for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("slapd did not start listening on %s:\n%s", addr, strings.TrimSpace(logs.String()))
		}
	}
	return d
}

// Stop stops the directory (a test of a directory that is down).
func (d *Directory) Stop() {
	if d.cmd != nil && d.cmd.Process != nil {
		d.cmd.Process.Kill()
		d.cmd.Wait()
		d.cmd = nil
	}
}
