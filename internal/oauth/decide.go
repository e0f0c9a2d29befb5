package oauth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/url"
	"strconv"
	"time"

	"latchkey/internal/platform"
	"latchkey/internal/protocol"
	"latchkey/internal/storage"
)

// ParseAuthorize checks an /authorize request against stored apps. A
// request_uri (RFC 9126) stands for the parameters its app pushed: they
// replace the query. spend uses the request_uri up: set it when the
// request is being answered (someone is signed in), not when the browser
// is only sent to log in first.
func (p *Provider) ParseAuthorize(ctx context.Context, q url.Values, spend bool) (*AuthorizeRequest, error) {
	viaPAR := q.Get("request_uri") != ""
	if uri := q.Get("request_uri"); uri != "" {
		id, err := strconv.ParseInt(q.Get("client_id"), 10, 64)
		if err != nil || id <= 0 {
			return nil, errBadClientID
		}
		pushed, err := p.p.TakePushed(ctx, id, uri, spend)
		if errors.Is(err, platform.ErrNoPushedRequest) {
			return nil, newError(protocol.InvalidRequest, 400, "request_uri is unknown, used or expired")
		}
		if err != nil {
			return nil, err
		}
		q = pushed
	}
	return p.parsePushed(ctx, q, viaPAR)
}

// ParseDecision checks the request a consent dialog's answer carries: the
// parameters /authorize rendered into the dialog (a pushed request's
// expanded, its request_uri spent), pushed when the dialog vouched for
// them as a pushed request's.
func (p *Provider) ParseDecision(ctx context.Context, q url.Values, pushed bool) (*AuthorizeRequest, error) {
	return p.parsePushed(ctx, q, pushed)
}

func (p *Provider) parsePushed(ctx context.Context, q url.Values, pushed bool) (*AuthorizeRequest, error) {
	req, err := p.parse(ctx, q)
	if req != nil {
		req.Pushed = pushed
	}
	if err == nil && req.App.Profile == platform.ProfileFAPI2 {
		err = fapi2Authorize(req, pushed)
	}
	return req, err
}

// fapi2Authorize refuses what FAPI 2.0 forbids at /authorize (§5.3.2): a
// request not pushed (PAR), without PKCE S256, or of the implicit flow. The
// client and redirect URI are known good here: the error goes to the app.
func fapi2Authorize(req *AuthorizeRequest, pushed bool) error {
	switch {
	case req.ResponseType != protocol.ResponseCode:
		return newError(protocol.UnsupportedResponseType, 400, "a FAPI 2.0 app uses response_type=code only").redirectable()
	case !pushed:
		return newError(protocol.InvalidRequest, 400, "a FAPI 2.0 app pushes its authorization requests (PAR, RFC 9126) and sends the request_uri").redirectable()
	case req.CodeChallengeMethod != protocol.PKCES256:
		return newError(protocol.InvalidRequest, 400, "a FAPI 2.0 app uses PKCE with code_challenge_method=S256").redirectable()
	}
	return nil
}

func (p *Provider) parse(ctx context.Context, q url.Values) (*AuthorizeRequest, error) {
	req, err := ParseAuthorize(ctx, q, p.p.LookupApp, AuthorizeConfig{BlankURL: p.BlankURL(), AllowPlainPKCE: p.Cfg.AllowPlainPKCE, Issuer: p.Issuer(), Resource: p.apis.Resource, Document: p.document()})
	if err != nil {
		return req, err
	}
	return req, nil
}

// Decision is what to do with a checked request for a signed-in user: show
// the dialog (Ask), or answer at once.
type Decision struct {
	Ask bool
	// Communities are the communities a community request names, for the
	// dialog.
	Communities []storage.Community
	consent     platform.Decision
}

// Decide is the one decision of /authorize: a community request needs the
// user to admin every community it names and always shows the dialog; a
// user request skips the dialog when the consent covers its scopes (never
// with revoke=1). A refusal is an access_denied *Error naming why.
func (p *Provider) Decide(ctx context.Context, req *AuthorizeRequest, userID int64) (Decision, error) {
	if len(req.CommunityIDs) > 0 {
		if err := p.mayGrantFor(ctx, req, userID); err != nil {
			return Decision{}, err
		}
		d := Decision{Ask: true}
		for _, id := range req.CommunityIDs {
			c, err := p.p.LookupCommunity(ctx, id)
			if err != nil {
				return d, err
			}
			d.Communities = append(d.Communities, c)
		}
		return d, nil
	}
	var c platform.Decision
	var err error
	if req.API != nil {
		c, err = p.consents.CheckAPI(ctx, userID, req.App.ID, req.API.ID, req.Scope, req.Claims, req.Revoke)
	} else {
		c, err = p.consents.Check(ctx, userID, req.App.ID, req.Scope, req.Revoke)
	}
	if err != nil {
		return Decision{}, err
	}
	return Decision{Ask: !c.Covered, consent: c}, nil
}

// mayGrantFor refuses a community request unless the user admins every
// community it names.
func (p *Provider) mayGrantFor(ctx context.Context, req *AuthorizeRequest, userID int64) error {
	err := p.p.MayGrantFor(ctx, userID, req.CommunityIDs)
	if k := platform.KindOf(err); k == platform.NotFound || k == platform.Forbidden {
		return Refuse(err.Error())
	}
	return err
}

// Approve answers a request the user approved (asked: through the dialog;
// otherwise d is Decide's answer that the consent covered it): it records
// the consent and returns the redirect carrying the token(s) or the code.
// The token carries exactly the scopes asked for, never what an earlier
// consent added.
func (p *Provider) Approve(ctx context.Context, req *AuthorizeRequest, user storage.User, authn storage.Authn, ip string, d *Decision, asked bool) (string, error) {
	if len(req.CommunityIDs) > 0 {
		// Checked again: the dialog's answer is a new request.
		if err := p.mayGrantFor(ctx, req, user.ID); err != nil {
			return "", err
		}
	} else if req.API != nil {
		if d == nil || asked || !d.consent.Covered {
			if err := p.consents.GrantAPI(ctx, user.ID, req.App.ID, req.API.ID, req.Scope, req.Claims); err != nil {
				return "", err
			}
		}
	} else {
		var prior *platform.Decision
		if d != nil {
			prior = &d.consent
		}
		if err := p.consents.Grant(ctx, user.ID, req.App.ID, req.Scope, prior, asked); err != nil {
			return "", err
		}
	}
	if req.ResponseType == protocol.ResponseCode {
		return p.approveCode(ctx, req, user, authn, ip)
	}
	return p.approveImplicit(ctx, req, user, ip)
}

// codeTTL is how long app's codes live: FAPI 2.0 asks for short ones.
func (p *Provider) codeTTL(app storage.App) time.Duration {
	if app.Profile == platform.ProfileFAPI2 {
		return min(p.Cfg.CodeTTL, platform.FAPI2CodeTTL)
	}
	return p.Cfg.CodeTTL
}

// approveCode issues the code and redirects with it. Every code redirect
// also carries VK ID's device_id, expires_in and type=code_v2, whichever
// dialect asked (vkid-wire.md §1): the others ignore extra parameters.
func (p *Provider) approveCode(ctx context.Context, req *AuthorizeRequest, user storage.User, authn storage.Authn, ip string) (string, error) {
	device := req.DeviceID
	if !ValidDeviceID(device) {
		device = NewDeviceID()
	}
	raw, err := p.codes.Issue(ctx, platform.CodeRequest{
		AppID: req.App.ID, UserID: user.ID, CommunityIDs: req.CommunityIDs, Scope: req.Scope, RedirectURI: req.RedirectURI,
		CodeChallenge: req.CodeChallenge, CodeChallengeMethod: req.CodeChallengeMethod, IP: ip, Nonce: req.Nonce, DeviceID: device,
		APIID: apiID(req.API), Claims: req.Claims, Authn: authn,
	}, p.codeTTL(req.App))
	if err != nil {
		return "", err
	}
	resp := NewResponse(req).Add("code", raw)
	if req.State != "" {
		resp.Add("state", req.State)
	}
	resp.Add("device_id", device).Add("expires_in", strconv.FormatInt(int64(p.codeTTL(req.App)/time.Second), 10)).Add("type", "code_v2")
	return resp.URL(), nil
}

// MaxDeviceID is the longest device_id (vkid-wire.md §1).
const MaxDeviceID = 128

// ValidDeviceID reports whether s is a device_id: 1 to 128 characters of
// [A-Za-z0-9_-].
func ValidDeviceID(s string) bool {
	if s == "" || len(s) > MaxDeviceID {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// NewDeviceID is a fresh random device_id.
func NewDeviceID() string {
	var b [24]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// approveImplicit issues the token(s) and redirects with them in the
// fragment.
func (p *Provider) approveImplicit(ctx context.Context, req *AuthorizeRequest, user storage.User, ip string) (string, error) {
	resp := NewResponse(req)
	if len(req.CommunityIDs) > 0 {
		tokens, err := p.issuer.Communities(ctx, platform.CommunityIssuance{AppID: req.App.ID, UserID: user.ID,
			CommunityIDs: req.CommunityIDs, Scope: req.Scope, Flow: storage.FlowImplicit, IP: ip})
		if err != nil {
			return "", err
		}
		for _, t := range tokens {
			resp.Add("access_token_"+strconv.FormatInt(t.CommunityID, 10), t.Access)
		}
		resp.Add("expires_in", "0")
	} else {
		t, err := p.issuer.Issue(ctx, platform.Issuance{Grant: platform.Grant{AppID: req.App.ID, UserID: user.ID, Scope: req.Scope},
			Flow: storage.FlowImplicit, IP: ip})
		if err != nil {
			return "", err
		}
		resp.Add("access_token", t.Access).Add("expires_in", strconv.FormatInt(int64(t.TTL/time.Second), 10)).
			Add("user_id", strconv.FormatInt(user.ID, 10))
		if t.Email != "" {
			resp.Add("email", t.Email)
		}
	}
	if req.State != "" {
		resp.Add("state", req.State)
	}
	return resp.URL(), nil
}
