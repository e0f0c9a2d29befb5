package console

import (
	"context"
	"latchkey/internal/gateway"
	"net/http"
	"strconv"
	"strings"
	"time"

	"latchkey/internal/platform"
	"latchkey/internal/storage"
	"latchkey/internal/web"
)

// APIs is what the console asks of the APIs (platform.APIs).
type APIs interface {
	APIsOf(ctx context.Context, ownerID int64) ([]platform.APIView, error)
	API(ctx context.Context, actor platform.Actor, id int64) (platform.APIView, error)
	CreateAPI(ctx context.Context, actor platform.Actor, a platform.NewAPI) (platform.APIView, error)
	UpdateAPI(ctx context.Context, actor platform.Actor, id int64, s platform.APISettings) (platform.APIView, error)
	RotateSecret(ctx context.Context, actor platform.Actor, id int64) (platform.APIView, error)
	DeleteAPI(ctx context.Context, actor platform.Actor, id int64) (platform.APIView, error)
	LiveTokens(ctx context.Context, actor platform.Actor, id int64) (int, error)
}

// newAPIView is the form that registers an API.
type newAPIView struct {
	Name, Identifier, ScopeLines, TokenFormat string
}

// apiView is an API's page.
type apiView struct {
	platform.APIView
	ScopeLines string
	TTL        string
	LiveTokens string
	// Examples: getting a token, calling through the gateway, and nginx's
	// forward authentication (docs/gateway.md has the whole of it).
	TokenExample, GatewayExample, NginxExample string
}

// examples fill the page's examples for the server at base.
func (v *apiView) examples(base string) {
	scopes := strings.Fields(scopeNames(v.Scopes))
	v.TokenExample = "curl -u CLIENT_ID:CLIENT_SECRET " + base + "/access_token \\\n  -d grant_type=client_credentials -d resource=" + v.Identifier +
		" -d scope='" + strings.Join(scopes, " ") + "'"
	if v.Upstream != "" {
		v.GatewayExample = "curl -H \"Authorization: Bearer $TOKEN\" " + v.Identifier + "/"
	}
	v.NginxExample = gateway.NginxConfig(base, "http://YOUR_API")
}

func scopeNames(scopes []storage.APIScope) string {
	var names []string
	for _, sc := range scopes {
		if !sc.Removed {
			names = append(names, sc.Name)
		}
	}
	return strings.Join(names, " ")
}

// scopeLines writes an API's scopes as the form takes them.
func scopeLines(scopes []storage.APIScope) string {
	var b strings.Builder
	for _, sc := range scopes {
		if !sc.Removed {
			b.WriteString(sc.Name + " = " + sc.EN + " | " + sc.RU + "\n")
		}
	}
	return b.String()
}

// parseScopeLines reads the form's scopes: one per line, "name = English |
// Russian".
func parseScopeLines(s string) ([]platform.ScopeSpec, error) {
	var out []platform.ScopeSpec
	for _, line := range web.Lines(s) {
		name, desc, ok := strings.Cut(line, "=")
		en, ru, ok2 := strings.Cut(desc, "|")
		if !ok || !ok2 {
			return nil, &platform.Error{Kind: platform.Invalid, Field: "scopes", Message: "write each scope on a line of its own as: name = English description | Russian description"}
		}
		out = append(out, platform.ScopeSpec{Name: strings.TrimSpace(name), EN: strings.TrimSpace(en), RU: strings.TrimSpace(ru)})
	}
	return out, nil
}

// NewAPIForm shows the form that registers an API.
func (h *Handler) NewAPIForm(w http.ResponseWriter, r *http.Request) {
	u := h.RequireUser(w, r)
	if u == nil {
		return
	}
	h.pages.apiNew.Render(w, r, http.StatusOK, web.Page{Title: "Register an API", Wide: true, User: u}, newAPIView{})
}

// CreateAPI registers the API and shows its page with the introspection
// secret, this once.
func (h *Handler) CreateAPI(w http.ResponseWriter, r *http.Request) {
	u := h.SignedInPost(w, r)
	if u == nil {
		return
	}
	f := r.PostForm
	form := newAPIView{Name: f.Get("name"), Identifier: strings.TrimSpace(f.Get("identifier")), ScopeLines: f.Get("scopes"), TokenFormat: f.Get("token_format")}
	refuse := func(err error) {
		h.pages.apiNew.Render(w, r, http.StatusUnprocessableEntity, web.Page{Title: "Register an API", Wide: true, User: u, Error: web.Sentence(err)}, form)
	}
	scopes, err := parseScopeLines(form.ScopeLines)
	if err != nil {
		refuse(err)
		return
	}
	v, err := h.apis.CreateAPI(r.Context(), web.Actor(u, r), platform.NewAPI{OwnerID: u.ID, Identifier: form.Identifier,
		APISettings: platform.APISettings{Name: form.Name, Scopes: scopes, TokenFormat: form.TokenFormat}})
	if k := platform.KindOf(err); k == platform.Invalid || k == platform.Conflict {
		refuse(err)
		return
	} else if !h.Answered(w, r, err) {
		return
	}
	h.renderAPI(w, r, u, v, http.StatusCreated, "API registered. Copy the introspection secret now: it is not shown again.", "")
}

// ownedAPI reads {id} and loads the API for its owner, answering 404 or
// 403 itself when it cannot.
func (h *Handler) ownedAPI(w http.ResponseWriter, r *http.Request, u *storage.User) (platform.APIView, bool) {
	id, ok := web.PathID(r, "id")
	if !ok {
		h.ErrorPage(w, r, http.StatusNotFound, "No such API", "There is no API with this ID.", "")
		return platform.APIView{}, false
	}
	v, err := h.apis.API(r.Context(), web.Actor(u, r), id)
	return v, h.Answered(w, r, err)
}

// APIPage shows an API's page.
func (h *Handler) APIPage(w http.ResponseWriter, r *http.Request) {
	u := h.RequireUser(w, r)
	if u == nil {
		return
	}
	v, ok := h.ownedAPI(w, r, u)
	if !ok {
		return
	}
	h.renderAPI(w, r, u, v, http.StatusOK, apiNotices[r.URL.Query().Get("done")], "")
}

var apiNotices = map[string]string{"saved": "Settings saved."}

func (h *Handler) renderAPI(w http.ResponseWriter, r *http.Request, u *storage.User, v platform.APIView, status int, notice, errMsg string) {
	n, err := h.apis.LiveTokens(r.Context(), web.Actor(u, r), v.ID)
	if err != nil {
		h.Fail(w, r, err)
		return
	}
	live := strconv.Itoa(n)
	if n >= 1000 {
		live = h.T(r, "1000 or more")
	}
	view := apiView{APIView: v, ScopeLines: scopeLines(v.Scopes), TTL: v.TokenTTL.String(), LiveTokens: live}
	view.examples(strings.TrimSuffix(h.discoveryURL, "/.well-known/openid-configuration"))
	h.pages.api.Render(w, r, status, web.Page{Title: v.Name, Wide: true, User: u, Notice: notice, Error: errMsg}, view)
}

// UpdateAPI saves the settings form; the gateway fields stay as the
// operator set them.
func (h *Handler) UpdateAPI(w http.ResponseWriter, r *http.Request) {
	u := h.SignedInPost(w, r)
	if u == nil {
		return
	}
	v, ok := h.ownedAPI(w, r, u)
	if !ok {
		return
	}
	f := r.PostForm
	s := platform.APISettings{Name: f.Get("name"), TokenFormat: f.Get("token_format"), TokenTTL: v.TokenTTL, Rate: v.Rate, Upstream: v.Upstream, Slug: v.Slug, Routes: v.Routes}
	scopes, err := parseScopeLines(f.Get("scopes"))
	if err == nil && f.Get("token_ttl") != "" {
		if s.TokenTTL, err = time.ParseDuration(strings.TrimSpace(f.Get("token_ttl"))); err != nil {
			err = &platform.Error{Kind: platform.Invalid, Field: "token ttl", Message: "write a duration such as 1h or 5m"}
		}
	}
	if err == nil {
		s.Scopes = scopes
		_, err = h.apis.UpdateAPI(r.Context(), web.Actor(u, r), v.ID, s)
	}
	if platform.KindOf(err) == platform.Invalid {
		h.renderAPI(w, r, u, v, http.StatusUnprocessableEntity, "", web.Sentence(err))
		return
	} else if !h.Answered(w, r, err) {
		return
	}
	http.Redirect(w, r, "/apis/"+strconv.FormatInt(v.ID, 10)+"?done=saved", http.StatusSeeOther)
}

// apiConfirmations describe the API actions that ask first.
var apiConfirmations = map[string]struct{ heading, message, button string }{
	"rotate-secret": {"Generate a new introspection secret?", "The current secret stops working at once: update your API's configuration with the new one.", "Generate new secret"},
	"delete":        {"Delete this API?", "The API is deleted and every token for it stops working at once. This cannot be undone.", "Delete API"},
}

// ConfirmAPIForm asks before an API action that breaks what is deployed.
func (h *Handler) ConfirmAPIForm(w http.ResponseWriter, r *http.Request) {
	u := h.RequireUser(w, r)
	if u == nil {
		return
	}
	c, known := apiConfirmations[r.PathValue("action")]
	if !known {
		h.ErrorPage(w, r, http.StatusNotFound, "Not found", "There is no such action.", "")
		return
	}
	v, ok := h.ownedAPI(w, r, u)
	if !ok {
		return
	}
	base := "/apis/" + strconv.FormatInt(v.ID, 10)
	h.pages.confirm.Render(w, r, http.StatusOK, web.Page{Title: c.heading, User: u}, confirmView{Heading: c.heading, Message: c.message, Confirm: c.button,
		Action: base + "/" + r.PathValue("action"), Back: base, Danger: true})
}

// APIAction performs a confirmed action: a new secret (shown once), or
// deletion.
func (h *Handler) APIAction(w http.ResponseWriter, r *http.Request) {
	u := h.SignedInPost(w, r)
	if u == nil {
		return
	}
	id, ok := web.PathID(r, "id")
	if !ok {
		h.ErrorPage(w, r, http.StatusNotFound, "No such API", "There is no API with this ID.", "")
		return
	}
	action := r.PathValue("action")
	if _, known := apiConfirmations[action]; !known {
		h.ErrorPage(w, r, http.StatusNotFound, "Not found", "There is no such action.", "")
		return
	}
	if r.PostForm.Get("confirm") != "yes" {
		h.ErrorPage(w, r, http.StatusBadRequest, "Not done", "This action needs confirmation.", "/apis/"+r.PathValue("id"))
		return
	}
	a := web.Actor(u, r)
	if action == "delete" {
		if _, err := h.apis.DeleteAPI(r.Context(), a, id); h.Answered(w, r, err) {
			http.Redirect(w, r, "/apps", http.StatusSeeOther)
		}
		return
	}
	v, err := h.apis.RotateSecret(r.Context(), a, id)
	if !h.Answered(w, r, err) {
		return
	}
	h.renderAPI(w, r, u, v, http.StatusOK, "New introspection secret made. Copy it now: it is not shown again.", "")
}
