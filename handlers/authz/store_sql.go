package authz

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"spine/shared/cache"
	"spine/shared/contracts"
	"spine/shared/events"
	"spine/shared/idempotency"
	"spine/shared/ids"
	"spine/shared/outbox"
	"spine/shared/sqlstore"
)

// sqlStore is the Store on either engine: each method is written once, here, and sends its
// engine's statements (statements.go; pgStatements or msStatements). Whatever differs between the
// engines is statement text; the Go below never asks which engine it talks to.
//
// It passes every time in UTC (SQL Server keeps a datetimeoffset's clock reading in a datetime2
// column), ids as canonical text, lists as JSON array text and nullable values as sql.Null* or
// nil slices, as the statement sets expect.
type sqlStore struct {
	db    *sqlstore.DB
	q     *statements
	cache *cache.Cache
	cfg   StoreConfig
}

var _ Store = (*sqlStore)(nil)

// StoreConfig tunes the store. Zero fields take the documented defaults.
type StoreConfig struct {
	// CacheTTL bounds how long a cached client may be served (every change of a client
	// invalidates it after its commit; the TTL is the backstop). Default 60s.
	CacheTTL time.Duration
	// Now is the clock (tests move it); default sqlstore.Now.
	Now func() time.Time
	// Log receives the store's warnings; default slog.Default().
	Log *slog.Logger
}

func (c StoreConfig) withDefaults() StoreConfig {
	if c.CacheTTL <= 0 {
		c.CacheTTL = 60 * time.Second
	}
	if c.Now == nil {
		c.Now = sqlstore.Now
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	return c
}

// NewStore returns the store over db (the runtime role's connection), with the statements of db's
// engine, caching clients in c (nil: no cache, every read goes to SQL).
func NewStore(db *sqlstore.DB, c *cache.Cache, cfg StoreConfig) Store {
	q := &pgStatements
	if db.Dialect == sqlstore.SQLServer {
		q = &msStatements
	}
	return &sqlStore{db: db, q: q, cache: c, cfg: cfg.withDefaults()}
}

// service is the authz service's name: its topic, its events' source, its cache keys' service
// part.
const service = "authz"

// now is the store's clock, at the precision every engine stores.
func (s *sqlStore) now() time.Time { return s.cfg.Now().UTC().Truncate(time.Microsecond) }

// event builds an event of tenant's rows (platform-level for PlatformTenant) with the request's
// meta.
func (s *sqlStore) event(ctx context.Context, typ, subject, tenant string, data any) (events.Event, error) {
	return events.New(service, typ, subject, eventTenant(tenant), data, events.MetaFrom(ctx))
}

// ---- clients ----

// clientKey is the cache key of a client, by id (platform-level: the id alone names the client).
func clientKey(id string) string { return cache.PlatformKey(service, "client", id) }

// clientEntry is a cached ClientByID answer: Found false caches "no such client", so unknown ids
// cost what known ones do.
type clientEntry struct {
	Found  bool
	Client Client
}

// invalidateAfter drops the client's cached entry once tx commits (detached from the request's
// cancellation: a client that hangs up must not leave a stale entry behind).
func (s *sqlStore) invalidateAfter(ctx context.Context, tx *sqlstore.Tx, id ClientID) {
	tx.AfterCommit(func() { s.cache.Invalidate(context.WithoutCancel(ctx), clientKey(string(id))) })
}

// ClientByID implements Store.
func (s *sqlStore) ClientByID(ctx context.Context, id string) (Client, error) {
	cid, err := ParseClientID(id)
	if err != nil {
		return Client{}, err
	}
	e, err := cache.GetOrLoadLocal(ctx, s.cache, clientKey(id), s.cfg.CacheTTL, cache.JSON[clientEntry]{},
		func(ctx context.Context) (clientEntry, error) {
			c, err := s.loadClient(ctx, cid)
			if errors.Is(err, ErrClientNotFound) {
				return clientEntry{}, nil
			}
			return clientEntry{Found: err == nil, Client: c}, err
		})
	if err != nil {
		return Client{}, err
	}
	if !e.Found {
		return Client{}, ErrClientNotFound
	}
	// The cached value is shared by every caller (a local copy): the caller gets lists of its own.
	c := cloneClient(e.Client)
	c.SecretHash = slices.Clone(c.SecretHash)
	return c, nil
}

// loadClient reads the client's tenant from the directory (platform-level: the zero scope sees
// it), then the live client in that tenant's scope, in one transaction.
func (s *sqlStore) loadClient(ctx context.Context, id ClientID) (Client, error) {
	var c Client
	err := s.db.InReadTx(ctx, sqlstore.Scope{}, func(tx *sqlstore.Tx) error {
		var tenant string
		if err := tx.QueryRowContext(ctx, s.q.directoryTenant, string(id)).Scan(&tenant); err != nil {
			return clientNotFound(err)
		}
		sc, err := scopeOf(tenant)
		if err != nil {
			return err
		}
		if err := tx.SetScope(ctx, sc); err != nil {
			return err
		}
		c, err = scanClient(tx.QueryRowContext(ctx, s.q.client, tenant, string(id)))
		return err
	})
	return c, err
}

// AuthenticateClient implements Store.
func (s *sqlStore) AuthenticateClient(ctx context.Context, id, secret string) (Client, error) {
	c, err := s.ClientByID(ctx, id)
	if err != nil && !errors.Is(err, ErrClientNotFound) {
		return Client{}, err
	}
	stored := unmatchableHash
	if err == nil && c.Type == ClientConfidential && len(c.SecretHash) == len(unmatchableHash) {
		stored = c.SecretHash
	}
	ok := secretMatches(secret, stored) // always: the same work whatever the client
	if err != nil || !ok || c.Type != ClientConfidential {
		return Client{}, ErrInvalidClient
	}
	return c, nil
}

// CreateClient implements Store.
func (s *sqlStore) CreateClient(ctx context.Context, c Client) (Client, string, error) {
	sc, err := scopeOf(c.Tenant)
	if err != nil {
		return Client{}, "", err
	}
	secret := ""
	if c.Type == ClientConfidential {
		secret, c.SecretHash = newClientSecret()
		at := c.CreatedAt
		c.SecretRotatedAt = &at
	} else {
		c.SecretHash, c.SecretRotatedAt = nil, nil
	}
	lists, err := clientLists(c)
	if err != nil {
		return Client{}, "", err
	}
	ev, err := s.event(ctx, contracts.ClientCreated, string(c.ID), c.Tenant, clientData(c))
	if err != nil {
		return Client{}, "", err
	}
	err = s.db.InTx(ctx, sc, func(tx *sqlstore.Tx) error {
		if err := idempotency.Claim(ctx, tx); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q.insertClient, c.Tenant, string(c.ID), c.Name, string(c.Type),
			lists[0], lists[1], lists[2], lists[3], c.FirstParty, c.PlatformAdmin, c.SecretHash,
			sqlstore.NullUTC(c.SecretRotatedAt), c.Version, sqlstore.UTC(c.CreatedAt), sqlstore.UTC(c.UpdatedAt)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q.insertDirectory, string(c.ID), c.Tenant); err != nil {
			return err
		}
		s.invalidateAfter(ctx, tx, c.ID) // a cached "no such client" of this id
		return outbox.Emit(ctx, tx, ev)
	})
	if err != nil {
		return Client{}, "", err
	}
	return c, secret, nil
}

// Client implements Store.
func (s *sqlStore) Client(ctx context.Context, tenant string, id ClientID) (Client, error) {
	sc, err := scopeOf(tenant)
	if err != nil {
		return Client{}, err
	}
	var c Client
	err = s.db.InReadTx(ctx, sc, func(tx *sqlstore.Tx) error {
		var err error
		c, err = scanClient(tx.QueryRowContext(ctx, s.q.client, tenant, string(id)))
		return err
	})
	return c, err
}

// ListClients implements Store.
func (s *sqlStore) ListClients(ctx context.Context, tenant string, after ClientID, limit int) ([]Client, error) {
	sc, err := scopeOf(tenant)
	if err != nil {
		return nil, err
	}
	a := string(after)
	if a == "" {
		a = PlatformTenant // the zero UUID: lower than every id
	}
	var out []Client
	err = s.db.InReadTx(ctx, sc, func(tx *sqlstore.Tx) error {
		rows, err := tx.QueryContext(ctx, s.q.listClients, tenant, a, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			c, err := scanClient(rows)
			if err != nil {
				return err
			}
			out = append(out, c)
		}
		return rows.Err()
	})
	return out, err
}

// changeClient locks the tenant's live client in a transaction of sc, checks ifMatch, and calls
// fn with the transaction and the client.
func (s *sqlStore) changeClient(ctx context.Context, tenant string, id ClientID, ifMatch *int64,
	fn func(tx *sqlstore.Tx, c *Client) error) (Client, error) {
	sc, err := scopeOf(tenant)
	if err != nil {
		return Client{}, err
	}
	var c Client
	err = s.db.InTx(ctx, sc, func(tx *sqlstore.Tx) error {
		var err error
		if c, err = scanClient(tx.QueryRowContext(ctx, s.q.lockClient, tenant, string(id))); err != nil {
			return err
		}
		if ifMatch != nil && *ifMatch != c.Version {
			return ErrVersionMismatch
		}
		return fn(tx, &c)
	})
	return c, err
}

// writeClient stores c's mutable columns (statement updateClient).
func (s *sqlStore) writeClient(ctx context.Context, tx *sqlstore.Tx, c Client) error {
	lists, err := clientLists(c)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, s.q.updateClient, c.Tenant, string(c.ID), c.Name, lists[0], lists[1], lists[2], lists[3],
		c.FirstParty, c.PlatformAdmin, c.SecretHash, sqlstore.NullUTC(c.SecretRotatedAt), c.Version,
		sqlstore.UTC(c.UpdatedAt), sqlstore.NullUTC(c.DeletedAt))
	return err
}

// UpdateClient implements Store.
func (s *sqlStore) UpdateClient(ctx context.Context, tenant string, id ClientID, ifMatch *int64, fn func(*Client) error) (Client, error) {
	return s.changeClient(ctx, tenant, id, ifMatch, func(tx *sqlstore.Tx, c *Client) error {
		before := *c
		next := cloneClient(*c)
		if err := fn(&next); err != nil {
			return err
		}
		// What fn may not change stays as it was.
		next.ID, next.Tenant, next.Type, next.SecretHash, next.SecretRotatedAt = before.ID, before.Tenant, before.Type, before.SecretHash, before.SecretRotatedAt
		next.Version, next.CreatedAt, next.UpdatedAt, next.DeletedAt = before.Version, before.CreatedAt, before.UpdatedAt, before.DeletedAt
		if sameClient(before, next) {
			return nil
		}
		next.Version, next.UpdatedAt = before.Version+1, s.now()
		if err := s.writeClient(ctx, tx, next); err != nil {
			return err
		}
		ev, err := s.event(ctx, contracts.ClientUpdated, string(next.ID), tenant, clientData(next))
		if err != nil {
			return err
		}
		*c = next
		s.invalidateAfter(ctx, tx, c.ID)
		return outbox.Emit(ctx, tx, ev)
	})
}

// RotateClientSecret implements Store.
func (s *sqlStore) RotateClientSecret(ctx context.Context, tenant string, id ClientID, ifMatch *int64) (Client, string, error) {
	var secret string
	c, err := s.changeClient(ctx, tenant, id, ifMatch, func(tx *sqlstore.Tx, c *Client) error {
		if c.Type != ClientConfidential {
			return ErrPublicClient
		}
		if err := idempotency.Claim(ctx, tx); err != nil {
			return err
		}
		now := s.now()
		secret, c.SecretHash = newClientSecret()
		c.SecretRotatedAt, c.Version, c.UpdatedAt = &now, c.Version+1, now
		if err := s.writeClient(ctx, tx, *c); err != nil {
			return err
		}
		ev, err := s.event(ctx, contracts.ClientSecretRotated, string(c.ID), tenant, contracts.ClientSecretRotatedData{
			TenantID: eventTenant(tenant), ClientID: string(c.ID), RotatedAt: now})
		if err != nil {
			return err
		}
		s.invalidateAfter(ctx, tx, c.ID)
		return outbox.Emit(ctx, tx, ev)
	})
	if err != nil {
		return Client{}, "", err
	}
	return c, secret, nil
}

// DeleteClient implements Store.
func (s *sqlStore) DeleteClient(ctx context.Context, tenant string, id ClientID, ifMatch *int64) error {
	_, err := s.changeClient(ctx, tenant, id, ifMatch, func(tx *sqlstore.Tx, c *Client) error {
		now := s.now()
		c.DeletedAt, c.SecretHash, c.Version, c.UpdatedAt = &now, nil, c.Version+1, now
		if err := s.writeClient(ctx, tx, *c); err != nil {
			return err
		}
		revoked, err := untilNone(func() (sql.Result, error) {
			return tx.ExecContext(ctx, s.q.revokeClientTokens, tenant, string(c.ID), sqlstore.UTC(now))
		})
		if err != nil {
			return err
		}
		ev, err := s.event(ctx, contracts.ClientDeleted, string(c.ID), tenant, contracts.ClientDeletedData{
			TenantID: eventTenant(tenant), ClientID: string(c.ID), DeletedAt: now, RevokedRefreshTokens: revoked})
		if err != nil {
			return err
		}
		s.invalidateAfter(ctx, tx, c.ID)
		return outbox.Emit(ctx, tx, ev)
	})
	return err
}

// ---- authorization codes ----

// CreateCode implements Store.
func (s *sqlStore) CreateCode(ctx context.Context, c Code) error {
	sc, err := scopeOf(c.TenantID)
	if err != nil {
		return err
	}
	now := s.now()
	if c.CreatedAt.IsZero() {
		c.CreatedAt = now
	}
	if c.FamilyID == "" {
		c.FamilyID = ids.New()
	}
	switch {
	case len(c.Hash) != len(unmatchableHash):
		return invalid("a code is stored as its SHA-256 (HashCode)")
	case !validID(string(c.ClientID)) || !validID(c.FamilyID):
		return invalid("a code's client id and family id must be canonical UUIDs")
	case c.Subject == "" || c.AuthRequestID == "":
		return invalid("a code needs its subject and auth request id")
	case !c.ExpiresAt.After(now):
		return invalid("a code must expire in the future")
	case !json.Valid(c.Request) || len(c.Request) == 0 || c.Request[0] != '{':
		return invalid("a code's request must be a JSON object")
	}
	return s.db.InTx(ctx, sc, func(tx *sqlstore.Tx) error {
		_, err := tx.ExecContext(ctx, s.q.insertCode, c.TenantID, c.Hash, c.AuthRequestID, string(c.ClientID), c.Subject,
			string(c.Request), c.FamilyID, sqlstore.UTC(c.CreatedAt), sqlstore.UTC(c.ExpiresAt))
		return err
	})
}

// RedeemCode implements Store.
func (s *sqlStore) RedeemCode(ctx context.Context, tenant string, codeHash []byte) (Code, error) {
	sc, err := scopeOf(tenant)
	if err != nil {
		return Code{}, err
	}
	var code Code
	reused := false
	err = s.db.InTx(ctx, sc, func(tx *sqlstore.Tx) error {
		reused = false // a retried transaction starts over
		now := s.now()
		var err error
		code, err = scanCode(tx.QueryRowContext(ctx, s.q.redeemCode, tenant, codeHash, sqlstore.UTC(now)))
		if err == nil {
			code.TenantID = tenant
			return nil
		}
		if !errors.Is(err, ErrCodeNotFound) {
			return err
		}
		if code, err = scanCode(tx.QueryRowContext(ctx, s.q.codeByHash, tenant, codeHash)); err != nil {
			return err
		}
		if code.RedeemedAt == nil {
			return ErrCodeExpired
		}
		// A second redemption: the code leaked. Mark it (waiting for a refresh token being created
		// in its family to commit, so the revocation below sees it), revoke the family, commit.
		reused = true
		if _, err := tx.ExecContext(ctx, s.q.markCodeReused, tenant, codeHash, sqlstore.UTC(now)); err != nil {
			return err
		}
		n, err := s.revokeFamily(ctx, tx, tenant, code.FamilyID, now)
		if err != nil {
			return err
		}
		ev, err := s.event(ctx, contracts.RefreshTokenReuseDetected, code.FamilyID, tenant, contracts.RefreshTokenReuseDetectedData{
			TenantID: eventTenant(tenant), ClientID: string(code.ClientID), Subject: code.Subject, FamilyID: code.FamilyID,
			Via: contracts.ReuseViaAuthorizationCode, RevokedTokens: n, DetectedAt: now})
		if err != nil {
			return err
		}
		return outbox.Emit(ctx, tx, ev)
	})
	if reused {
		// After the commit — and after a failure too: a revocation is never undone, so dropping
		// the cached answer is never wrong.
		s.invalidateFamily(ctx, tenant, code.FamilyID)
	}
	switch {
	case err != nil:
		return Code{}, err
	case reused:
		return Code{}, ErrCodeReused
	}
	return code, nil
}

// ---- refresh tokens ----

// maxRevokePasses bounds untilNone's passes; each pass after the first exists only when a
// rotation committed during the previous one, which takes a client round trip.
const maxRevokePasses = 10

// untilNone repeats a revoking statement until a pass revokes nothing and returns how many rows
// they revoked. In READ COMMITTED a pass does not see a successor inserted by a rotation that
// committed while the pass waited for the rotated token's row lock; the next pass (a new statement,
// a new snapshot) does. So tokens being revoked cannot leave a live successor behind.
func untilNone(pass func() (sql.Result, error)) (int, error) {
	total := 0
	for range maxRevokePasses {
		res, err := pass()
		if err != nil {
			return total, err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, err
		}
		if n == 0 {
			break
		}
		total += int(n)
	}
	return total, nil
}

// revokeFamily revokes every refresh token of the family and returns how many.
func (s *sqlStore) revokeFamily(ctx context.Context, tx *sqlstore.Tx, tenant, family string, now time.Time) (int, error) {
	return untilNone(func() (sql.Result, error) {
		return tx.ExecContext(ctx, s.q.revokeFamily, tenant, family, sqlstore.UTC(now))
	})
}

// RevokeSubjectTokens implements Store.
func (s *sqlStore) RevokeSubjectTokens(ctx context.Context, tx *sqlstore.Tx, tenant, subject string) (int, error) {
	if _, err := scopeOf(tenant); err != nil {
		return 0, err
	}
	if subject == "" {
		return 0, invalid("a subject's tokens need the subject")
	}
	now := s.now()
	n, err := untilNone(func() (sql.Result, error) {
		return tx.ExecContext(ctx, s.q.revokeSubjectTokens, tenant, subject, sqlstore.UTC(now))
	})
	if err != nil {
		return n, err
	}
	// The subject's families (a user has few): their cached FamilyRevoked answers go once tx
	// commits, so introspection says inactive for the access tokens issued from them.
	rows, err := tx.QueryContext(ctx, s.q.subjectFamilies, tenant, subject, sqlstore.UTC(now))
	if err != nil {
		return n, err
	}
	defer rows.Close()
	var keys []string
	for rows.Next() {
		var family string
		if err := rows.Scan(&family); err != nil {
			return n, err
		}
		keys = append(keys, familyKey(tenant, family))
	}
	if err := rows.Err(); err != nil {
		return n, err
	}
	if len(keys) > 0 {
		tx.AfterCommit(func() { s.cache.Invalidate(context.WithoutCancel(ctx), keys...) })
	}
	return n, nil
}

// RevokeTenantTokens implements Store.
func (s *sqlStore) RevokeTenantTokens(ctx context.Context, tx *sqlstore.Tx, tenant string) (int, error) {
	if _, err := scopeOf(tenant); err != nil {
		return 0, err
	}
	now := s.now()
	return untilNone(func() (sql.Result, error) {
		return tx.ExecContext(ctx, s.q.revokeTenantTokens, tenant, sqlstore.UTC(now))
	})
}

// CreateRefreshToken implements Store.
func (s *sqlStore) CreateRefreshToken(ctx context.Context, rt RefreshToken) (string, error) {
	sc, err := scopeOf(rt.TenantID)
	if err != nil {
		return "", err
	}
	now := s.now()
	newFamily := rt.FamilyID == ""
	if newFamily {
		rt.FamilyID = ids.New()
	}
	if err := checkRefreshToken(rt, now); err != nil {
		return "", err
	}
	scopes, audience, amr, err := refreshLists(rt)
	if err != nil {
		return "", err
	}
	value, hash := newRefreshToken(rt.TenantID)
	err = s.db.InTx(ctx, sc, func(tx *sqlstore.Tx) error {
		if !newFamily {
			// The family of a code being redeemed: refused once the code was reused, and the
			// shared lock makes a concurrent reuse wait for this insert (see lockCodeFamily).
			rows, err := tx.QueryContext(ctx, s.q.lockCodeFamily, rt.TenantID, rt.FamilyID)
			if err != nil {
				return err
			}
			reused, err := scanInts(rows)
			if err != nil {
				return err
			}
			if slices.Contains(reused, 1) {
				return ErrCodeReused
			}
		}
		_, err := tx.ExecContext(ctx, s.q.insertRefreshToken, rt.TenantID, ids.New(), hash, rt.FamilyID, string(rt.ClientID),
			rt.Subject, scopes, audience, sqlstore.UTC(rt.AuthTime), amr, sqlstore.UTC(now), sqlstore.UTC(rt.ExpiresAt))
		return err
	})
	if err != nil {
		return "", err
	}
	return value, nil
}

// checkRefreshToken checks what a refresh token is stored with.
func checkRefreshToken(rt RefreshToken, now time.Time) error {
	switch {
	case !validID(string(rt.ClientID)) || !validID(rt.FamilyID):
		return invalid("a refresh token's client id and family id must be canonical UUIDs")
	case rt.Subject == "" || len(rt.Subject) > 200:
		return invalid("a refresh token needs its subject (at most 200 bytes)")
	case !rt.ExpiresAt.After(now):
		return invalid("a refresh token must expire in the future")
	}
	return nil
}

// RefreshTokenByValue implements Store.
func (s *sqlStore) RefreshTokenByValue(ctx context.Context, value string) (RefreshToken, error) {
	tenant, hash, err := parseRefreshToken(value)
	if err != nil {
		return RefreshToken{}, err
	}
	sc, err := scopeOf(tenant)
	if err != nil {
		return RefreshToken{}, ErrRefreshTokenNotFound
	}
	var rt RefreshToken
	err = s.db.InReadTx(ctx, sc, func(tx *sqlstore.Tx) error {
		var err error
		rt, err = scanRefreshToken(tx.QueryRowContext(ctx, s.q.refreshTokenByHash, tenant, hash))
		return err
	})
	if err != nil {
		return RefreshToken{}, err
	}
	rt.TenantID = tenant
	switch {
	case rt.ConsumedAt != nil:
		if err := s.reuseDetected(ctx, sc, rt); err != nil {
			return RefreshToken{}, err
		}
		return RefreshToken{}, ErrRefreshTokenReused
	case rt.RevokedAt != nil || !rt.ExpiresAt.After(s.now()):
		return RefreshToken{}, ErrRefreshTokenNotFound
	}
	return rt, nil
}

// reuseDetected revokes the family of the consumed token rt and emits RefreshTokenReuseDetected,
// in a transaction of its own that commits.
func (s *sqlStore) reuseDetected(ctx context.Context, sc sqlstore.Scope, rt RefreshToken) error {
	err := s.db.InTx(ctx, sc, func(tx *sqlstore.Tx) error {
		return s.revokeReused(ctx, tx, rt)
	})
	s.invalidateFamily(ctx, rt.TenantID, rt.FamilyID)
	return err
}

// revokeReused is reuseDetected inside tx.
func (s *sqlStore) revokeReused(ctx context.Context, tx *sqlstore.Tx, rt RefreshToken) error {
	now := s.now()
	n, err := s.revokeFamily(ctx, tx, rt.TenantID, rt.FamilyID, now)
	if err != nil {
		return err
	}
	ev, err := s.event(ctx, contracts.RefreshTokenReuseDetected, rt.FamilyID, rt.TenantID, contracts.RefreshTokenReuseDetectedData{
		TenantID: eventTenant(rt.TenantID), ClientID: string(rt.ClientID), Subject: rt.Subject, FamilyID: rt.FamilyID,
		Via: contracts.ReuseViaRefreshToken, RevokedTokens: n, DetectedAt: now})
	if err != nil {
		return err
	}
	return outbox.Emit(ctx, tx, ev)
}

// RotateRefreshToken implements Store.
func (s *sqlStore) RotateRefreshToken(ctx context.Context, value string, next RefreshToken) (string, error) {
	tenant, hash, err := parseRefreshToken(value)
	if err != nil {
		return "", err
	}
	sc, err := scopeOf(tenant)
	if err != nil || !validID(string(next.ClientID)) {
		return "", ErrRefreshTokenNotFound
	}
	successor := ids.New()
	newValue, newHash := newRefreshToken(tenant)
	reused, family := false, ""
	err = s.db.InTx(ctx, sc, func(tx *sqlstore.Tx) error {
		reused = false // a retried transaction starts over
		now := s.now()
		old, err := scanRefreshToken(tx.QueryRowContext(ctx, s.q.consumeRefreshToken, tenant, hash, string(next.ClientID),
			sqlstore.UTC(now), successor))
		if errors.Is(err, ErrRefreshTokenNotFound) {
			// Not live for this client: find out why.
			if old, err = scanRefreshToken(tx.QueryRowContext(ctx, s.q.refreshTokenByHash, tenant, hash)); err != nil {
				return err
			}
			if old.ConsumedAt == nil {
				return ErrRefreshTokenNotFound // revoked, expired, or another client's
			}
			// Rotated before: a replay, or the loser of a concurrent rotation (which waited for
			// the winner's commit, so the winner's successor is revoked too).
			reused, family = true, old.FamilyID
			old.TenantID = tenant
			return s.revokeReused(ctx, tx, old)
		}
		if err != nil {
			return err
		}
		rt := old
		rt.TenantID, rt.ID = tenant, successor
		if next.Scopes != nil {
			for _, sc := range next.Scopes {
				if !slices.Contains(old.Scopes, sc) {
					return fmt.Errorf("%w: %s", ErrScopeNotGranted, sc)
				}
			}
			rt.Scopes = next.Scopes
		}
		if next.Audience != nil {
			rt.Audience = next.Audience
		}
		if !next.ExpiresAt.IsZero() {
			rt.ExpiresAt = next.ExpiresAt
		}
		if err := checkRefreshToken(rt, now); err != nil {
			return err
		}
		scopes, audience, amr, err := refreshLists(rt)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, s.q.insertRefreshToken, tenant, successor, newHash, rt.FamilyID, string(rt.ClientID),
			rt.Subject, scopes, audience, sqlstore.UTC(rt.AuthTime), amr, sqlstore.UTC(now), sqlstore.UTC(rt.ExpiresAt))
		return err
	})
	if reused {
		s.invalidateFamily(ctx, tenant, family)
	}
	switch {
	case err != nil:
		return "", err
	case reused:
		return "", ErrRefreshTokenReused
	}
	return newValue, nil
}

// RevokeRefreshFamily implements Store.
func (s *sqlStore) RevokeRefreshFamily(ctx context.Context, value, clientID string) error {
	tenant, hash, err := parseRefreshToken(value)
	if err != nil {
		return nil // not a refresh token of this server: nothing to revoke (RFC 7009 §2.2)
	}
	sc, err := scopeOf(tenant)
	if err != nil {
		return nil
	}
	family := ""
	err = s.db.InTx(ctx, sc, func(tx *sqlstore.Tx) error {
		rt, err := scanRefreshToken(tx.QueryRowContext(ctx, s.q.refreshTokenByHash, tenant, hash))
		if errors.Is(err, ErrRefreshTokenNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if string(rt.ClientID) != clientID {
			return ErrTokenClientMismatch
		}
		family = rt.FamilyID
		_, err = s.revokeFamily(ctx, tx, tenant, rt.FamilyID, s.now())
		return err
	})
	if family != "" {
		s.invalidateFamily(ctx, tenant, family)
	}
	return err
}

// ---- access tokens ----

// revokedKey is the cache key of AccessTokenRevoked's answer for jti (platform-level for a
// platform token). The tenant is lower-cased as the store compares it (a uuid), so one token has
// one key however its tenant is spelled; jti is canonical already (validID).
func revokedKey(tenant, jti string) string {
	if tenant == PlatformTenant {
		return cache.PlatformKey(service, "revoked", jti)
	}
	return cache.TenantKey(strings.ToLower(tenant), service, "revoked", jti)
}

// minRevokedTTL: an answer about a token expiring sooner is not cached (the token is about to
// fail verification anyway, and Redis needs a positive TTL).
const minRevokedTTL = time.Second

// RevokeAccessToken implements Store.
func (s *sqlStore) RevokeAccessToken(ctx context.Context, tenant, jti, clientID string, exp time.Time) error {
	sc, err := scopeOf(tenant)
	if err != nil {
		return err
	}
	if !validID(jti) || !validID(clientID) {
		return invalid("an access token's jti and client id must be canonical UUIDs")
	}
	if !exp.After(s.now()) {
		return nil // expired already: no verifier accepts it
	}
	err = s.db.InTx(ctx, sc, func(tx *sqlstore.Tx) error {
		_, err := tx.ExecContext(ctx, s.q.insertRevokedToken, tenant, jti, clientID, sqlstore.UTC(exp))
		return err
	})
	// The cached "not revoked" goes once the row is committed — and after a failure too: a COMMIT
	// whose answer was lost may have landed, and a revocation is never undone, so dropping the
	// entry is never wrong. Invalidate runs before this returns (detached from the caller's
	// cancellation), so an introspection that starts after the revocation's answer reads the row.
	s.cache.Invalidate(context.WithoutCancel(ctx), revokedKey(tenant, jti))
	if err == nil && s.cache.Stats().PendingInvalidations > 0 {
		// Redis did not take the delete (the cache retries it, and reads the store meanwhile
		// here): another instance that reaches Redis could still answer "not revoked".
		return ErrRevocationUnconfirmed
	}
	return err
}

// AccessTokenRevoked implements Store: one Redis GET on a hit (GetOrLoadConsistent: never a
// value loaded before the revocation's invalidation), the revoked_tokens row otherwise.
func (s *sqlStore) AccessTokenRevoked(ctx context.Context, tenant, jti string, exp time.Time) (bool, error) {
	sc, err := scopeOf(tenant)
	if err != nil {
		return false, err
	}
	if !validID(jti) {
		return false, nil // no such jti was ever recorded
	}
	return s.revokedAnswer(ctx, sc, revokedKey(tenant, jti), exp, s.q.revokedToken, tenant, jti)
}

// revokedAnswer is AccessTokenRevoked's and FamilyRevoked's read: whether the statement (whose
// arguments are tenant and the id) finds a row, from Redis while the answer may be cached
// (GetOrLoadConsistent under key, until exp), from SQL otherwise.
func (s *sqlStore) revokedAnswer(ctx context.Context, sc sqlstore.Scope, key string, exp time.Time, statement, tenant, id string) (bool, error) {
	load := func(ctx context.Context) (bool, error) {
		revoked := false
		err := s.db.InReadTx(ctx, sc, func(tx *sqlstore.Tx) error {
			var one int
			err := tx.QueryRowContext(ctx, statement, tenant, id).Scan(&one)
			if errors.Is(err, sql.ErrNoRows) {
				return nil
			}
			revoked = err == nil
			return err
		})
		return revoked, err
	}
	ttl := exp.Sub(s.now())
	if ttl < minRevokedTTL {
		return load(ctx)
	}
	return cache.GetOrLoadConsistent(ctx, s.cache, key, ttl, load)
}

// familyKey is the cache key of FamilyRevoked's answer for a family of tenant (platform-level for
// PlatformTenant), the tenant lower-cased as revokedKey's.
func familyKey(tenant, family string) string {
	if tenant == PlatformTenant {
		return cache.PlatformKey(service, "family", family)
	}
	return cache.TenantKey(strings.ToLower(tenant), service, "family", strings.ToLower(family))
}

// invalidateFamily drops the cached FamilyRevoked answer of a family whose revocation has
// committed (or may have: callers run it after a failure too), detached from the caller's
// cancellation. Called before the revoking method returns, so an introspection that starts after
// that answer reads the revocation.
func (s *sqlStore) invalidateFamily(ctx context.Context, tenant, family string) {
	if family == "" {
		return
	}
	s.cache.Invalidate(context.WithoutCancel(ctx), familyKey(tenant, family))
}

// FamilyRevoked implements Store: one Redis GET on a hit (GetOrLoadConsistent), otherwise one
// statement over the two tables' (tenant_id, family_id) indexes.
func (s *sqlStore) FamilyRevoked(ctx context.Context, tenant, family string, exp time.Time) (bool, error) {
	sc, err := scopeOf(tenant)
	if err != nil {
		return false, err
	}
	if !validID(family) {
		return false, invalid("a family id must be a canonical UUID")
	}
	return s.revokedAnswer(ctx, sc, familyKey(tenant, family), exp, s.q.familyRevoked, tenant, family)
}

// EmitTokenIssued implements Store.
func (s *sqlStore) EmitTokenIssued(ctx context.Context, tenant string, d contracts.TokenIssuedData) error {
	sc, err := scopeOf(tenant)
	if err != nil {
		return err
	}
	d.TenantID = eventTenant(tenant)
	if d.Scopes == nil {
		d.Scopes = []string{}
	}
	ev, err := s.event(ctx, contracts.TokenIssued, d.TokenID, tenant, d)
	if err != nil {
		return err
	}
	return s.db.InTx(ctx, sc, func(tx *sqlstore.Tx) error { return outbox.Emit(ctx, tx, ev) })
}

// ---- consents ----

// Consent implements Store.
func (s *sqlStore) Consent(ctx context.Context, tenant, subject, clientID string) ([]string, error) {
	sc, err := scopeOf(tenant)
	if err != nil {
		return nil, err
	}
	out := []string{}
	if !validID(clientID) {
		return out, nil
	}
	err = s.db.InReadTx(ctx, sc, func(tx *sqlstore.Tx) error {
		var raw string
		err := tx.QueryRowContext(ctx, s.q.consent, tenant, subject, clientID).Scan(&raw)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		return json.Unmarshal([]byte(raw), &out)
	})
	slices.Sort(out)
	return out, err
}

// GrantConsent implements Store.
func (s *sqlStore) GrantConsent(ctx context.Context, tenant, subject, clientID string, scopes []string) error {
	sc, err := scopeOf(tenant)
	if err != nil {
		return err
	}
	if !validID(clientID) || subject == "" || len(subject) > 200 {
		return invalid("a consent needs a subject (at most 200 bytes) and a client id")
	}
	return s.db.InTx(ctx, sc, func(tx *sqlstore.Tx) error {
		var have []string
		var raw string
		err := tx.QueryRowContext(ctx, s.q.lockConsent, tenant, subject, clientID).Scan(&raw)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return err
		default:
			if err := json.Unmarshal([]byte(raw), &have); err != nil {
				return err
			}
		}
		all := append(slices.Clone(have), scopes...)
		slices.Sort(all)
		list, err := jsonList(slices.Compact(all))
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, s.q.upsertConsent, tenant, subject, clientID, list, sqlstore.UTC(s.now()))
		return err
	})
}

// ---- maintenance ----

// Health implements Store.
func (s *sqlStore) Health(ctx context.Context) error { return s.db.PingContext(ctx) }

// The bound of a pruning keyset that no row reaches: every key is above pruneFloor's.
var (
	pruneFloorHash = []byte{0}
	pruneFloorTime = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
)

// pruneBound is k with the zero key as the floor, its times in UTC.
func pruneBound(k PruneKey) PruneKey {
	if k.ExpiresAt.IsZero() {
		return PruneKey{ExpiresAt: pruneFloorTime, Tenant: PlatformTenant, Hash: pruneFloorHash, ID: PlatformTenant}
	}
	k.ExpiresAt = sqlstore.UTC(k.ExpiresAt)
	return k
}

// PruneNext implements Store: one index range scan of at most limit entries.
func (s *sqlStore) PruneNext(ctx context.Context, table PruneTable, after PruneKey, cutoff time.Time, limit int) (first, last PruneKey, n int, err error) {
	if limit < 1 {
		return first, last, 0, invalid("a pruning range holds at least one row")
	}
	a, cutoff := pruneBound(after), sqlstore.UTC(cutoff)
	err = s.db.InReadTx(ctx, sqlstore.PlatformScope(), func(tx *sqlstore.Tx) error {
		n = 0
		var rows *sql.Rows
		var err error
		switch table {
		case PruneCodes:
			rows, err = tx.QueryContext(ctx, s.q.pruneCodesNext, cutoff, a.ExpiresAt, a.Tenant, a.Hash, limit)
		case PruneRefreshTokens:
			rows, err = tx.QueryContext(ctx, s.q.pruneRefreshNext, cutoff, a.ExpiresAt, a.Tenant, a.ID, limit)
		case PruneRevokedTokens:
			rows, err = tx.QueryContext(ctx, s.q.pruneRevokedNext, cutoff, a.ExpiresAt, a.Tenant, a.ID, limit)
		default:
			return fmt.Errorf("authz: no pruned table %q", table)
		}
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var k PruneKey
			var id sql.NullString
			if err := rows.Scan(&k.ExpiresAt, &k.Tenant, pruneKeyDest(table, &k, &id)); err != nil {
				return err
			}
			k.ID, k.ExpiresAt = id.String, k.ExpiresAt.UTC()
			if n == 0 {
				first = k
			}
			last = k
			n++
		}
		return rows.Err()
	})
	return first, last, n, err
}

// PruneRange implements Store: one DELETE of an index range, and the event, in one transaction.
func (s *sqlStore) PruneRange(ctx context.Context, table PruneTable, from, to PruneKey, cutoff time.Time, ev events.Event) (int, error) {
	if from.ExpiresAt.IsZero() || to.ExpiresAt.IsZero() {
		return 0, invalid("a pruning range has both bounds")
	}
	f, l, cutoff := pruneBound(from), pruneBound(to), sqlstore.UTC(cutoff)
	var deleted int64
	err := s.db.InTx(ctx, sqlstore.PlatformScope(), func(tx *sqlstore.Tx) error {
		var res sql.Result
		var err error
		switch table {
		case PruneCodes:
			res, err = tx.ExecContext(ctx, s.q.pruneCodes, cutoff, f.ExpiresAt, f.Tenant, f.Hash, l.ExpiresAt, l.Tenant, l.Hash)
		case PruneRefreshTokens:
			res, err = tx.ExecContext(ctx, s.q.pruneRefresh, cutoff, f.ExpiresAt, f.Tenant, f.ID, l.ExpiresAt, l.Tenant, l.ID)
		case PruneRevokedTokens:
			res, err = tx.ExecContext(ctx, s.q.pruneRevoked, cutoff, f.ExpiresAt, f.Tenant, f.ID, l.ExpiresAt, l.Tenant, l.ID)
		default:
			return fmt.Errorf("authz: no pruned table %q", table)
		}
		if err != nil {
			return err
		}
		if deleted, err = res.RowsAffected(); err != nil || deleted == 0 {
			return err
		}
		return outbox.Emit(ctx, tx, ev)
	})
	if err != nil {
		return 0, err
	}
	return int(deleted), nil
}

// pruneKeyDest is where a bound statement's key column scans to: the hash, or the id.
func pruneKeyDest(table PruneTable, k *PruneKey, id *sql.NullString) any {
	if table == PruneCodes {
		return &k.Hash
	}
	return id
}

// ---- scanning and helpers ----

// rowScanner is *sql.Row or *sql.Rows.
type rowScanner interface{ Scan(dest ...any) error }

// validID reports whether s is a canonical non-nil UUID.
func validID(s string) bool {
	_, ok := ids.Parse(s)
	return ok
}

// clientNotFound maps "no row" to ErrClientNotFound, keeping the chain.
func clientNotFound(err error) error {
	if errors.Is(err, sql.ErrNoRows) || errors.Is(err, sqlstore.ErrNotFound) {
		return fmt.Errorf("%w: %w", ErrClientNotFound, err)
	}
	return err
}

func scanClient(r rowScanner) (Client, error) {
	var c Client
	var id, typ, redirect, postLogout, grants, scopes string
	var rotated, deleted sql.NullTime
	err := r.Scan(&c.Tenant, &id, &c.Name, &typ, &redirect, &postLogout, &grants, &scopes, &c.FirstParty, &c.PlatformAdmin,
		&c.SecretHash, &rotated, &c.Version, &c.CreatedAt, &c.UpdatedAt, &deleted)
	if err != nil {
		return Client{}, clientNotFound(err)
	}
	c.ID, c.Type = ClientID(id), ClientType(typ)
	c.CreatedAt, c.UpdatedAt = c.CreatedAt.UTC(), c.UpdatedAt.UTC()
	c.SecretRotatedAt, c.DeletedAt = sqlstore.PtrUTC(rotated), sqlstore.PtrUTC(deleted)
	if len(c.SecretHash) == 0 {
		c.SecretHash = nil
	}
	for _, l := range []struct {
		raw string
		to  any
	}{{redirect, &c.RedirectURIs}, {postLogout, &c.PostLogoutRedirectURIs}, {grants, &c.GrantTypes}, {scopes, &c.Scopes}} {
		if err := json.Unmarshal([]byte(l.raw), l.to); err != nil {
			return Client{}, fmt.Errorf("authz: stored client %s: %w", id, err)
		}
	}
	return c, nil
}

func scanCode(r rowScanner) (Code, error) {
	var c Code
	var client, request string
	var redeemed sql.NullTime
	err := r.Scan(&c.Hash, &c.AuthRequestID, &client, &c.Subject, &request, &c.FamilyID, &c.CreatedAt, &c.ExpiresAt, &redeemed)
	if errors.Is(err, sql.ErrNoRows) {
		return Code{}, ErrCodeNotFound
	}
	if err != nil {
		return Code{}, err
	}
	c.ClientID, c.Request = ClientID(client), []byte(request)
	c.CreatedAt, c.ExpiresAt, c.RedeemedAt = c.CreatedAt.UTC(), c.ExpiresAt.UTC(), sqlstore.PtrUTC(redeemed)
	return c, nil
}

func scanRefreshToken(r rowScanner) (RefreshToken, error) {
	var t RefreshToken
	var client, scopes, audience, amr string
	var consumed, revoked sql.NullTime
	err := r.Scan(&t.ID, &t.FamilyID, &client, &t.Subject, &scopes, &audience, &amr, &t.AuthTime, &t.CreatedAt, &t.ExpiresAt,
		&consumed, &t.ReplacedBy, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return RefreshToken{}, ErrRefreshTokenNotFound
	}
	if err != nil {
		return RefreshToken{}, err
	}
	t.ClientID = ClientID(client)
	t.AuthTime, t.CreatedAt, t.ExpiresAt = t.AuthTime.UTC(), t.CreatedAt.UTC(), t.ExpiresAt.UTC()
	t.ConsumedAt, t.RevokedAt = sqlstore.PtrUTC(consumed), sqlstore.PtrUTC(revoked)
	for _, l := range []struct {
		raw string
		to  *[]string
	}{{scopes, &t.Scopes}, {audience, &t.Audience}, {amr, &t.AMR}} {
		if err := json.Unmarshal([]byte(l.raw), l.to); err != nil {
			return RefreshToken{}, fmt.Errorf("authz: stored refresh token %s: %w", t.ID, err)
		}
	}
	return t, nil
}

// scanInts reads a query of one integer column.
func scanInts(rows *sql.Rows) ([]int, error) {
	defer rows.Close()
	var out []int
	for rows.Next() {
		var n int
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// jsonList is a list as the JSON array text the tables keep ([] for nil).
func jsonList[T ~string](l []T) (string, error) {
	if l == nil {
		l = []T{}
	}
	b, err := json.Marshal(l)
	return string(b), err
}

// clientLists are the client's redirect URIs, post-logout redirect URIs, grant types and scopes as
// JSON array text.
func clientLists(c Client) ([4]string, error) {
	var out [4]string
	var err error
	if out[0], err = jsonList(c.RedirectURIs); err != nil {
		return out, err
	}
	if out[1], err = jsonList(c.PostLogoutRedirectURIs); err != nil {
		return out, err
	}
	if out[2], err = jsonList(c.GrantTypes); err != nil {
		return out, err
	}
	out[3], err = jsonList(c.Scopes)
	return out, err
}

// refreshLists are the token's scopes, audience and amr as JSON array text.
func refreshLists(t RefreshToken) (scopes, audience, amr string, err error) {
	if scopes, err = jsonList(t.Scopes); err != nil {
		return
	}
	if audience, err = jsonList(t.Audience); err != nil {
		return
	}
	amr, err = jsonList(t.AMR)
	return
}

// cloneClient copies c with lists of its own, for a closure to change.
func cloneClient(c Client) Client {
	c.RedirectURIs = slices.Clone(c.RedirectURIs)
	c.PostLogoutRedirectURIs = slices.Clone(c.PostLogoutRedirectURIs)
	c.GrantTypes = slices.Clone(c.GrantTypes)
	c.Scopes = slices.Clone(c.Scopes)
	return c
}

// sameClient reports whether a and b hold the same mutable values.
func sameClient(a, b Client) bool {
	return a.Name == b.Name && a.FirstParty == b.FirstParty && a.PlatformAdmin == b.PlatformAdmin &&
		slices.Equal(a.RedirectURIs, b.RedirectURIs) && slices.Equal(a.PostLogoutRedirectURIs, b.PostLogoutRedirectURIs) &&
		slices.Equal(a.GrantTypes, b.GrantTypes) && slices.Equal(a.Scopes, b.Scopes)
}

// clientData is the ClientCreated/ClientUpdated data of c.
func clientData(c Client) contracts.ClientData {
	str := func(l []string) []string {
		if l == nil {
			return []string{}
		}
		return l
	}
	grants := make([]string, len(c.GrantTypes))
	for i, g := range c.GrantTypes {
		grants[i] = string(g)
	}
	scopes := make([]string, len(c.Scopes))
	for i, sc := range c.Scopes {
		scopes[i] = string(sc)
	}
	return contracts.ClientData{TenantID: eventTenant(c.Tenant), ClientID: string(c.ID), Name: c.Name, ClientType: string(c.Type),
		RedirectURIs: str(c.RedirectURIs), PostLogoutRedirectURIs: str(c.PostLogoutRedirectURIs), GrantTypes: grants,
		Scopes: scopes, FirstParty: c.FirstParty, PlatformAdmin: c.PlatformAdmin, Version: c.Version}
}
