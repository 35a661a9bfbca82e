package authz

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"spine/shared/authn"
	"spine/shared/contracts"
	"spine/shared/secrets"
	"spine/shared/tenancy"
)

// opStorage is op's storage over the authz store, Redis (auth requests) and the key ring. Every
// error it returns to op is an *oidc.Error whose description is ours: op puts descriptions (and,
// for errors that are not *oidc.Error, err.Error()) into responses, so a driver's or Redis's
// message must never reach it; the cause is logged here instead.
type opStorage struct {
	p    *Provider
	keys signingKeys
}

var (
	_ op.Storage                        = (*opStorage)(nil)
	_ op.ClientCredentialsStorage       = (*opStorage)(nil)
	_ op.CanGetPrivateClaimsFromRequest = (*opStorage)(nil)
	_ op.CanSetUserinfoFromRequest      = (*opStorage)(nil)
	_ op.CanTerminateSessionFromRequest = (*opStorage)(nil)
)

// ---- errors ----

// serverError logs cause and returns op a server_error that names nothing of it.
func (s *opStorage) serverError(ctx context.Context, what string, cause error) *oidc.Error {
	s.p.log.ErrorContext(ctx, "authz: "+what, "err", cause)
	return oidc.ErrServerError().WithDescription("The authorization server could not complete the request; try again later.")
}

// temporarilyUnavailable is RFC 6749 §4.1.2.1's error for /authorize when the sign-in state
// (Redis) is unavailable.
func (s *opStorage) temporarilyUnavailable(ctx context.Context, cause error) *oidc.Error {
	s.p.log.WarnContext(ctx, "authz: sign-in state unavailable", "err", cause)
	return &oidc.Error{ErrorType: "temporarily_unavailable", Description: "Sign-in is unavailable right now; try again later."}
}

// grantError maps the store's sentinels of the token paths to OAuth errors (RFC 6749 §5.2);
// anything else is a server error.
func (s *opStorage) grantError(ctx context.Context, what string, err error) *oidc.Error {
	switch {
	case errors.Is(err, ErrRefreshTokenReused):
		s.p.log.WarnContext(ctx, "authz: a consumed refresh token was presented again; its family is revoked")
		return oidc.ErrInvalidGrant().WithDescription("The refresh token was used already; every token of its family is revoked.")
	case errors.Is(err, ErrRefreshTokenNotFound):
		return oidc.ErrInvalidGrant().WithDescription("The refresh token is invalid, expired or revoked.")
	case errors.Is(err, ErrCodeReused):
		s.p.log.WarnContext(ctx, "authz: an authorization code was redeemed twice; the tokens issued from it are revoked")
		return oidc.ErrInvalidGrant().WithDescription("The authorization code was used already; the tokens issued from it are revoked.")
	case errors.Is(err, ErrCodeNotFound), errors.Is(err, ErrCodeExpired):
		return oidc.ErrInvalidGrant().WithDescription("The authorization code is invalid or expired.")
	case errors.Is(err, ErrClientNotFound), errors.Is(err, ErrInvalidClient):
		return oidc.ErrInvalidClient().WithDescription("Client authentication failed.")
	case errors.Is(err, ErrScopeNotGranted):
		return oidc.ErrInvalidScope().WithDescription("The refresh token does not hold the requested scope.")
	}
	return s.serverError(ctx, what, err)
}

// ---- clients ----

// client reads a client by its client_id (the store's cache; a malformed id is not found).
func (s *opStorage) client(ctx context.Context, id string) (Client, *oidc.Error) {
	c, err := s.p.store.ClientByID(ctx, id)
	if err != nil {
		return Client{}, s.grantError(ctx, "reading a client", err)
	}
	return c, nil
}

// GetClientByClientID implements op.Storage.
func (s *opStorage) GetClientByClientID(ctx context.Context, clientID string) (op.Client, error) {
	c, err := s.client(ctx, clientID)
	if err != nil {
		return nil, err
	}
	return &opClient{c: c, p: s.p}, nil
}

// authenticate returns the confidential client clientID whose secret is secret (the store compares
// hashes in constant time, with the same work for an unknown client), or invalid_client.
func (s *opStorage) authenticate(ctx context.Context, clientID, secret string) (Client, *oidc.Error) {
	c, err := s.p.store.AuthenticateClient(ctx, clientID, secret)
	if err != nil {
		return Client{}, s.grantError(ctx, "authenticating a client", err)
	}
	return c, nil
}

// AuthorizeClientIDSecret implements op.Storage.
func (s *opStorage) AuthorizeClientIDSecret(ctx context.Context, clientID, clientSecret string) error {
	if _, err := s.authenticate(ctx, clientID, clientSecret); err != nil {
		return err
	}
	return nil
}

// ClientCredentials implements op.ClientCredentialsStorage.
func (s *opStorage) ClientCredentials(ctx context.Context, clientID, clientSecret string) (op.Client, error) {
	c, err := s.authenticate(ctx, clientID, clientSecret)
	if err != nil {
		return nil, err
	}
	return &opClient{c: c, p: s.p}, nil
}

// ClientCredentialsTokenRequest implements op.ClientCredentialsStorage: the requested scopes must
// be among the client's (none requested: all of them); a platform client gets a platform-admin
// token only if it is one — a platform client without platform_admin has no tenant to act in.
func (s *opStorage) ClientCredentialsTokenRequest(ctx context.Context, clientID string, scopes []string) (op.TokenRequest, error) {
	c, err := s.client(ctx, clientID)
	if err != nil {
		return nil, err
	}
	if c.Platform() && !c.PlatformAdmin {
		return nil, oidc.ErrUnauthorizedClient().WithDescription("A platform client without platform_admin cannot use client_credentials: its tokens would name no tenant.")
	}
	if len(scopes) == 0 {
		for _, sc := range c.Scopes {
			scopes = append(scopes, string(sc))
		}
	}
	for _, sc := range scopes {
		if !c.AllowsScope(sc) {
			return nil, oidc.ErrInvalidScope().WithDescription("The scope %q is not allowed for this client.", sc)
		}
	}
	return &ccRequest{client: c, scopes: scopes, audience: []string{s.p.cfg.Audience}}, nil
}

// ---- auth requests (Redis) ----

// CreateAuthRequest implements op.AuthStorage: after op validated the client, the redirect URI,
// the scopes and the response type, the scopes are narrowed to the client's (none left:
// invalid_scope), PKCE is checked (S256 only; required for public clients) and the request is
// stored in Redis, bound to the calling browser. The sign-in narrows the API scopes further, to
// the user's permissions (Provider.signedIn).
func (s *opStorage) CreateAuthRequest(ctx context.Context, req *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	c, oerr := s.client(ctx, req.ClientID)
	if oerr != nil {
		return nil, oerr
	}
	switch {
	case req.CodeChallenge == "" && c.Type == ClientPublic:
		return nil, oidc.ErrInvalidRequest().WithDescription("A public client must use PKCE: code_challenge with code_challenge_method=S256.")
	case req.CodeChallenge != "" && req.CodeChallengeMethod != oidc.CodeChallengeMethodS256:
		return nil, oidc.ErrInvalidRequest().WithDescription("code_challenge_method must be S256.")
	}
	// op keeps OpenID's own scopes (phone and address too) whatever the client may have: only
	// the client's scopes go on, so a client without email never gets the email claim.
	scopes := clientScopes(c, req.Scopes)
	if len(scopes) == 0 {
		return nil, oidc.ErrInvalidScope().WithDescription("None of the requested scopes is allowed for this client.")
	}
	browser := browserFrom(ctx)
	if browser == "" {
		return nil, s.serverError(ctx, "creating an auth request", errors.New("no browser binding in the request context"))
	}
	a := &authRequest{
		ID: uuid.NewString(), CreatedAt: s.p.cfg.Now().UTC(),
		ClientID: req.ClientID, RedirectURI: req.RedirectURI, State: req.State, Nonce: req.Nonce,
		Scopes: scopes, Audience: []string{s.p.cfg.Audience}, ResponseType: req.ResponseType, ResponseMode: req.ResponseMode,
		CodeChallenge: req.CodeChallenge, CodeChallengeMethod: req.CodeChallengeMethod,
		Prompt: req.Prompt, MaxAge: req.MaxAge, LoginHint: req.LoginHint,
	}
	a.bindBrowser(browser)
	if !c.Platform() {
		a.Tenant = c.Tenant
	}
	if err := s.p.state.saveAuthRequest(ctx, a, authRequestTTL); err != nil {
		return nil, s.temporarilyUnavailable(ctx, err)
	}
	return a, nil
}

// stateError maps a Redis-state failure for op's callback and token paths.
func (s *opStorage) stateError(ctx context.Context, err error) *oidc.Error {
	if errors.Is(err, errAuthRequestNotFound) {
		return oidc.ErrInvalidRequest().WithDescription("The sign-in request is unknown or expired; start again.")
	}
	return s.temporarilyUnavailable(ctx, err)
}

// AuthRequestByID implements op.AuthStorage (the callback): only for the browser that started it.
func (s *opStorage) AuthRequestByID(ctx context.Context, id string) (op.AuthRequest, error) {
	a, err := s.p.state.authRequest(ctx, id)
	if err != nil {
		return nil, s.stateError(ctx, err)
	}
	if !a.fromBrowser(browserFrom(ctx)) {
		return nil, oidc.ErrInvalidRequest().WithDescription("The sign-in request was started in another browser; start again.")
	}
	return a, nil
}

// AuthRequestByCode implements op.AuthStorage: the code is op's encryption of the auth request id;
// the request (kept in Redis for the code's window) gives the code's tenant. Redemption happens
// when the tokens are created, after op checked PKCE and the client.
func (s *opStorage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	id, err := s.p.op.Crypto().Decrypt(code)
	if err != nil {
		return nil, oidc.ErrInvalidGrant().WithDescription("The authorization code is invalid or expired.")
	}
	a, err := s.p.state.authRequest(ctx, id)
	if errors.Is(err, errAuthRequestNotFound) || (err == nil && !a.CodeIssued) {
		return nil, oidc.ErrInvalidGrant().WithDescription("The authorization code is invalid or expired.")
	}
	if err != nil {
		return nil, s.serverError(ctx, "reading an auth request by its code", err)
	}
	a.codeHash = HashCode(code)
	return a, nil
}

// SaveAuthCode implements op.AuthStorage: the code's SHA-256 and what the token request needs go
// to the store (tenant: the signed-in user's); the auth request is kept until the code's window has
// passed. One code per auth request.
func (s *opStorage) SaveAuthCode(ctx context.Context, id, code string) error {
	a, err := s.p.state.authRequest(ctx, id)
	if err != nil {
		return s.stateError(ctx, err)
	}
	if _, terr := a.tenant(); !a.Complete || a.Subject == "" || terr != nil {
		return oidc.ErrInteractionRequired().WithDescription("The user has not signed in.")
	}
	if err := s.p.state.markCodeIssued(ctx, a); err != nil {
		if errors.Is(err, errCodeIssuedAlready) {
			return oidc.ErrInvalidRequest().WithDescription("A code was issued for this sign-in already; start again.")
		}
		return s.temporarilyUnavailable(ctx, err)
	}
	req, err := json.Marshal(a)
	if err != nil {
		return s.serverError(ctx, "encoding an auth request", err)
	}
	now := s.p.cfg.Now().UTC()
	if err := s.p.store.CreateCode(ctx, Code{TenantID: a.Tenant, Hash: HashCode(code), AuthRequestID: a.ID, ClientID: ClientID(a.ClientID),
		Subject: a.Subject, Request: req, CreatedAt: now, ExpiresAt: now.Add(s.p.cfg.CodeTTL)}); err != nil {
		return s.serverError(ctx, "storing an authorization code", err)
	}
	return nil
}

// DeleteAuthRequest implements op.AuthStorage. op calls it once the tokens are issued; a request
// whose code was issued is kept until the code's window has passed (its key's TTL), so that a
// replayed code still finds its tenant and the store revokes what the code issued.
func (s *opStorage) DeleteAuthRequest(ctx context.Context, id string) error {
	a, err := s.p.state.authRequest(ctx, id)
	if errors.Is(err, errAuthRequestNotFound) || (err == nil && a.CodeIssued) {
		return nil
	}
	if err == nil {
		err = s.p.state.deleteAuthRequest(ctx, id)
	}
	if err != nil {
		// The tokens are issued; a request left behind expires with its TTL.
		s.p.log.WarnContext(ctx, "authz: an auth request could not be deleted", "err", err)
	}
	return nil
}

// redeem redeems the code a was found by (once: a second redemption is ErrCodeReused, and the
// store revokes the family the first one started).
func (s *opStorage) redeem(ctx context.Context, a *authRequest) (Code, *oidc.Error) {
	if _, err := a.tenant(); err != nil || len(a.codeHash) == 0 {
		return Code{}, oidc.ErrInvalidGrant().WithDescription("The authorization code is invalid or expired.")
	}
	code, err := s.p.store.RedeemCode(ctx, a.Tenant, a.codeHash)
	if err != nil {
		return Code{}, s.grantError(ctx, "redeeming an authorization code", err)
	}
	if string(code.ClientID) != a.ClientID || code.Subject != a.Subject {
		return Code{}, oidc.ErrInvalidGrant().WithDescription("The authorization code is invalid or expired.")
	}
	return code, nil
}

// ---- tokens ----

// tenantIssuable refuses tokens for a tenant that is suspended, decommissioned or unknown to the
// directory (platform tokens have no tenant to ask about). Checked before anything is written, on
// every grant: suspension revokes a tenant's refresh tokens (its consumer), and this keeps its
// clients and signed-in users from getting new access tokens meanwhile.
func (s *opStorage) tenantIssuable(ctx context.Context, tenant string, grant oidc.GrantType) *oidc.Error {
	if tenant == PlatformTenant || s.p.dir == nil {
		return nil
	}
	id, err := tenancy.ParseTenantID(tenant)
	if err != nil {
		return s.serverError(ctx, "a token request's tenant", err)
	}
	st, err := s.p.dir.TenantStatus(ctx, id)
	switch {
	case errors.Is(err, tenancy.ErrTenantNotFound):
	case err != nil:
		return s.serverError(ctx, "reading the tenant's state", err)
	case st != tenancy.StatusSuspended && st != tenancy.StatusDecommissioned:
		return nil
	}
	const desc = "The tenant is suspended, decommissioned or unknown: no token is issued for it."
	if grant == oidc.GrantTypeClientCredentials {
		return oidc.ErrUnauthorizedClient().WithDescription(desc)
	}
	return oidc.ErrInvalidGrant().WithDescription(desc)
}

// accessToken returns a new access token's jti and expiry and emits TokenIssued in tenant (never
// the token: its jti).
func (s *opStorage) accessToken(ctx context.Context, tenant string, ev contracts.TokenIssuedData) (string, time.Time, *oidc.Error) {
	ev.TokenID = uuid.NewString()
	ev.ExpiresAt = s.p.cfg.Now().UTC().Add(s.p.cfg.AccessTokenTTL).Truncate(time.Second)
	ev.Scopes = slices.Clone(ev.Scopes)
	jti, exp := ev.TokenID, ev.ExpiresAt
	if err := s.p.store.EmitTokenIssued(ctx, tenant, ev); err != nil {
		return "", time.Time{}, s.serverError(ctx, "recording TokenIssued", err)
	}
	return jti, exp, nil
}

// CreateAccessToken implements op.AuthStorage for tokens without a refresh token: client
// credentials (nothing stored but the TokenIssued event) and a code redeemed without
// offline_access.
func (s *opStorage) CreateAccessToken(ctx context.Context, req op.TokenRequest) (string, time.Time, error) {
	switch r := req.(type) {
	case *ccRequest:
		if oerr := s.tenantIssuable(ctx, r.client.Tenant, oidc.GrantTypeClientCredentials); oerr != nil {
			return "", time.Time{}, oerr
		}
		jti, exp, err := s.accessToken(ctx, r.client.Tenant, contracts.TokenIssuedData{GrantType: string(oidc.GrantTypeClientCredentials),
			ClientID: string(r.client.ID), Subject: string(r.client.ID), Scopes: r.scopes, PlatformAdmin: r.client.Platform()})
		if err != nil {
			return "", time.Time{}, err
		}
		return jti, exp, nil
	case *authRequest:
		if oerr := s.tenantIssuable(ctx, r.Tenant, oidc.GrantTypeCode); oerr != nil {
			return "", time.Time{}, oerr
		}
		if oerr := s.userActive(ctx, r.Tenant, r.Subject); oerr != nil {
			return "", time.Time{}, oerr
		}
		code, err := s.redeem(ctx, r)
		if err != nil {
			return "", time.Time{}, err
		}
		r.family = code.FamilyID
		jti, exp, err := s.accessToken(ctx, r.Tenant, contracts.TokenIssuedData{GrantType: string(oidc.GrantTypeCode),
			ClientID: r.ClientID, Subject: r.Subject, Scopes: r.Scopes})
		if err != nil {
			return "", time.Time{}, err
		}
		return jti, exp, nil
	}
	return "", time.Time{}, s.serverError(ctx, "creating an access token", errors.New("unexpected token request type"))
}

// CreateAccessAndRefreshTokens implements op.AuthStorage: a redeemed code with offline_access
// starts a refresh-token family (the one the code's record names); a refresh token is rotated —
// consumed and replaced in one store transaction, a consumed one presented again revokes its
// family (reuse detection).
func (s *opStorage) CreateAccessAndRefreshTokens(ctx context.Context, req op.TokenRequest, current string) (string, string, time.Time, error) {
	now := s.p.cfg.Now().UTC()
	switch r := req.(type) {
	case *authRequest:
		if oerr := s.tenantIssuable(ctx, r.Tenant, oidc.GrantTypeCode); oerr != nil {
			return "", "", time.Time{}, oerr
		}
		if oerr := s.userActive(ctx, r.Tenant, r.Subject); oerr != nil {
			return "", "", time.Time{}, oerr
		}
		expires, oerr := s.refreshExpiry(now, r.AuthTime)
		if oerr != nil {
			return "", "", time.Time{}, oerr
		}
		code, oerr := s.redeem(ctx, r)
		if oerr != nil {
			return "", "", time.Time{}, oerr
		}
		r.family = code.FamilyID
		value, err := s.p.store.CreateRefreshToken(ctx, RefreshToken{TenantID: r.Tenant, FamilyID: code.FamilyID, ClientID: ClientID(r.ClientID),
			Subject: r.Subject, Scopes: r.Scopes, Audience: r.Audience, AuthTime: r.AuthTime, AMR: r.AMR,
			ExpiresAt: expires})
		if err != nil {
			return "", "", time.Time{}, s.grantError(ctx, "creating a refresh token", err)
		}
		jti, exp, oerr := s.accessToken(ctx, r.Tenant, contracts.TokenIssuedData{GrantType: string(oidc.GrantTypeCode),
			ClientID: r.ClientID, Subject: r.Subject, Scopes: r.Scopes, RefreshTokenIssued: true})
		if oerr != nil {
			return "", "", time.Time{}, oerr
		}
		return jti, value, exp, nil
	case *refreshRequest:
		if current == "" {
			break
		}
		old := r.rt
		if oerr := s.tenantIssuable(ctx, old.TenantID, oidc.GrantTypeRefreshToken); oerr != nil {
			return "", "", time.Time{}, oerr
		}
		expires, oerr := s.refreshExpiry(now, old.AuthTime)
		if oerr != nil {
			return "", "", time.Time{}, oerr
		}
		// This access token's API scopes are the ones the user holds now: a role revoked since
		// the sign-in drops its scopes from the next token (and one given back returns them,
		// within the family's grant). Asked before the rotation, so a failure spends nothing.
		scopes, err := s.p.userScopes(ctx, old.TenantID, old.Subject, r.scopes)
		if err != nil {
			return "", "", time.Time{}, s.serverError(ctx, "reading a user's permissions", err)
		}
		r.scopes = scopes
		// The successor keeps the family's grant as the client may still have it
		// (TokenRequestByRefreshToken narrowed it; RFC 6749 §6: a new refresh token's scope is
		// the one of the token it replaces), whatever narrower scope this access token has, and
		// a fresh expiry within the family's lifetime. (Scopes never nil: nil keeps the token's.)
		value, err := s.p.store.RotateRefreshToken(ctx, current, RefreshToken{ClientID: old.ClientID,
			Scopes: append([]string{}, old.Scopes...), ExpiresAt: expires})
		if err != nil {
			return "", "", time.Time{}, s.grantError(ctx, "rotating a refresh token", err)
		}
		jti, exp, oerr := s.accessToken(ctx, old.TenantID, contracts.TokenIssuedData{GrantType: string(oidc.GrantTypeRefreshToken),
			ClientID: string(old.ClientID), Subject: old.Subject, Scopes: r.GetScopes(), RefreshTokenIssued: true})
		if oerr != nil {
			return "", "", time.Time{}, oerr
		}
		return jti, value, exp, nil
	}
	return "", "", time.Time{}, s.serverError(ctx, "creating tokens", errors.New("unexpected token request type"))
}

// TokenRequestByRefreshToken implements op.AuthStorage: a usable refresh token of an Active user,
// within its family's lifetime (RefreshFamilyLifetime from the sign-in), its scopes narrowed to
// the ones its client still has. A consumed one is reuse: the store revokes its family and says
// so. op answers every error of this step invalid_grant.
func (s *opStorage) TokenRequestByRefreshToken(ctx context.Context, value string) (op.RefreshTokenRequest, error) {
	rt, err := s.p.store.RefreshTokenByValue(ctx, value)
	if err != nil {
		return nil, s.grantError(ctx, "reading a refresh token", err)
	}
	if _, err := tenancy.ParseTenantID(rt.TenantID); err != nil {
		return nil, oidc.ErrInvalidGrant().WithDescription("The refresh token is invalid, expired or revoked.")
	}
	if !s.p.cfg.Now().Before(rt.AuthTime.Add(s.p.cfg.RefreshFamilyLifetime)) {
		return nil, errFamilyEnded()
	}
	if oerr := s.userActive(ctx, rt.TenantID, rt.Subject); oerr != nil {
		return nil, oerr
	}
	c, oerr := s.client(ctx, string(rt.ClientID))
	if oerr != nil {
		return nil, oerr
	}
	rt.Scopes = clientScopes(c, rt.Scopes)
	return &refreshRequest{rt: rt, scopes: slices.Clone(rt.Scopes)}, nil
}

// errFamilyEnded is the answer to a refresh past its family's lifetime.
func errFamilyEnded() *oidc.Error {
	return oidc.ErrInvalidGrant().WithDescription("The sign-in behind this refresh token is too old; sign in again.")
}

// refreshExpiry is the expiry of a refresh token issued at now for a sign-in at authTime:
// RefreshTokenTTL from now, never past the family's lifetime (invalid_grant when that has passed).
func (s *opStorage) refreshExpiry(now, authTime time.Time) (time.Time, *oidc.Error) {
	end := authTime.Add(s.p.cfg.RefreshFamilyLifetime)
	if !now.Before(end) {
		return time.Time{}, errFamilyEnded()
	}
	if exp := now.Add(s.p.cfg.RefreshTokenTTL); exp.Before(end) {
		return exp, nil
	}
	return end, nil
}

// userActive checks that subject is still an Active user of tenant (identity): a code or a
// refresh token of a user disabled since the sign-in is invalid_grant.
func (s *opStorage) userActive(ctx context.Context, tenant, subject string) *oidc.Error {
	id, err := tenancy.ParseTenantID(tenant)
	if err != nil {
		return oidc.ErrInvalidGrant().WithDescription("The grant names no tenant.")
	}
	if _, err := s.p.users.Profile(ctx, id, subject); err != nil {
		if errors.Is(err, authn.ErrUnknownUser) {
			return oidc.ErrInvalidGrant().WithDescription("The user can no longer sign in.")
		}
		return s.serverError(ctx, "reading the user of a grant", err)
	}
	return nil
}

// GetRefreshTokenInfo implements op.AuthStorage (op's revocation, which the mux replaces by its
// own): the subject and id of a usable refresh token, or op.ErrInvalidRefreshToken.
func (s *opStorage) GetRefreshTokenInfo(ctx context.Context, clientID, value string) (string, string, error) {
	rt, err := s.p.store.RefreshTokenByValue(ctx, value)
	if err != nil || string(rt.ClientID) != clientID {
		return "", "", op.ErrInvalidRefreshToken
	}
	return rt.Subject, rt.ID, nil
}

// RevokeToken implements op.AuthStorage. op's revocation endpoint is not mounted (revocation needs
// the token's tenant, which op does not pass): the mux's /revoke (connect_endpoints.go) revokes.
func (s *opStorage) RevokeToken(ctx context.Context, _, _, _ string) *oidc.Error {
	return oidc.ErrServerError().WithDescription("Revocation is served by the connect endpoint /revoke.")
}

// TerminateSession implements op.AuthStorage; op calls TerminateSessionFromRequest instead, and
// this ends nothing (it has no id_token_hint to check).
func (s *opStorage) TerminateSession(context.Context, string, string) error { return nil }

// TerminateSessionFromRequest implements op.CanTerminateSessionFromRequest: after op validated the
// end-session request (id_token_hint, a registered post_logout_redirect_uri), the browser's
// sign-in session is ended and its cookie cleared — only when the request carries a valid
// id_token_hint of that session's user, from a client of that session's tenant (or a platform
// client). Without one, the answer is the same but the session stays: a link alone cannot sign
// a user out.
func (s *opStorage) TerminateSessionFromRequest(ctx context.Context, req *op.EndSessionRequest) (string, error) {
	owns := func(sess signInSession) bool {
		if req.IDTokenHintClaims == nil || req.ClientID == "" || req.IDTokenHintClaims.GetSubject() != sess.Subject {
			return false
		}
		c, err := s.p.store.ClientByID(ctx, req.ClientID)
		return err == nil && (c.Platform() || c.Tenant == sess.Tenant)
	}
	if err := endSessionFrom(ctx)(ctx, owns); err != nil {
		return "", s.temporarilyUnavailable(ctx, err)
	}
	return req.RedirectURI, nil
}

// ---- claims ----

// famClaim is the private claim naming the family (code and refresh tokens) a user's access
// token was issued from: introspection asks the store whether that family was revoked since.
// client_credentials tokens have none. The API's verifier ignores it (its bound is the token's
// life).
const famClaim = "fam"

// GetPrivateClaimsFromRequest implements op.CanGetPrivateClaimsFromRequest: the access token's
// scope (space-separated), tenant_id (unless a platform token), platform_admin where granted, and
// fam, the family of a user's token (op creates the tokens, which redeems the code, before it
// asks for the claims). client_id, jti, exp and the rest are op's.
func (s *opStorage) GetPrivateClaimsFromRequest(ctx context.Context, req op.TokenRequest, _ []string) (map[string]any, error) {
	claims := map[string]any{}
	if scopes := req.GetScopes(); len(scopes) > 0 {
		claims["scope"] = strings.Join(scopes, " ")
	}
	var tenant string
	switch r := req.(type) {
	case *ccRequest:
		if r.client.Platform() {
			claims["platform_admin"] = true
			return claims, nil
		}
		tenant = r.client.Tenant
	case *authRequest:
		tenant = r.Tenant
		claims[famClaim] = r.family
	case *refreshRequest:
		tenant = r.rt.TenantID
		claims[famClaim] = r.rt.FamilyID
	default:
		return nil, s.serverError(ctx, "the claims of a token", errors.New("unexpected token request type"))
	}
	if f, user := claims[famClaim]; user && f == "" {
		return nil, s.serverError(ctx, "the claims of a token", errors.New("a user's token without its family"))
	}
	if _, err := tenancy.ParseTenantID(tenant); err != nil {
		return nil, s.serverError(ctx, "the claims of a token", errors.New("a user's token without its tenant"))
	}
	claims["tenant_id"] = tenant
	return claims, nil
}

// GetPrivateClaimsFromScopes implements op.OPStorage; op asks GetPrivateClaimsFromRequest instead
// (this storage implements it), so there is nothing to add here.
func (s *opStorage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

// SetUserinfoFromScopes implements op.OPStorage (deprecated by op; called before
// SetUserinfoFromRequest): the subject only.
func (s *opStorage) SetUserinfoFromScopes(_ context.Context, info *oidc.UserInfo, userID, _ string, _ []string) error {
	info.Subject = userID
	return nil
}

// SetUserinfoFromRequest implements op.CanSetUserinfoFromRequest: the ID token's profile claims
// (email with scope email, name with scope profile) from identity.
func (s *opStorage) SetUserinfoFromRequest(ctx context.Context, info *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	var ts string
	switch r := req.(type) {
	case *authRequest:
		ts = r.Tenant
	case *refreshRequest:
		ts = r.rt.TenantID
	default:
		return s.serverError(ctx, "an ID token", errors.New("unexpected ID token request type"))
	}
	tenant, err := tenancy.ParseTenantID(ts)
	if err != nil {
		return s.serverError(ctx, "an ID token", errors.New("a user's token without its tenant"))
	}
	info.Subject = req.GetSubject()
	if !slices.Contains(scopes, oidc.ScopeEmail) && !slices.Contains(scopes, oidc.ScopeProfile) {
		return nil
	}
	prof, err := s.p.users.Profile(ctx, tenant, req.GetSubject())
	if errors.Is(err, authn.ErrUnknownUser) {
		return oidc.ErrInvalidGrant().WithDescription("The user can no longer sign in.")
	}
	if err != nil {
		return s.serverError(ctx, "reading a profile", err)
	}
	setProfile(info, prof, scopes)
	return nil
}

// setProfile fills info's claims from prof for scopes.
func setProfile(info *oidc.UserInfo, prof authn.Profile, scopes []string) {
	if slices.Contains(scopes, oidc.ScopeEmail) {
		info.Email = prof.Email
	}
	if slices.Contains(scopes, oidc.ScopeProfile) && prof.Name != "" {
		info.Name = prof.Name
	}
}

// SetUserinfoFromToken implements op.OPStorage. op's userinfo endpoint is not mounted (it does not
// pass the token's tenant): the mux's /userinfo answers.
func (s *opStorage) SetUserinfoFromToken(context.Context, *oidc.UserInfo, string, string, string) error {
	return oidc.ErrServerError().WithDescription("Userinfo is served by the connect endpoint /userinfo.")
}

// SetIntrospectionFromToken implements op.OPStorage. op's introspection endpoint is not mounted (it
// does not pass the token's tenant, nor know refresh tokens): the mux's /introspect answers.
func (s *opStorage) SetIntrospectionFromToken(context.Context, *oidc.IntrospectionResponse, string, string, string) error {
	return oidc.ErrServerError().WithDescription("Introspection is served by the connect endpoint /introspect.")
}

// GetKeyByIDAndClientID implements op.OPStorage: no client authenticates with private_key_jwt.
func (s *opStorage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, oidc.ErrInvalidClient().WithDescription("private_key_jwt is not supported.")
}

// ValidateJWTProfileScopes implements op.OPStorage: the JWT bearer grant is not supported (the
// mux refuses it before op sees it).
func (s *opStorage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, oidc.ErrUnsupportedGrantType()
}

// Health implements op.Storage (op's /ready, not mounted: the binary's readiness covers the stores).
func (s *opStorage) Health(context.Context) error { return nil }

// ---- keys ----

// signingAlg is the one algorithm: ES256 (P-256), the key ring's.
const signingAlg = jose.ES256

// SigningKey implements op.AuthStorage: the ring's current key, from memory.
func (s *opStorage) SigningKey(ctx context.Context) (op.SigningKey, error) {
	k, err := s.keys.Current()
	if err != nil {
		return nil, s.serverError(ctx, "the signing key", err)
	}
	if k.Private == nil || k.Algorithm != secrets.AlgES256 {
		return nil, s.serverError(ctx, "the signing key", errors.New("the current key is not an ES256 private key"))
	}
	return ringSigningKey{k: k}, nil
}

// SignatureAlgorithms implements op.AuthStorage.
func (s *opStorage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{signingAlg}, nil
}

// KeySet implements op.AuthStorage: the ring's published keys (current first, then the previous
// one during a rotation), public parts only.
func (s *opStorage) KeySet(context.Context) ([]op.Key, error) {
	pub := s.keys.Published()
	out := make([]op.Key, 0, len(pub))
	for _, k := range pub {
		if k.Private == nil || k.Algorithm != secrets.AlgES256 {
			continue
		}
		out = append(out, ringPublicKey{k: k})
	}
	return out, nil
}

// ringSigningKey is a ring key as op signs with it.
type ringSigningKey struct{ k secrets.SigningKey }

func (k ringSigningKey) SignatureAlgorithm() jose.SignatureAlgorithm { return signingAlg }
func (k ringSigningKey) Key() any                                    { return k.k.Private }
func (k ringSigningKey) ID() string                                  { return k.k.ID }

// ringPublicKey is a ring key as the JWKS publishes it.
type ringPublicKey struct{ k secrets.SigningKey }

func (k ringPublicKey) ID() string                         { return k.k.ID }
func (k ringPublicKey) Algorithm() jose.SignatureAlgorithm { return signingAlg }
func (k ringPublicKey) Use() string                        { return "sig" }
func (k ringPublicKey) Key() any                           { return k.k.Public() }
