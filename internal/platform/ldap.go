package platform

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"

	"latchkey/internal/storage"
)

// ldapTimeout bounds connecting to a directory and each of its answers:
// a directory that is down costs a sign-in seconds, not a hang.
const ldapTimeout = 5 * time.Second

// AddLDAP adds an LDAP directory: a password typed at the login page that
// is no local user's is checked there. The URL says how to connect:
// ldaps:// over TLS; ldap:// upgraded by StartTLS, or in the clear on a
// loopback address only (development).
func (p *Upstreams) AddLDAP(ctx context.Context, actor Actor, name string, c UpstreamConfig, bindPassword string) (UpstreamView, error) {
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "ldap" && u.Scheme != "ldaps") || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") {
		return UpstreamView{}, invalid("url", "must be ldap://HOST[:PORT] or ldaps://HOST[:PORT]")
	}
	if _, err := ldap.ParseDN(c.BindDN); err != nil || c.BindDN == "" {
		return UpstreamView{}, invalid("bind_dn", "must be a distinguished name")
	}
	if _, err := ldap.ParseDN(c.BaseDN); err != nil || c.BaseDN == "" {
		return UpstreamView{}, invalid("base_dn", "must be a distinguished name")
	}
	if c.Filter == "" {
		c.Filter = "(uid={login})"
	}
	if !strings.Contains(c.Filter, "{login}") || !strings.HasPrefix(c.Filter, "(") || len(c.Filter) > 1024 {
		return UpstreamView{}, invalid("filter", "must be an LDAP filter naming {login}, such as (uid={login})")
	}
	if _, err := ldap.CompileFilter(strings.ReplaceAll(c.Filter, "{login}", "x")); err != nil {
		return UpstreamView{}, invalid("filter", "is not an LDAP filter: %v", err)
	}
	if bindPassword == "" {
		return UpstreamView{}, invalid("bind_password", "is required")
	}
	c.Issuer, c.ClientID, c.Scopes, c.ClaimLogin = "", "", nil, ""
	return p.add(ctx, actor, name, storage.UpstreamLDAP, c, bindPassword)
}

// ErrDirectoryDown answers a sign-in that a directory could not be asked
// about.
var ErrDirectoryDown = &Error{Kind: Unavailable, Message: "the directory cannot be reached right now: try again later"}

// LDAPLogin checks login and password against each LDAP directory: a
// service bind, a search by the filter with the login escaped (RFC 4515),
// then a bind as the one entry found with the password. The person's
// user is found by its link, or made (and their name kept up to date).
// ErrWrongCredentials when no directory knows them or the password is
// wrong; ErrDirectoryDown when a directory could not be asked and none
// said yes.
func (p *Upstreams) LDAPLogin(ctx context.Context, login, password string) (storage.User, error) {
	if login == "" || password == "" || !validText(login) || !validText(password) || len(login) > 256 {
		// An empty password would be an unauthenticated bind, which
		// directories answer with success.
		return storage.User{}, ErrWrongCredentials
	}
	us, err := p.store.ListUpstreams(ctx)
	if err != nil {
		return storage.User{}, err
	}
	down := false
	for _, u := range us {
		if u.Kind != storage.UpstreamLDAP {
			continue
		}
		id, err := p.ldapCheck(ctx, u, login, password)
		switch {
		case errors.Is(err, ErrDirectoryDown):
			down = true
			continue
		case errors.Is(err, errNoEntry):
			continue
		case err != nil:
			return storage.User{}, err
		}
		user, err := p.SignIn(ctx, id)
		if err == nil && (user.FirstName != clip(id.FirstName) || user.LastName != clip(id.LastName)) && id.FirstName+id.LastName != "" {
			if err := p.users.UpdateUserName(ctx, user.ID, clip(id.FirstName), clip(id.LastName)); err == nil {
				user.FirstName, user.LastName = clip(id.FirstName), clip(id.LastName)
			}
		}
		return user, err
	}
	if down {
		return storage.User{}, ErrDirectoryDown
	}
	return storage.User{}, ErrWrongCredentials
}

var errNoEntry = errors.New("no entry for the login")

func (p *Upstreams) ldapCheck(ctx context.Context, u storage.Upstream, login, password string) (Identity, error) {
	_, c, secret, err := p.upstream(ctx, u.Name, storage.UpstreamLDAP)
	if err != nil {
		return Identity{}, err
	}
	conn, err := p.ldapDial(c.URL)
	if err != nil {
		p.Log.WarnContext(ctx, "ldap: connecting failed", "upstream", u.Name, "err", err)
		return Identity{}, ErrDirectoryDown
	}
	defer conn.Close()
	if err := conn.Bind(c.BindDN, secret); err != nil {
		p.Log.WarnContext(ctx, "ldap: the service bind failed", "upstream", u.Name, "err", err)
		return Identity{}, ErrDirectoryDown
	}
	filter := strings.ReplaceAll(c.Filter, "{login}", ldap.EscapeFilter(login))
	res, err := conn.Search(ldap.NewSearchRequest(c.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 2, int(ldapTimeout/time.Second), false,
		filter, []string{"uid", "cn", "givenName", "sn", "mail"}, nil))
	if err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) {
		p.Log.WarnContext(ctx, "ldap: the search failed", "upstream", u.Name, "err", err)
		return Identity{}, ErrDirectoryDown
	}
	if res == nil || len(res.Entries) != 1 {
		return Identity{}, errNoEntry // none, or a login that names several
	}
	e := res.Entries[0]
	if err := conn.Bind(e.DN, password); err != nil {
		if ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
			return Identity{}, ErrWrongCredentials
		}
		p.Log.WarnContext(ctx, "ldap: the person's bind failed", "upstream", u.Name, "err", err)
		return Identity{}, ErrDirectoryDown
	}
	name := e.GetAttributeValue("uid")
	if name == "" {
		name = login
	}
	id := Identity{UpstreamID: u.ID, Upstream: u.Name, Subject: e.DN, Login: name,
		FirstName: e.GetAttributeValue("givenName"), LastName: e.GetAttributeValue("sn"), Email: e.GetAttributeValue("mail")}
	if id.FirstName == "" && id.LastName == "" {
		id.FirstName = e.GetAttributeValue("cn")
	}
	return id, nil
}

// ldapDial connects as the URL says, within ldapTimeout.
func (p *Upstreams) ldapDial(raw string) (*ldap.Conn, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	d := &net.Dialer{Timeout: ldapTimeout}
	conn, err := ldap.DialURL(raw, ldap.DialWithDialer(d), ldap.DialWithTLSConfig(&tls.Config{ServerName: u.Hostname(), RootCAs: p.out.RootCAs, MinVersion: tls.VersionTLS12}))
	if err != nil {
		return nil, err
	}
	conn.SetTimeout(ldapTimeout)
	if u.Scheme == "ldap" {
		if ip, ok := hostAddr(u.Hostname()); ok && ip.IsLoopback() {
			return conn, nil // in the clear on loopback only
		}
		if err := conn.StartTLS(&tls.Config{ServerName: u.Hostname(), RootCAs: p.out.RootCAs, MinVersion: tls.VersionTLS12}); err != nil {
			conn.Close()
			return nil, err
		}
	}
	return conn, nil
}
