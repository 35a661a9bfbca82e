package authz

import (
	"context"
	"time"

	"spine/shared/contracts"
	"spine/shared/events"
	"spine/shared/sqlstore"
)

// Store is the authz service's persistence: the clients and their admin operations, and the
// surface the OpenID provider issues tokens through. One implementation (store_sql.go) serves both
// engines over per-engine statement sets.
//
// Scope: each method takes the tenant whose rows it works on (a canonical tenant id, or
// PlatformTenant) — or learns it from what it is given (a refresh token's value, a client's
// directory row) — and runs in exactly that tenant's row-level-security scope (platform scope for
// PlatformTenant only), so a caller never picks a wider scope than the rows need. A tenant that is
// not a canonical id is ErrInvalidTenant.
//
// Tokens: the store owns the formats of refresh tokens and client secrets (token.go), creates
// their values and keeps only their SHA-256. A value returned by a method exists nowhere else.
//
// Reuse detection commits: when RotateRefreshToken, RefreshTokenByValue or RedeemCode detect a
// reuse, the family's revocation (and its RefreshTokenReuseDetected event) is committed before
// the method returns ErrRefreshTokenReused or ErrCodeReused.
//
// Events: the store writes its events to the outbox in the transaction of the change:
// ClientCreated, ClientUpdated, ClientDeleted, ClientSecretRotated, RefreshTokenReuseDetected, and
// TokenIssued through EmitTokenIssued. The request's events.Meta (actor, trace) comes from ctx.
//
// Implementations are safe for concurrent use.
type Store interface {
	// ---- clients: the protocol's reads ----

	// ClientByID returns the live client with this id, whatever its tenant: the tenant comes from
	// client_directory (platform-level), the client is read in that tenant's scope. Served from
	// the cache (a local copy, then Redis) with negative answers cached too, and invalidated after
	// every change of the client. A malformed, unknown or deleted id is ErrClientNotFound.
	ClientByID(ctx context.Context, id string) (Client, error)
	// AuthenticateClient returns the confidential client id whose secret is secret, or
	// ErrInvalidClient — for an unknown or deleted client, a wrong secret and a public client
	// alike, after the same work (the presented secret is always hashed and compared in constant
	// time), so the answer's timing does not tell whether the client exists.
	AuthenticateClient(ctx context.Context, id, secret string) (Client, error)

	// ---- clients: the admin API's ----

	// CreateClient inserts c (its id, tenant, version and times set by the caller) with its
	// directory row, claims the request's Idempotency-Key (idempotency.Claim) and emits
	// ClientCreated, atomically. A confidential client gets a fresh secret, returned here only
	// (secret is "" for a public client); the returned client carries its hash.
	CreateClient(ctx context.Context, c Client) (created Client, secret string, err error)
	// Client returns the tenant's live client, or ErrClientNotFound.
	Client(ctx context.Context, tenant string, id ClientID) (Client, error)
	// ListClients returns up to limit live clients of the tenant with an id greater than after
	// ("" for the first page), in id order.
	ListClients(ctx context.Context, tenant string, after ClientID, limit int) ([]Client, error)
	// UpdateClient locks the tenant's live client, checks ifMatch (when set) against its version
	// (ErrVersionMismatch), and calls fn with it. When fn returns nil and changed the client, the
	// client is stored with Version+1 and UpdatedAt now, and ClientUpdated emitted; when fn
	// changed nothing, nothing is written. fn runs inside the transaction: it must not call out,
	// and it cannot change the id, tenant, type, secret or times.
	UpdateClient(ctx context.Context, tenant string, id ClientID, ifMatch *int64, fn func(*Client) error) (Client, error)
	// RotateClientSecret gives the tenant's live confidential client a fresh secret (the previous
	// one stops working at once), with Version+1, claims the request's Idempotency-Key and emits
	// ClientSecretRotated, atomically. The secret is returned here only. A public client is
	// ErrPublicClient.
	RotateClientSecret(ctx context.Context, tenant string, id ClientID, ifMatch *int64) (Client, string, error)
	// DeleteClient soft-deletes the tenant's live client (deleted_at, secret hash cleared,
	// Version+1), revokes its refresh tokens and emits ClientDeleted, atomically. The client
	// authenticates no more and its id is never reused.
	DeleteClient(ctx context.Context, tenant string, id ClientID, ifMatch *int64) error

	// ---- authorization codes ----

	// CreateCode stores the code c (its hash, never the code) in c.TenantID. An empty FamilyID
	// gets a new one; CreatedAt defaults to now. ExpiresAt must be in the future.
	CreateCode(ctx context.Context, c Code) error
	// RedeemCode marks the tenant's code with this hash redeemed and returns it, once. Unknown is
	// ErrCodeNotFound; expired before any redemption ErrCodeExpired; redeemed before
	// ErrCodeReused, after the refresh tokens of the code's family were revoked (committed) and
	// RefreshTokenReuseDetected emitted — and from then on CreateRefreshToken refuses the family.
	RedeemCode(ctx context.Context, tenant string, codeHash []byte) (Code, error)

	// ---- refresh tokens ----

	// CreateRefreshToken stores a new refresh token for rt (TenantID, ClientID, Subject, Scopes,
	// Audience, AuthTime, AMR, ExpiresAt; FamilyID empty for a new family, or the family of the
	// code being redeemed) and returns its value. A family whose code was reused is ErrCodeReused.
	CreateRefreshToken(ctx context.Context, rt RefreshToken) (value string, err error)
	// RefreshTokenByValue returns the live refresh token with this value. A malformed, unknown,
	// expired or revoked one is ErrRefreshTokenNotFound; a consumed (rotated) one is
	// ErrRefreshTokenReused, after its family was revoked (committed).
	RefreshTokenByValue(ctx context.Context, value string) (RefreshToken, error)
	// RotateRefreshToken consumes the live refresh token value of next.ClientID and stores its
	// successor in the same family (linked by replaced_by) in one transaction, and returns the
	// successor's value. The successor keeps the token's subject, auth time and amr; it takes
	// next.Scopes (which must be a subset of the token's: ErrScopeNotGranted), next.Audience and
	// next.ExpiresAt where they are set, the token's own otherwise. A token that is not live
	// (malformed, unknown, another client's, expired, revoked) is ErrRefreshTokenNotFound; one
	// consumed already — a replay, or the loser of two concurrent rotations — is
	// ErrRefreshTokenReused after the whole family was revoked (committed).
	RotateRefreshToken(ctx context.Context, value string, next RefreshToken) (newValue string, err error)
	// RevokeRefreshFamily revokes the family of the refresh token value (RFC 7009: a refresh
	// token's revocation revokes the tokens issued with it). An unknown or malformed value is
	// nil; a token of another client is ErrTokenClientMismatch.
	RevokeRefreshFamily(ctx context.Context, value, clientID string) error

	// RevokeSubjectTokens revokes, in tx (a consumer's transaction, in tenant's scope), every
	// refresh token of subject in tenant, and returns how many it revoked. After tx commits, the
	// cached FamilyRevoked answers of the subject's families are invalidated.
	RevokeSubjectTokens(ctx context.Context, tx *sqlstore.Tx, tenant, subject string) (int, error)
	// RevokeTenantTokens revokes, in tx (a consumer's transaction, in tenant's scope), every
	// refresh token of tenant, and returns how many it revoked. It invalidates no cached
	// FamilyRevoked answer (a tenant may have any number of families): an answer cached before
	// stays until its TTL, the life of the access token it was asked about.
	RevokeTenantTokens(ctx context.Context, tx *sqlstore.Tx, tenant string) (int, error)
	// FamilyRevoked reports whether the family (of tenant) that an access token expiring at exp
	// was issued from is revoked: a refresh token of it revoked (reuse, RFC 7009 revocation, a
	// client's deletion, a subject's or tenant's revocation) or its code redeemed twice. The
	// answer is cached until exp (cache.GetOrLoadConsistent); every family revocation but
	// RevokeTenantTokens and DeleteClient's invalidates it after its commit and before it returns
	// (DeleteClient's tokens are refused by their client's absence).
	FamilyRevoked(ctx context.Context, tenant, family string, exp time.Time) (bool, error)

	// ---- access tokens ----

	// RevokeAccessToken records the access token jti of tenant (its tenant_id claim, or
	// PlatformTenant) revoked until exp; revoking it again is nil, and a token already expired
	// needs no record. It returns after the cached AccessTokenRevoked answer for jti was
	// invalidated (after the commit); when Redis did not take that invalidation the revocation is
	// recorded all the same and the answer is ErrRevocationUnconfirmed (ask again).
	RevokeAccessToken(ctx context.Context, tenant, jti, clientID string, exp time.Time) error
	// AccessTokenRevoked reports whether the access token jti of tenant, which expires at exp,
	// was revoked. The answer is cached until exp (cache.GetOrLoadConsistent): once
	// RevokeAccessToken has returned, no instance sharing the Redis answers false for that jti;
	// with Redis unreachable every call reads the store.
	AccessTokenRevoked(ctx context.Context, tenant, jti string, exp time.Time) (bool, error)
	// EmitTokenIssued writes TokenIssued (never the token) to tenant's outbox in a transaction of
	// its own: the client_credentials path's one write.
	EmitTokenIssued(ctx context.Context, tenant string, d contracts.TokenIssuedData) error

	// ---- consents ----

	// Consent returns the scopes subject granted clientID in tenant, sorted ([] for none).
	Consent(ctx context.Context, tenant, subject, clientID string) ([]string, error)
	// GrantConsent adds scopes to what subject granted clientID in tenant (a union: a consent
	// never shrinks by a grant).
	GrantConsent(ctx context.Context, tenant, subject, clientID string, scopes []string) error

	// ---- maintenance ----

	// PruneNext returns, in platform scope and without changing anything, the first and last
	// keys of the next at most limit expired rows (expires_at < cutoff) of table after after in
	// the table's pruning index order, and how many rows that is (0: none left).
	PruneNext(ctx context.Context, table PruneTable, after PruneKey, cutoff time.Time, limit int) (first, last PruneKey, n int, err error)
	// PruneRange deletes the expired rows (expires_at < cutoff) of table from from through to
	// (inclusive, an index range) in one platform-scoped transaction, with ev in the outbox when
	// it deleted any, and returns how many it deleted.
	PruneRange(ctx context.Context, table PruneTable, from, to PruneKey, cutoff time.Time, ev events.Event) (int, error)
	// Health pings the database.
	Health(ctx context.Context) error
}

// PruneTable is a table the pruning timer deletes expired rows from.
type PruneTable string

// The pruned tables: the AuthzTokenPrune sweep's units.
const (
	PruneCodes         PruneTable = "auth_codes"
	PruneRefreshTokens PruneTable = "refresh_tokens"
	PruneRevokedTokens PruneTable = "revoked_tokens"
)

// PruneTables are every pruned table, in order.
var PruneTables = []PruneTable{PruneCodes, PruneRefreshTokens, PruneRevokedTokens}

// PruneKey is a position in a pruned table's index order (expires_at, tenant_id, key): a range's
// bound, and the sweep's watermark. The zero PruneKey is before every row.
type PruneKey struct {
	ExpiresAt time.Time
	Tenant    string
	Hash      []byte // auth_codes' key: the code hash
	ID        string // refresh_tokens' and revoked_tokens' key: token_id or jti (canonical text)
}
