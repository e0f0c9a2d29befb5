package oauth

import (
	"errors"
	"net/http"
	"strconv"

	"latchkey/internal/platform"
	"latchkey/internal/protocol"
)

// PAR serves POST /oauth/par (RFC 9126): an app's server pushes the
// parameters of an authorization request, authenticated as at the token
// endpoint (a standalone app by client_id alone), and gets a request_uri
// for /authorize. The parameters are checked as /authorize would, and any
// error is answered here, as JSON, never redirected.
func (p *Provider) PAR(w http.ResponseWriter, r *http.Request) {
	client, _, _, ok := p.clientRequest(w, r)
	if !ok {
		return
	}
	params := r.PostForm
	if params.Has("request_uri") {
		p.fail(w, r, newError(protocol.InvalidRequest, 400, "request_uri cannot itself be pushed"))
		return
	}
	for name, vs := range params {
		if len(vs) > 1 {
			p.fail(w, r, newError(protocol.InvalidRequest, 400, name+" is given more than once"))
			return
		}
	}
	params.Del("client_secret")
	params.Set("client_id", strconv.FormatInt(client.ID, 10))
	if _, err := p.parse(r.Context(), params); err != nil {
		var oe *Error
		if !errors.As(err, &oe) {
			p.fail(w, r, internal(err))
			return
		}
		p.fail(w, r, oe)
		return
	}
	uri, err := p.p.Push(r.Context(), client.ID, params)
	if err != nil {
		p.fail(w, r, internal(err))
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"request_uri": uri, "expires_in": int64(platform.PushedTTL.Seconds())})
}
