package oauth

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"latchkey/internal/platform"
	"latchkey/internal/protocol"
	"latchkey/internal/scope"
	"latchkey/internal/storage"
)

// Resource indicators (RFC 8707) and the APIs they name, and RFC 9728
// protected resource metadata.

// errOneResource refuses a request naming more than one resource.
var errOneResource = newError(protocol.InvalidTarget, http.StatusBadRequest, "resource is given more than once: ask for one API at a time")

// resourceOf is the API the request's resource names: nil for none or the
// built-in API.
func (p *Provider) resourceOf(ctx context.Context, form url.Values) (*storage.API, *Error) {
	switch len(form["resource"]) {
	case 0:
		return nil, nil
	case 1:
	default:
		return nil, errOneResource
	}
	api, err := p.apis.Resource(ctx, form.Get("resource"))
	switch {
	case errors.Is(err, platform.ErrUnknownResource):
		return nil, newError(protocol.InvalidTarget, http.StatusBadRequest, "resource "+quote(form.Get("resource"))+" names no API of this server")
	case err != nil:
		return nil, internal(err)
	}
	return api, nil
}

// resourceOf sets req.API from the request's resource: one, naming an
// API, asked for with the code flow and no communities.
func resourceOf(ctx context.Context, req *AuthorizeRequest, q url.Values, cfg AuthorizeConfig) *Error {
	rs := q["resource"]
	if len(rs) == 0 || cfg.Resource == nil {
		return nil
	}
	if len(rs) > 1 {
		return errOneResource
	}
	api, err := cfg.Resource(ctx, rs[0])
	switch {
	case errors.Is(err, platform.ErrUnknownResource):
		return newError(protocol.InvalidTarget, http.StatusBadRequest, "resource "+quote(rs[0])+" names no API of this server")
	case err != nil:
		return internal(err)
	case api != nil && req.ResponseType != protocol.ResponseCode:
		return newError(protocol.InvalidRequest, http.StatusBadRequest, "tokens for an API come from the code flow: response_type=code")
	case api != nil && len(req.CommunityIDs) > 0:
		return newError(protocol.InvalidRequest, http.StatusBadRequest, "group_ids are for the built-in API: community tokens are not an API's")
	}
	req.API = api
	return nil
}

// claimScopes are the OpenID Connect scopes a request for an API may ask
// beside the API's own, as bits of the built-in mask.
var claimScopes = map[string]scope.Mask{"openid": scope.OpenID, "profile": scope.Profile, "email": scope.Email, "offline_access": scope.Offline}

// apiRequestScopes splits an API request's scope: the API's scopes by
// name, and the OpenID Connect ones beside them.
func apiRequestScopes(api *storage.API, raw string) (m, claims scope.Mask, err error) {
	var names []string
	for _, n := range strings.Fields(raw) {
		if c, ok := claimScopes[n]; ok {
			claims |= c
			continue
		}
		names = append(names, n)
	}
	m, err = platform.Scopes(api, names)
	return m, claims, err
}

// sameResource refuses a token request whose resource is not its grant's
// API (RFC 8707 §2.2: a refresh or a code may not switch the resource).
func (p *Provider) sameResource(ctx context.Context, form url.Values, apiID int64) *Error {
	api, e := p.resourceOf(ctx, form)
	if e != nil {
		return e
	}
	if len(form["resource"]) == 0 {
		return nil
	}
	if api == nil && apiID != 0 || api != nil && api.ID != apiID {
		return newError(protocol.InvalidTarget, http.StatusBadRequest, "resource is not the API this grant is for: a grant keeps its resource")
	}
	return nil
}

// apiScopes reads an API request's scope: the API's scope names,
// space-separated (VK's names and OpenID Connect's are not an API's).
func apiScopes(api *storage.API, raw string) (scope.Mask, *Error) {
	m, err := platform.Scopes(api, strings.Fields(raw))
	if err != nil {
		return 0, newError(protocol.InvalidScope, http.StatusBadRequest, err.Error())
	}
	return m, nil
}

func quote(s string) string {
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"`
}

// ProtectedResource serves GET /.well-known/oauth-protected-resource/<path>
// (RFC 9728): the built-in API's metadata at /method, a gateway API's at
// /api/<slug>.
func (p *Provider) ProtectedResource(w http.ResponseWriter, r *http.Request) {
	path := "/" + r.PathValue("path")
	out := map[string]any{
		"authorization_servers":             []string{p.Issuer()},
		"bearer_methods_supported":          []string{"header"},
		"dpop_signing_alg_values_supported": dpopAlgorithms(),
	}
	switch slug, gateway := strings.CutPrefix(path, "/api/"); {
	case path == "/method":
		out["resource"] = p.apis.BuiltinIdentifier()
		out["resource_name"] = "Latchkey API"
		out["scopes_supported"] = scope.Known(scope.User).Names(scope.User)
		out["bearer_methods_supported"] = []string{"header", "body", "query"}
	case gateway && slug != "" && !strings.Contains(slug, "/"):
		api, err := p.apis.Resource(r.Context(), p.apis.GatewayIdentifier(slug))
		if errors.Is(err, platform.ErrUnknownResource) || err == nil && api == nil {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "not_found", "error_description": "no API is served at " + path})
			return
		}
		if err != nil {
			p.fail(w, r, internal(err))
			return
		}
		out["resource"] = api.Identifier
		out["resource_name"] = api.Name
		names := []string{}
		for _, sc := range api.Scopes {
			if !sc.Removed {
				names = append(names, sc.Name)
			}
		}
		out["scopes_supported"] = names
	default:
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "not_found", "error_description": "no API is served at " + path})
		return
	}
	w.Header().Set("Cache-Control", "public, max-age=60")
	writeBody(w, out)
}
