package authz

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"spine/shared/cache"
	"spine/shared/contracts"
	"spine/shared/ids"
	"spine/shared/retention"
	"spine/shared/sqlstore"
)

// storeEnv is what a conformance subtest works with: a store over one engine's database, the
// store's clock, and a way to read the outbox as the platform sees it.
type storeEnv struct {
	s     Store
	clock *testClock
	// outboxTypes returns the event types in the outbox whose subject is subject, in order.
	outboxTypes func(t *testing.T, subject string) []string
	// second is another instance's store over the same database, with a cache of its own over
	// the same Redis (as a second process has).
	second func(t *testing.T) (Store, *cache.Cache)
}

// runStoreConformance runs the store's contract against one engine. Every subtest works in fresh
// tenants and clients, so nothing needs emptying.
func runStoreConformance(t *testing.T, newEnv func(t *testing.T) storeEnv) {
	ctx := context.Background()

	t.Run("CreateClient_ConfidentialGetsASecretStoredAsItsHash", func(t *testing.T) {
		e := newEnv(t)
		c, secret := mustClient(t, e, newTenant(), ClientConfidential)
		if !strings.HasPrefix(secret, clientSecretPrefix) || len(secret) != len(clientSecretPrefix)+43 {
			t.Fatalf("secret %q is not cs1. + 43 base64url characters", secret)
		}
		if !bytes.Equal(c.SecretHash, hashOf(secret)) || c.SecretRotatedAt == nil {
			t.Fatalf("hash %x rotated %v", c.SecretHash, c.SecretRotatedAt)
		}
		got, err := e.s.ClientByID(ctx, string(c.ID))
		if err != nil || !bytes.Equal(got.SecretHash, hashOf(secret)) || got.Tenant != c.Tenant || got.Name != c.Name ||
			!slices.Equal(got.Scopes, c.Scopes) || !slices.Equal(got.RedirectURIs, c.RedirectURIs) || got.Version != 1 {
			t.Fatalf("ClientByID = %+v, %v; want %+v", got, err, c)
		}
		if types := e.outboxTypes(t, string(c.ID)); !slices.Equal(types, []string{contracts.ClientCreated}) {
			t.Errorf("outbox %v", types)
		}
	})

	t.Run("CreateClient_PublicHasNoSecret", func(t *testing.T) {
		e := newEnv(t)
		c, secret := mustClient(t, e, newTenant(), ClientPublic)
		if secret != "" || c.SecretHash != nil {
			t.Fatalf("public client: secret %q hash %x", secret, c.SecretHash)
		}
		if _, err := e.s.AuthenticateClient(ctx, string(c.ID), ""); !errors.Is(err, ErrInvalidClient) {
			t.Fatalf("a public client authenticating: %v, want ErrInvalidClient", err)
		}
	})

	t.Run("AuthenticateClient_InvalidClientForEveryFailure", func(t *testing.T) {
		e := newEnv(t)
		c, secret := mustClient(t, e, newTenant(), ClientConfidential)
		if got, err := e.s.AuthenticateClient(ctx, string(c.ID), secret); err != nil || got.ID != c.ID {
			t.Fatalf("right secret: %v", err)
		}
		for name, try := range map[string][2]string{
			"wrong secret":     {string(c.ID), otherLast(secret)},
			"empty secret":     {string(c.ID), ""},
			"unknown client":   {ids.New(), secret},
			"malformed client": {"not-an-id", secret},
		} {
			if _, err := e.s.AuthenticateClient(ctx, try[0], try[1]); !errors.Is(err, ErrInvalidClient) {
				t.Errorf("%s: %v, want ErrInvalidClient", name, err)
			}
		}
	})

	t.Run("ClientByID_UnknownAndMalformedAreNotFound", func(t *testing.T) {
		e := newEnv(t)
		for _, id := range []string{ids.New(), "x", strings.ToUpper(ids.New()), PlatformTenant} {
			if _, err := e.s.ClientByID(ctx, id); !errors.Is(err, ErrClientNotFound) {
				t.Errorf("ClientByID(%q) = %v", id, err)
			}
		}
		// A cached "no such client" does not hide a client created afterwards with that id.
		id := ClientID(ids.New())
		if _, err := e.s.ClientByID(ctx, string(id)); !errors.Is(err, ErrClientNotFound) {
			t.Fatal(err)
		}
		c := clientFixture(newTenant(), ClientConfidential, e.clock.now())
		c.ID = id
		if _, _, err := e.s.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
		if _, err := e.s.ClientByID(ctx, string(id)); err != nil {
			t.Fatalf("a client created after a miss of its id: %v", err)
		}
	})

	t.Run("PlatformClient_OnlyInPlatformScope", func(t *testing.T) {
		e := newEnv(t)
		c, secret := mustClient(t, e, PlatformTenant, ClientConfidential)
		if got, err := e.s.AuthenticateClient(ctx, string(c.ID), secret); err != nil || !got.Platform() || !got.PlatformAdmin {
			t.Fatalf("platform client: %+v, %v", got, err)
		}
		if _, err := e.s.Client(ctx, PlatformTenant, c.ID); err != nil {
			t.Fatal(err)
		}
		other := newTenant()
		if _, err := e.s.Client(ctx, other, c.ID); !errors.Is(err, ErrClientNotFound) {
			t.Fatalf("a tenant reading a platform client: %v", err)
		}
		if list, err := e.s.ListClients(ctx, other, "", 10); err != nil || len(list) != 0 {
			t.Fatalf("a new tenant's list: %v %v", list, err)
		}
	})

	t.Run("Client_OtherTenantsIsNotFound", func(t *testing.T) {
		e := newEnv(t)
		a, b := newTenant(), newTenant()
		c, _ := mustClient(t, e, a, ClientConfidential)
		if _, err := e.s.Client(ctx, b, c.ID); !errors.Is(err, ErrClientNotFound) {
			t.Fatalf("B reading A's client: %v", err)
		}
		if _, err := e.s.UpdateClient(ctx, b, c.ID, nil, func(c *Client) error { c.Name = "x"; return nil }); !errors.Is(err, ErrClientNotFound) {
			t.Fatalf("B changing A's client: %v", err)
		}
		if err := e.s.DeleteClient(ctx, b, c.ID, nil); !errors.Is(err, ErrClientNotFound) {
			t.Fatalf("B deleting A's client: %v", err)
		}
		if _, _, err := e.s.RotateClientSecret(ctx, b, c.ID, nil); !errors.Is(err, ErrClientNotFound) {
			t.Fatalf("B rotating A's client's secret: %v", err)
		}
	})

	t.Run("ListClients_PagesInIDOrderWithoutDeleted", func(t *testing.T) {
		e := newEnv(t)
		tenant := newTenant()
		var ids []ClientID
		for range 5 {
			c, _ := mustClient(t, e, tenant, ClientPublic)
			ids = append(ids, c.ID)
		}
		if err := e.s.DeleteClient(ctx, tenant, ids[2], nil); err != nil {
			t.Fatal(err)
		}
		want := append(slices.Clone(ids[:2]), ids[3:]...)
		var got []ClientID
		after := ClientID("")
		for {
			page, err := e.s.ListClients(ctx, tenant, after, 2)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range page {
				got = append(got, c.ID)
			}
			if len(page) < 2 {
				break
			}
			after = page[len(page)-1].ID
		}
		if !slices.Equal(got, want) {
			t.Fatalf("pages %v, want %v", got, want)
		}
	})

	t.Run("UpdateClient_VersionChecksAndNoOpWritesNothing", func(t *testing.T) {
		e := newEnv(t)
		c, secret := mustClient(t, e, newTenant(), ClientConfidential)
		stale := int64(7)
		if _, err := e.s.UpdateClient(ctx, c.Tenant, c.ID, &stale, func(c *Client) error { c.Name = "x"; return nil }); !errors.Is(err, ErrVersionMismatch) {
			t.Fatalf("stale If-Match: %v", err)
		}
		same, err := e.s.UpdateClient(ctx, c.Tenant, c.ID, &c.Version, func(*Client) error { return nil })
		if err != nil || same.Version != 1 {
			t.Fatalf("no change: %+v %v", same, err)
		}
		up, err := e.s.UpdateClient(ctx, c.Tenant, c.ID, &c.Version, func(c *Client) error {
			c.Name, c.Scopes = "Renamed", []Scope{"tenant.read"}
			c.SecretHash = nil // not the closure's to change
			return nil
		})
		if err != nil || up.Version != 2 || up.Name != "Renamed" || !slices.Equal(up.Scopes, []Scope{"tenant.read"}) {
			t.Fatalf("update: %+v %v", up, err)
		}
		got, err := e.s.AuthenticateClient(ctx, string(c.ID), secret)
		if err != nil || got.Name != "Renamed" || got.Version != 2 {
			t.Fatalf("after the update (cache invalidated, secret kept): %+v %v", got, err)
		}
		if types := e.outboxTypes(t, string(c.ID)); !slices.Equal(types, []string{contracts.ClientCreated, contracts.ClientUpdated}) {
			t.Errorf("outbox %v", types)
		}
	})

	t.Run("RotateClientSecret_OldSecretStopsAtOnce", func(t *testing.T) {
		e := newEnv(t)
		c, old := mustClient(t, e, newTenant(), ClientConfidential)
		if _, err := e.s.AuthenticateClient(ctx, string(c.ID), old); err != nil { // cached now
			t.Fatal(err)
		}
		rc, secret, err := e.s.RotateClientSecret(ctx, c.Tenant, c.ID, &c.Version)
		if err != nil || secret == old || rc.Version != 2 || !bytes.Equal(rc.SecretHash, hashOf(secret)) {
			t.Fatalf("rotate: %+v %q %v", rc, secret, err)
		}
		if _, err := e.s.AuthenticateClient(ctx, string(c.ID), old); !errors.Is(err, ErrInvalidClient) {
			t.Fatalf("the old secret after the rotation: %v", err)
		}
		if _, err := e.s.AuthenticateClient(ctx, string(c.ID), secret); err != nil {
			t.Fatalf("the new secret: %v", err)
		}
		p, _ := mustClient(t, e, c.Tenant, ClientPublic)
		if _, _, err := e.s.RotateClientSecret(ctx, p.Tenant, p.ID, nil); !errors.Is(err, ErrPublicClient) {
			t.Fatalf("a public client's rotation: %v", err)
		}
		if types := e.outboxTypes(t, string(c.ID)); !slices.Equal(types, []string{contracts.ClientCreated, contracts.ClientSecretRotated}) {
			t.Errorf("outbox %v", types)
		}
	})

	t.Run("DeleteClient_GoneAndItsRefreshTokensRevoked", func(t *testing.T) {
		e := newEnv(t)
		c, secret := mustClient(t, e, newTenant(), ClientConfidential)
		if _, err := e.s.ClientByID(ctx, string(c.ID)); err != nil { // cached now
			t.Fatal(err)
		}
		rt := mustRefresh(t, e, c, "")
		if err := e.s.DeleteClient(ctx, c.Tenant, c.ID, &c.Version); err != nil {
			t.Fatal(err)
		}
		if _, err := e.s.ClientByID(ctx, string(c.ID)); !errors.Is(err, ErrClientNotFound) {
			t.Fatalf("deleted client: %v", err)
		}
		if _, err := e.s.AuthenticateClient(ctx, string(c.ID), secret); !errors.Is(err, ErrInvalidClient) {
			t.Fatalf("deleted client authenticating: %v", err)
		}
		if _, err := e.s.Client(ctx, c.Tenant, c.ID); !errors.Is(err, ErrClientNotFound) {
			t.Fatalf("deleted client read: %v", err)
		}
		if err := e.s.DeleteClient(ctx, c.Tenant, c.ID, nil); !errors.Is(err, ErrClientNotFound) {
			t.Fatalf("deleting again: %v", err)
		}
		if _, err := e.s.RefreshTokenByValue(ctx, rt); !errors.Is(err, ErrRefreshTokenNotFound) {
			t.Fatalf("the deleted client's refresh token: %v", err)
		}
		if types := e.outboxTypes(t, string(c.ID)); !slices.Equal(types, []string{contracts.ClientCreated, contracts.ClientDeleted}) {
			t.Errorf("outbox %v", types)
		}
	})

	t.Run("RedeemCode_OnceThenReuseRevokesTheFamily", func(t *testing.T) {
		e := newEnv(t)
		c, _ := mustClient(t, e, newTenant(), ClientConfidential)
		code := mustCode(t, e, c)
		got, err := e.s.RedeemCode(ctx, c.Tenant, code.Hash)
		if err != nil || got.FamilyID != code.FamilyID || got.RedeemedAt == nil || string(got.Request) == "" || got.Subject != "user-1" {
			t.Fatalf("first redemption: %+v %v", got, err)
		}
		rt := mustRefresh(t, e, c, got.FamilyID)
		if _, err := e.s.RedeemCode(ctx, c.Tenant, code.Hash); !errors.Is(err, ErrCodeReused) {
			t.Fatalf("second redemption: %v, want ErrCodeReused", err)
		}
		if _, err := e.s.RefreshTokenByValue(ctx, rt); !errors.Is(err, ErrRefreshTokenNotFound) {
			t.Fatalf("the family's refresh token after the reuse: %v", err)
		}
		if _, err := e.s.CreateRefreshToken(ctx, refreshFixture(c, got.FamilyID, e.clock.now())); !errors.Is(err, ErrCodeReused) {
			t.Fatalf("a refresh token in the reused code's family: %v", err)
		}
		if types := e.outboxTypes(t, got.FamilyID); !slices.Equal(types, []string{contracts.RefreshTokenReuseDetected}) {
			t.Errorf("outbox %v", types)
		}
	})

	t.Run("RedeemCode_UnknownOtherTenantsAndExpired", func(t *testing.T) {
		e := newEnv(t)
		c, _ := mustClient(t, e, newTenant(), ClientPublic)
		code := mustCode(t, e, c)
		if _, err := e.s.RedeemCode(ctx, c.Tenant, HashCode("nope")); !errors.Is(err, ErrCodeNotFound) {
			t.Fatalf("unknown: %v", err)
		}
		if _, err := e.s.RedeemCode(ctx, newTenant(), code.Hash); !errors.Is(err, ErrCodeNotFound) {
			t.Fatalf("another tenant's: %v", err)
		}
		e.clock.move(2 * time.Minute)
		if _, err := e.s.RedeemCode(ctx, c.Tenant, code.Hash); !errors.Is(err, ErrCodeExpired) {
			t.Fatalf("expired: %v", err)
		}
	})

	t.Run("RotateRefreshToken_ThenReplayRevokesTheFamily", func(t *testing.T) {
		e := newEnv(t)
		c, _ := mustClient(t, e, newTenant(), ClientPublic)
		first := mustRefresh(t, e, c, "")
		if !strings.HasPrefix(first, refreshTokenPrefix) || len(first) != refreshTokenLen {
			t.Fatalf("value %q", first)
		}
		rt, err := e.s.RefreshTokenByValue(ctx, first)
		if err != nil || rt.ClientID != c.ID || rt.TenantID != c.Tenant || !slices.Equal(rt.Scopes, []string{"offline_access", "openid"}) {
			t.Fatalf("by value: %+v %v", rt, err)
		}
		second, err := e.s.RotateRefreshToken(ctx, first, RefreshToken{ClientID: c.ID, Scopes: []string{"openid"}})
		if err != nil || second == first {
			t.Fatalf("rotate: %q %v", second, err)
		}
		next, err := e.s.RefreshTokenByValue(ctx, second)
		if err != nil || next.FamilyID != rt.FamilyID || !slices.Equal(next.Scopes, []string{"openid"}) ||
			!next.ExpiresAt.Equal(rt.ExpiresAt) || next.Subject != rt.Subject || !next.AuthTime.Equal(rt.AuthTime) {
			t.Fatalf("successor %+v %v (first %+v)", next, err, rt)
		}
		if _, err := e.s.RotateRefreshToken(ctx, first, RefreshToken{ClientID: c.ID}); !errors.Is(err, ErrRefreshTokenReused) {
			t.Fatalf("replaying the rotated token: %v, want ErrRefreshTokenReused", err)
		}
		if _, err := e.s.RefreshTokenByValue(ctx, second); !errors.Is(err, ErrRefreshTokenNotFound) {
			t.Fatalf("the successor after the replay: %v, want revoked", err)
		}
		if _, err := e.s.RotateRefreshToken(ctx, second, RefreshToken{ClientID: c.ID}); !errors.Is(err, ErrRefreshTokenNotFound) {
			t.Fatalf("rotating the revoked successor: %v", err)
		}
		if types := e.outboxTypes(t, rt.FamilyID); !slices.Equal(types, []string{contracts.RefreshTokenReuseDetected}) {
			t.Errorf("outbox %v", types)
		}
	})

	t.Run("RefreshTokenByValue_ConsumedIsReuse", func(t *testing.T) {
		e := newEnv(t)
		c, _ := mustClient(t, e, newTenant(), ClientPublic)
		first := mustRefresh(t, e, c, "")
		second, err := e.s.RotateRefreshToken(ctx, first, RefreshToken{ClientID: c.ID})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.s.RefreshTokenByValue(ctx, first); !errors.Is(err, ErrRefreshTokenReused) {
			t.Fatalf("reading the consumed token: %v", err)
		}
		if _, err := e.s.RefreshTokenByValue(ctx, second); !errors.Is(err, ErrRefreshTokenNotFound) {
			t.Fatalf("the successor: %v, want revoked", err)
		}
	})

	t.Run("RotateRefreshToken_ConcurrentRotationsOneWinsFamilyRevoked", func(t *testing.T) {
		e := newEnv(t)
		c, _ := mustClient(t, e, newTenant(), ClientPublic)
		for round := range 5 {
			first := mustRefresh(t, e, c, "")
			const n = 8
			var wg sync.WaitGroup
			values, errs := make([]string, n), make([]error, n)
			start := make(chan struct{})
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					values[i], errs[i] = e.s.RotateRefreshToken(ctx, first, RefreshToken{ClientID: c.ID})
				}()
			}
			close(start)
			wg.Wait()
			won := ""
			for i := range n {
				switch {
				case errs[i] == nil && won == "":
					won = values[i]
				case errs[i] == nil:
					t.Fatalf("two rotations of one token succeeded")
				case !errors.Is(errs[i], ErrRefreshTokenReused):
					t.Fatalf("a losing rotation: %v, want ErrRefreshTokenReused", errs[i])
				}
			}
			if won == "" {
				t.Fatal("no rotation succeeded")
			}
			if _, err := e.s.RefreshTokenByValue(ctx, won); !errors.Is(err, ErrRefreshTokenNotFound) {
				t.Fatalf("round %d: the winner's successor: %v, want revoked (the losers revoked the family)", round, err)
			}
		}
	})

	t.Run("RedeemCode_ReuseRacingTheFirstRefreshTokenLeavesNoLiveToken", func(t *testing.T) {
		e := newEnv(t)
		c, _ := mustClient(t, e, newTenant(), ClientPublic)
		for round := range 10 {
			code := mustCode(t, e, c)
			if _, err := e.s.RedeemCode(ctx, c.Tenant, code.Hash); err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			var value string
			var createErr, reuseErr error
			start := make(chan struct{})
			wg.Add(2)
			go func() {
				defer wg.Done()
				<-start
				value, createErr = e.s.CreateRefreshToken(ctx, refreshFixture(c, code.FamilyID, e.clock.now()))
			}()
			go func() {
				defer wg.Done()
				<-start
				_, reuseErr = e.s.RedeemCode(ctx, c.Tenant, code.Hash)
			}()
			close(start)
			wg.Wait()
			if !errors.Is(reuseErr, ErrCodeReused) {
				t.Fatalf("round %d: the second redemption: %v", round, reuseErr)
			}
			switch {
			case errors.Is(createErr, ErrCodeReused): // the reuse came first
			case createErr != nil:
				t.Fatalf("round %d: %v", round, createErr)
			default: // the token came first: the reuse revoked it
				if _, err := e.s.RefreshTokenByValue(ctx, value); !errors.Is(err, ErrRefreshTokenNotFound) {
					t.Fatalf("round %d: the family's token after the reuse: %v", round, err)
				}
			}
		}
	})

	t.Run("RotateRefreshToken_RefusalsLeaveTheTokenLive", func(t *testing.T) {
		e := newEnv(t)
		c, _ := mustClient(t, e, newTenant(), ClientPublic)
		other, _ := mustClient(t, e, c.Tenant, ClientPublic)
		first := mustRefresh(t, e, c, "")
		if _, err := e.s.RotateRefreshToken(ctx, first, RefreshToken{ClientID: other.ID}); !errors.Is(err, ErrRefreshTokenNotFound) {
			t.Fatalf("another client's rotation: %v", err)
		}
		if _, err := e.s.RotateRefreshToken(ctx, first, RefreshToken{ClientID: c.ID, Scopes: []string{"openid", "user.read"}}); !errors.Is(err, ErrScopeNotGranted) {
			t.Fatalf("a wider scope: %v", err)
		}
		raw, _ := base64.RawURLEncoding.DecodeString(first[len(refreshTokenPrefix):])
		raw[0] ^= 1 // another tenant
		tampered := refreshTokenPrefix + base64.RawURLEncoding.EncodeToString(raw)
		for _, v := range []string{tampered, "rt1.x", first + "A", ""} {
			if _, err := e.s.RefreshTokenByValue(ctx, v); !errors.Is(err, ErrRefreshTokenNotFound) {
				t.Errorf("RefreshTokenByValue(%q) = %v", v, err)
			}
			if _, err := e.s.RotateRefreshToken(ctx, v, RefreshToken{ClientID: c.ID}); !errors.Is(err, ErrRefreshTokenNotFound) {
				t.Errorf("RotateRefreshToken(%q) = %v", v, err)
			}
		}
		if _, err := e.s.RotateRefreshToken(ctx, first, RefreshToken{ClientID: c.ID}); err != nil {
			t.Fatalf("the token after the refusals: %v", err)
		}
	})

	t.Run("RefreshToken_ExpiredIsNotFound", func(t *testing.T) {
		e := newEnv(t)
		c, _ := mustClient(t, e, newTenant(), ClientPublic)
		v := mustRefresh(t, e, c, "")
		e.clock.move(2 * time.Hour)
		if _, err := e.s.RefreshTokenByValue(ctx, v); !errors.Is(err, ErrRefreshTokenNotFound) {
			t.Fatalf("by value: %v", err)
		}
		if _, err := e.s.RotateRefreshToken(ctx, v, RefreshToken{ClientID: c.ID}); !errors.Is(err, ErrRefreshTokenNotFound) {
			t.Fatalf("rotate: %v", err)
		}
	})

	t.Run("RevokeRefreshFamily_ClientChecksAndUnknownIsNil", func(t *testing.T) {
		e := newEnv(t)
		c, _ := mustClient(t, e, newTenant(), ClientPublic)
		other, _ := mustClient(t, e, c.Tenant, ClientPublic)
		first := mustRefresh(t, e, c, "")
		second, err := e.s.RotateRefreshToken(ctx, first, RefreshToken{ClientID: c.ID})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.s.RevokeRefreshFamily(ctx, second, string(other.ID)); !errors.Is(err, ErrTokenClientMismatch) {
			t.Fatalf("another client revoking: %v", err)
		}
		if _, err := e.s.RefreshTokenByValue(ctx, second); err != nil {
			t.Fatalf("after the refused revocation: %v", err)
		}
		for _, v := range []string{"nope", mustRefreshValueOfNobody(c.Tenant)} {
			if err := e.s.RevokeRefreshFamily(ctx, v, string(c.ID)); err != nil {
				t.Fatalf("unknown %q: %v", v, err)
			}
		}
		if err := e.s.RevokeRefreshFamily(ctx, first, string(c.ID)); err != nil { // an older member revokes the family
			t.Fatal(err)
		}
		if _, err := e.s.RefreshTokenByValue(ctx, second); !errors.Is(err, ErrRefreshTokenNotFound) {
			t.Fatalf("after the revocation: %v", err)
		}
	})

	t.Run("RevokeAccessToken_PerTenantAndIdempotent", func(t *testing.T) {
		e := newEnv(t)
		a, b := newTenant(), newTenant()
		jti, client := ids.New(), ids.New()
		exp := e.clock.now().Add(10 * time.Minute)
		for range 2 {
			if err := e.s.RevokeAccessToken(ctx, a, jti, client, exp); err != nil {
				t.Fatal(err)
			}
		}
		for tenant, want := range map[string]bool{a: true, b: false} {
			if got, err := e.s.AccessTokenRevoked(ctx, tenant, jti, exp); err != nil || got != want {
				t.Errorf("revoked in %s: %v %v, want %v", tenant, got, err, want)
			}
		}
		if err := e.s.RevokeAccessToken(ctx, PlatformTenant, jti, client, exp); err != nil {
			t.Fatal(err)
		}
		if got, err := e.s.AccessTokenRevoked(ctx, PlatformTenant, jti, exp); err != nil || !got {
			t.Errorf("platform token: %v %v", got, err)
		}
		if got, err := e.s.AccessTokenRevoked(ctx, a, "not-a-jti", exp); err != nil || got {
			t.Errorf("malformed jti: %v %v", got, err)
		}
	})

	// The answer is cached (Redis) until the token's exp; a revocation on one instance drops it
	// for every other before RevokeAccessToken returns, so no instance answers "not revoked"
	// after it — neither the revoking one nor another over the same database and Redis.
	t.Run("AccessTokenRevoked_CachedUntilARevocationOnAnyInstance", func(t *testing.T) {
		e := newEnv(t)
		other, oc := e.second(t)
		a := newTenant()
		jti, client := ids.New(), ids.New()
		exp := e.clock.now().Add(10 * time.Minute)
		for range 2 {
			if got, err := other.AccessTokenRevoked(ctx, a, jti, exp); err != nil || got {
				t.Fatalf("before the revocation: %v %v", got, err)
			}
		}
		if st := oc.Stats(); st.Loads != 1 || st.Hits != 1 {
			t.Fatalf("the other instance read the store %d times and Redis answered %d times, want 1 and 1 (the answer is cached)", st.Loads, st.Hits)
		}
		if err := e.s.RevokeAccessToken(ctx, a, jti, client, exp); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			for _, s := range []Store{other, e.s} {
				if got, err := s.AccessTokenRevoked(ctx, a, jti, exp); err != nil || !got {
					t.Fatalf("after the revocation: %v %v, want revoked", got, err)
				}
			}
		}
		if st := oc.Stats(); st.Loads != 2 {
			t.Fatalf("the other instance read the store %d times, want 2 (once more after the revocation, then the cached answer)", st.Loads)
		}
		// Another tenant's jti of the same value is its own key.
		if got, err := other.AccessTokenRevoked(ctx, newTenant(), jti, exp); err != nil || got {
			t.Fatalf("another tenant: %v %v", got, err)
		}
	})

	// FamilyRevoked is cached (Redis) until the access token's exp; every family revocation —
	// RFC 7009's, a refresh token's reuse, a code's second redemption — drops the answer for every
	// instance before it returns.
	t.Run("FamilyRevoked_CachedUntilARevocationOnAnyInstance", func(t *testing.T) {
		e := newEnv(t)
		other, _ := e.second(t)
		c, _ := mustClient(t, e, newTenant(), ClientPublic)
		exp := e.clock.now().Add(10 * time.Minute)
		cachedLive := func(family string) {
			t.Helper()
			for range 2 {
				if got, err := other.FamilyRevoked(ctx, c.Tenant, family, exp); err != nil || got {
					t.Fatalf("before the revocation: %v %v", got, err)
				}
			}
		}
		revoked := func(how, family string) {
			t.Helper()
			for _, s := range []Store{other, e.s} {
				if got, err := s.FamilyRevoked(ctx, c.Tenant, family, exp); err != nil || !got {
					t.Fatalf("after %s: %v %v, want revoked", how, got, err)
				}
			}
		}
		// RFC 7009.
		fam := ids.New()
		v := mustRefresh(t, e, c, fam)
		cachedLive(fam)
		if err := e.s.RevokeRefreshFamily(ctx, v, string(c.ID)); err != nil {
			t.Fatal(err)
		}
		revoked("a revocation", fam)
		// A rotated token presented again.
		fam = ids.New()
		v = mustRefresh(t, e, c, fam)
		if _, err := e.s.RotateRefreshToken(ctx, v, RefreshToken{ClientID: c.ID}); err != nil {
			t.Fatal(err)
		}
		cachedLive(fam)
		if _, err := e.s.RotateRefreshToken(ctx, v, RefreshToken{ClientID: c.ID}); !errors.Is(err, ErrRefreshTokenReused) {
			t.Fatalf("reuse: %v", err)
		}
		revoked("a reuse", fam)
		// A code redeemed twice, with no refresh token in its family.
		code := mustCode(t, e, c)
		if _, err := e.s.RedeemCode(ctx, c.Tenant, code.Hash); err != nil {
			t.Fatal(err)
		}
		cachedLive(code.FamilyID)
		if _, err := e.s.RedeemCode(ctx, c.Tenant, code.Hash); !errors.Is(err, ErrCodeReused) {
			t.Fatalf("second redemption: %v", err)
		}
		revoked("a second redemption", code.FamilyID)
		// Another tenant's family of the same id is its own.
		if got, err := other.FamilyRevoked(ctx, newTenant(), code.FamilyID, exp); err != nil || got {
			t.Fatalf("another tenant: %v %v", got, err)
		}
		if _, err := other.FamilyRevoked(ctx, c.Tenant, "not-a-family", exp); err == nil {
			t.Fatal("a malformed family id was answered")
		}
	})

	t.Run("GrantConsent_IsAUnion", func(t *testing.T) {
		e := newEnv(t)
		tenant, client := newTenant(), ids.New()
		if got, err := e.s.Consent(ctx, tenant, "user-1", client); err != nil || len(got) != 0 || got == nil {
			t.Fatalf("no consent: %#v %v", got, err)
		}
		if err := e.s.GrantConsent(ctx, tenant, "user-1", client, []string{"openid", "profile"}); err != nil {
			t.Fatal(err)
		}
		if err := e.s.GrantConsent(ctx, tenant, "user-1", client, []string{"email", "openid"}); err != nil {
			t.Fatal(err)
		}
		if got, err := e.s.Consent(ctx, tenant, "user-1", client); err != nil || !slices.Equal(got, []string{"email", "openid", "profile"}) {
			t.Fatalf("consent %v %v", got, err)
		}
		if got, _ := e.s.Consent(ctx, newTenant(), "user-1", client); len(got) != 0 {
			t.Fatalf("another tenant sees %v", got)
		}
	})

	t.Run("EmitTokenIssued_WritesTheEvent", func(t *testing.T) {
		e := newEnv(t)
		jti := ids.New()
		if err := e.s.EmitTokenIssued(ctx, newTenant(), contracts.TokenIssuedData{ClientID: ids.New(), Subject: "s",
			GrantType: string(GrantClientCredentials), TokenID: jti, ExpiresAt: time.Now().Add(time.Minute)}); err != nil {
			t.Fatal(err)
		}
		if types := e.outboxTypes(t, jti); !slices.Equal(types, []string{contracts.TokenIssued}) {
			t.Errorf("outbox %v", types)
		}
	})

	t.Run("PruneRange_DeletesExactlyTheExpiredRangeInBoundedBatches", func(t *testing.T) {
		e := newEnv(t)
		c, _ := mustClient(t, e, newTenant(), ClientPublic)
		var expired []string
		for range 5 {
			expired = append(expired, mustRefresh(t, e, c, ""))
		}
		mustCode(t, e, c)
		if err := e.s.RevokeAccessToken(ctx, c.Tenant, ids.New(), string(c.ID), e.clock.now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		// The five expire within the hour; live was created two hours later.
		e.clock.move(2 * time.Hour)
		live := mustRefresh(t, e, c, "")
		cutoff := e.clock.now()
		for _, table := range PruneTables {
			var after PruneKey
			total := 0
			for batch := 0; batch <= 10; batch++ {
				first, last, n, err := e.s.PruneNext(ctx, table, after, cutoff, 2)
				if err != nil {
					t.Fatal(err)
				}
				if n == 0 {
					break
				}
				if n > 2 {
					t.Fatalf("%s: a range of at most 2 holds %d", table, n)
				}
				ev, err := retention.EvidenceEvent(retention.Evidence{ID: ids.New(), Sweep: "ConformanceT", Service: service,
					Unit: string(table), Action: retention.ActionDelete})
				if err != nil {
					t.Fatal(err)
				}
				d, err := e.s.PruneRange(ctx, table, first, last, cutoff, ev)
				if err != nil {
					t.Fatal(err)
				}
				if d != n {
					t.Errorf("%s: the range of %d rows deleted %d", table, n, d)
				}
				if again, err := e.s.PruneRange(ctx, table, first, last, cutoff, ev); err != nil || again != 0 {
					t.Errorf("%s: the range deleted again: %d %v", table, again, err)
				}
				total += d
				after = last
			}
			// Other subtests' rows of the same database may expire too: at least ours went.
			if table == PruneRefreshTokens && total < len(expired) {
				t.Errorf("%s: pruned %d, want at least %d", table, total, len(expired))
			}
		}
		for _, v := range expired {
			if _, err := e.s.RefreshTokenByValue(ctx, v); !errors.Is(err, ErrRefreshTokenNotFound) {
				t.Errorf("expired token still there: %v", err)
			}
		}
		if _, err := e.s.RefreshTokenByValue(ctx, live); err != nil {
			t.Fatalf("the live token: %v", err)
		}
	})
}

// clientFixture is a valid client of tenant (platform clients are platform admins).
func clientFixture(tenant string, typ ClientType, now time.Time) Client {
	c := Client{ID: ClientID(ids.New()), Tenant: tenant, Name: "Client " + tenant[:8], Type: typ,
		RedirectURIs: []string{"https://app.example/cb"}, PostLogoutRedirectURIs: []string{},
		GrantTypes: []GrantType{GrantAuthorizationCode, GrantRefreshToken},
		Scopes:     []Scope{ScopeOfflineAccess, ScopeOpenID, "user.read"}, Version: 1, CreatedAt: now, UpdatedAt: now}
	if typ == ClientConfidential {
		c.GrantTypes = append(c.GrantTypes, GrantClientCredentials)
	}
	if tenant == PlatformTenant && typ == ClientConfidential {
		c.PlatformAdmin = true
	}
	return c
}

func mustClient(t *testing.T, e storeEnv, tenant string, typ ClientType) (Client, string) {
	t.Helper()
	c := clientFixture(tenant, typ, e.clock.now())
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	created, secret, err := e.s.CreateClient(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	return created, secret
}

func mustCode(t *testing.T, e storeEnv, c Client) Code {
	t.Helper()
	code := Code{TenantID: c.Tenant, Hash: HashCode("code-" + ids.New()), AuthRequestID: ids.New(), ClientID: c.ID, Subject: "user-1",
		Request: []byte(`{"scopes":["openid"],"redirect_uri":"https://app.example/cb"}`), FamilyID: ids.New(),
		ExpiresAt: e.clock.now().Add(time.Minute)}
	if err := e.s.CreateCode(context.Background(), code); err != nil {
		t.Fatal(err)
	}
	return code
}

func refreshFixture(c Client, family string, now time.Time) RefreshToken {
	return RefreshToken{TenantID: c.Tenant, FamilyID: family, ClientID: c.ID, Subject: "user-1",
		Scopes: []string{"offline_access", "openid"}, Audience: []string{string(c.ID)}, AuthTime: now.Add(-time.Minute),
		AMR: []string{"pwd"}, ExpiresAt: now.Add(time.Hour)}
}

func mustRefresh(t *testing.T, e storeEnv, c Client, family string) string {
	t.Helper()
	v, err := e.s.CreateRefreshToken(context.Background(), refreshFixture(c, family, e.clock.now()))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// mustRefreshValueOfNobody is a well-formed refresh token of tenant that was never issued.
func mustRefreshValueOfNobody(tenant string) string {
	v, _ := newRefreshToken(tenant)
	return v
}

// pgEnv is the conformance environment over the package's PostgreSQL database.
func pgEnv(t *testing.T) storeEnv {
	rt := testDB.OpenRuntime(t, sqlstore.PoolConfig{})
	owner := testDB.OpenOwner(t, sqlstore.PoolConfig{MaxOpen: 2})
	clk := &testClock{}
	return storeEnv{
		s:     NewStore(rt, newTestCache(t), StoreConfig{Now: clk.now}),
		clock: clk,
		second: func(t *testing.T) (Store, *cache.Cache) {
			c := newTestCache(t)
			return NewStore(testDB.OpenRuntime(t, sqlstore.PoolConfig{}), c, StoreConfig{Now: clk.now}), c
		},
		outboxTypes: func(t *testing.T, subject string) []string {
			t.Helper()
			return outboxTypesOf(t, owner, `SELECT event_type FROM outbox WHERE subject = $1 ORDER BY seq`, subject)
		},
	}
}

// outboxTypesOf reads the outbox in platform scope.
func outboxTypesOf(t *testing.T, db *sqlstore.DB, query, subject string) []string {
	t.Helper()
	var out []string
	if err := db.InReadTx(context.Background(), sqlstore.PlatformScope(), func(tx *sqlstore.Tx) error {
		rows, err := tx.QueryContext(context.Background(), query, subject)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				return err
			}
			out = append(out, s)
		}
		return rows.Err()
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestPostgresStore_Conformance(t *testing.T) { runStoreConformance(t, pgEnv) }

// otherLast returns s with its last character replaced by a different one (a fixed replacement
// would be the same character once in 64 secrets).
func otherLast(s string) string {
	last := "A"
	if strings.HasSuffix(s, last) {
		last = "B"
	}
	return s[:len(s)-1] + last
}
