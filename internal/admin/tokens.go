package admin

import (
	"context"
	"encoding/hex"
	"net/http"

	"latchkey/internal/admin/view"
	"latchkey/internal/platform"
	"latchkey/internal/storage"
	"latchkey/internal/token"
)

// Tokens is what the tokens' operations ask (platform.Tokens).
type Tokens interface {
	ListTokens(ctx context.Context, f storage.TokenFilter) ([]storage.Token, error)
	RevokeTokenByHash(ctx context.Context, actor platform.Actor, h token.Hash) (bool, error)
}

func (a *API) listTokens(c *call) (int, any, error) {
	app, err := c.query("app_id", 0)
	if err != nil {
		return 0, nil, err
	}
	user, err := c.query("user_id", 0)
	if err != nil {
		return 0, nil, err
	}
	limit, err := c.query("limit", 100)
	if err != nil {
		return 0, nil, err
	}
	if app == 0 && user == 0 {
		return 0, nil, &badRequest{"app_id or user_id is required: whose tokens"}
	}
	tokens, err := a.Tokens.ListTokens(c.ctx, storage.TokenFilter{AppID: app, UserID: user, LiveOnly: c.r.URL.Query().Get("live") == "true",
		Limit: int(min(max(limit, 1), 1000))})
	if err != nil {
		return 0, nil, err
	}
	out := struct {
		Tokens []view.Token `json:"tokens"`
	}{Tokens: []view.Token{}}
	for _, t := range tokens {
		out.Tokens = append(out.Tokens, view.OfToken(t))
	}
	return http.StatusOK, out, nil
}

func (a *API) revokeToken(c *call) (int, any, error) {
	b, err := hex.DecodeString(c.r.PathValue("hash"))
	if err != nil || len(b) != len(token.Hash{}) {
		return 0, nil, &badRequest{"hash must be the 64 hex digits a token list shows"}
	}
	revoked, err := a.Tokens.RevokeTokenByHash(c.ctx, c.actor, token.Hash(b))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]bool{"revoked": revoked}, nil
}

func (a *API) audit(c *call) (int, any, error) {
	app, err := c.query("app_id", 0)
	if err != nil {
		return 0, nil, err
	}
	community, err := c.query("community_id", 0)
	if err != nil {
		return 0, nil, err
	}
	limit, err := c.query("limit", 100)
	if err != nil {
		return 0, nil, err
	}
	events, err := a.Admin.Audit(c.ctx, storage.AuditFilter{AppID: app, CommunityID: community, Limit: int(min(max(limit, 1), 10000))})
	if err != nil {
		return 0, nil, err
	}
	out := struct {
		Events []view.Event `json:"events"`
	}{Events: []view.Event{}}
	for _, e := range events {
		out.Events = append(out.Events, view.OfEvent(e))
	}
	return http.StatusOK, out, nil
}
