package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"latchkey/internal/storage"
	"latchkey/internal/token"
)

// ---- apps

const appCols = `id, owner_id, title, description, type, redirect_uris, iframe_url, iframe_scope,
	secret_hash, secret_sealed, secret_created_at, old_secret_hash, old_secret_sealed,
	old_secret_created_at, old_secret_expires_at, service_token_sealed, client_credentials, created_at,
	auth_method, jwks, jwks_uri, post_logout_redirect_uris, profile, backchannel_logout_uri`

func scanApp(row scanner) (storage.App, error) {
	var a storage.App
	var uris, logoutURIs string
	var secretHash, oldHash, oldSealed []byte
	var secretCreated, oldCreated, oldExpires, created int64
	err := row.Scan(&a.ID, &a.OwnerID, &a.Title, &a.Description, &a.Type, &uris, &a.IFrameURL, &a.IFrameScope,
		&secretHash, &a.Secret.Sealed, &secretCreated, &oldHash, &oldSealed,
		&oldCreated, &oldExpires, &a.ServiceTokenSealed, &a.ClientCredentials, &created,
		&a.AuthMethod, &a.JWKS, &a.JWKSURI, &logoutURIs, &a.Profile, &a.BackchannelLogoutURI)
	if err != nil {
		return a, err
	}
	if err := json.Unmarshal([]byte(logoutURIs), &a.PostLogoutRedirectURIs); err != nil {
		return a, fmt.Errorf("app %d: post_logout_redirect_uris: %w", a.ID, err)
	}
	if err := json.Unmarshal([]byte(uris), &a.RedirectURIs); err != nil {
		return a, fmt.Errorf("app %d: redirect_uris: %w", a.ID, err)
	}
	a.Secret.Hash = hashOf(secretHash)
	a.Secret.CreatedAt = at(secretCreated)
	if oldHash != nil {
		a.OldSecret = &storage.ClientSecret{Hash: hashOf(oldHash), Sealed: oldSealed, CreatedAt: at(oldCreated), ExpiresAt: at(oldExpires)}
	}
	a.CreatedAt = at(created)
	return a, nil
}

// appArgs are the mutable columns, in the order of appCols after owner_id.
func appArgs(a *storage.App) []any {
	uris, logoutURIs := a.RedirectURIs, a.PostLogoutRedirectURIs
	if uris == nil {
		uris = []string{}
	}
	if logoutURIs == nil {
		logoutURIs = []string{}
	}
	var oldHash, oldSealed []byte
	var oldCreated, oldExpires int64
	if a.OldSecret != nil {
		oldHash, oldSealed = a.OldSecret.Hash[:], a.OldSecret.Sealed
		oldCreated, oldExpires = ts(a.OldSecret.CreatedAt), ts(a.OldSecret.ExpiresAt)
	}
	return []any{a.Title, a.Description, string(a.Type), jsonText(uris), a.IFrameURL, int64(a.IFrameScope),
		a.Secret.Hash[:], a.Secret.Sealed, ts(a.Secret.CreatedAt), oldHash, oldSealed,
		oldCreated, oldExpires, a.ServiceTokenSealed, a.ClientCredentials, a.AuthMethod, a.JWKS, a.JWKSURI, jsonText(logoutURIs), a.Profile, a.BackchannelLogoutURI}
}

func (s *Store) CreateApp(ctx context.Context, a *storage.App, serviceToken storage.Token) error {
	return s.tx(ctx, "CreateApp", func(tx *Tx) error { return insertApp(ctx, tx, a, serviceToken) })
}

// insertApp stores a, sets its ID, and stores its service token.
func insertApp(ctx context.Context, tx *Tx, a *storage.App, serviceToken storage.Token) error {
	args := append([]any{a.OwnerID}, appArgs(a)...)
	args = append(args, ts(a.CreatedAt))
	err := tx.QueryRowContext(ctx,
		`INSERT INTO apps (owner_id, title, description, type, redirect_uris, iframe_url, iframe_scope,
			secret_hash, secret_sealed, secret_created_at, old_secret_hash, old_secret_sealed,
			old_secret_created_at, old_secret_expires_at, service_token_sealed, client_credentials,
			auth_method, jwks, jwks_uri, post_logout_redirect_uris, profile, backchannel_logout_uri, created_at)
		 VALUES (`+placeholders(1, len(args))+`) RETURNING id`, args...).Scan(&a.ID)
	if err != nil {
		return err
	}
	serviceToken.AppID = a.ID
	return insertToken(ctx, tx, serviceToken)
}

func (s *Store) GetApp(ctx context.Context, id int64) (storage.App, error) {
	a, err := scanApp(s.r.QueryRowContext(ctx, `SELECT `+appCols+` FROM apps WHERE id = $1`, id))
	return a, s.err(err)
}

func (s *Store) UpdateApp(ctx context.Context, id int64, update func(*storage.App) error) (storage.App, error) {
	var a storage.App
	var updateErr error
	err := s.tx(ctx, "UpdateApp", func(tx *Tx) error {
		var err error
		a, err = scanApp(tx.QueryRowContext(ctx, `SELECT `+appCols+` FROM apps WHERE id = $1`+s.ForUpdate, id))
		if err != nil {
			return err
		}
		if updateErr = update(&a); updateErr != nil {
			return updateErr
		}
		a.ID = id
		return s.writeApp(ctx, tx, &a)
	})
	if updateErr != nil {
		return a, updateErr
	}
	return a, err
}

// writeApp writes every mutable column of a.
func (s *Store) writeApp(ctx context.Context, tx *Tx, a *storage.App) error {
	res, err := tx.ExecContext(ctx,
		`UPDATE apps SET title = $1, description = $2, type = $3, redirect_uris = $4, iframe_url = $5, iframe_scope = $6,
			secret_hash = $7, secret_sealed = $8, secret_created_at = $9, old_secret_hash = $10,
			old_secret_sealed = $11, old_secret_created_at = $12, old_secret_expires_at = $13,
			service_token_sealed = $14, client_credentials = $15, auth_method = $16, jwks = $17, jwks_uri = $18,
			post_logout_redirect_uris = $19, profile = $20, backchannel_logout_uri = $21
		 WHERE id = $22`, append(appArgs(a), a.ID)...)
	return s.affected(res, err)
}

func (s *Store) ReplaceServiceToken(ctx context.Context, t storage.Token, sealed []byte) ([]token.Hash, error) {
	var revoked []token.Hash
	err := s.tx(ctx, "ReplaceServiceToken", func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE apps SET service_token_sealed = $1 WHERE id = $2`, sealed, t.AppID)
		if err := s.affected(res, err); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx,
			`UPDATE tokens SET revoked_at = $1, revoke_reason = $2
			 WHERE app_id = $3 AND kind = $4 AND flow = $5 AND revoked_at = 0 RETURNING hash`,
			ts(t.IssuedAt), string(storage.RevokedReplaced), t.AppID, string(token.Service), string(storage.FlowServiceToken))
		if err != nil {
			return err
		}
		if revoked, err = collect(rows, scanHash); err != nil {
			return err
		}
		if err := logRevoked(ctx, tx, revoked, t.IssuedAt); err != nil {
			return err
		}
		return insertToken(ctx, tx, t)
	})
	return revoked, err
}

func (s *Store) ListApps(ctx context.Context, f storage.AppFilter) ([]storage.App, error) {
	conds, args := []string{"id > $1"}, []any{f.After}
	if f.OwnerID != 0 {
		args = append(args, f.OwnerID)
		conds = append(conds, fmt.Sprintf("owner_id = $%d", len(args)))
	}
	if f.Registered {
		conds = append(conds, "owner_id = 0")
	}
	if f.Type != "" {
		args = append(args, string(f.Type))
		conds = append(conds, fmt.Sprintf("type = $%d", len(args)))
	}
	limit := ""
	if f.Limit > 0 {
		limit = " LIMIT " + strconv.Itoa(f.Limit)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+appCols+` FROM apps WHERE `+strings.Join(conds, " AND ")+` ORDER BY id`+limit, args...)
	if err != nil {
		return nil, s.err(err)
	}
	apps, err := collect(rows, scanApp)
	return apps, s.err(err)
}

func (s *Store) DeleteApp(ctx context.Context, id int64) ([]token.Hash, error) {
	var hashes []token.Hash
	err := s.tx(ctx, "DeleteApp", func(tx *Tx) error {
		var err error
		hashes, err = s.deleteApp(ctx, tx, id)
		return err
	})
	return hashes, err
}

// deleteApp deletes the app and its tokens, logging the live ones as
// revoked, and returns their hashes.
func (s *Store) deleteApp(ctx context.Context, tx *Tx, id int64) ([]token.Hash, error) {
	rows, err := tx.QueryContext(ctx, `SELECT hash FROM tokens WHERE app_id = $1 AND revoked_at = 0`, id)
	if err != nil {
		return nil, err
	}
	hashes, err := collect(rows, scanHash)
	if err != nil {
		return nil, err
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM apps WHERE id = $1`, id)
	if err := s.affected(res, err); err != nil {
		return nil, err
	}
	return hashes, logRevoked(ctx, tx, hashes, time.Now())
}
