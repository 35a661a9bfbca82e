package authz

import (
	"bytes"
	"crypto/sha256"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/zitadel/oidc/v3/pkg/op"

	"spine/shared/cache"
	"spine/shared/secrets"
	"spine/shared/sqlstore"
	"spine/shared/testenv"
)

// countedStore makes the provider's store read PostgreSQL through a round-trip counter (the
// client and the revocation answers keep their cache, over the same Redis).
func countedStore(t testing.TB, rt **testenv.RoundTrips) func(*ProviderConfig, *ProviderDeps) {
	return func(_ *ProviderConfig, d *ProviderDeps) {
		db, n := testDB.OpenRuntimeCounted(t, sqlstore.PoolConfig{})
		*rt = n
		d.Store = NewStore(db, newTestCache(t), StoreConfig{})
	}
}

// A token introspected again is answered without PostgreSQL and without a signature check: the
// verified-token cache holds it and the revocation answer comes from Redis. The answer is
// byte for byte the first one. Revoking it makes it inactive at once on the same instance.
func TestIntrospection_RepeatToken_NoSQLAndTheSameAnswer(t *testing.T) {
	var rt *testenv.RoundTrips
	e := newOIDC(t, countedStore(t, &rt))
	a := newTenant()
	c, secret := e.ccClient(a, "tenant.read")
	tok := e.clientCredentials(c, secret).json(t)["access_token"].(string)
	introspect := func() []byte {
		t.Helper()
		r := e.post("/introspect", url.Values{"token": {tok}}, string(c.ID), secret)
		if r.code != http.StatusOK || r.hdr.Get("Cache-Control") != "no-store" || r.hdr.Get("Content-Type") != "application/json" {
			t.Fatalf("introspect: %d %v %s", r.code, r.hdr, r.body)
		}
		return r.body
	}
	first := introspect()
	if m := (reply{body: first}).json(t); m["active"] != true || m["tenant_id"] != a || m["jti"] == nil {
		t.Fatalf("first answer: %s", first)
	}
	if n := e.p.verified.len(); n != 1 {
		t.Fatalf("verified tokens: %d, want 1", n)
	}
	before := rt.Count()
	for range 3 {
		if got := introspect(); !bytes.Equal(got, first) {
			t.Fatalf("repeat answer %s, want %s", got, first)
		}
	}
	if n := rt.Count() - before; n != 0 {
		t.Fatalf("3 repeat introspections took %d PostgreSQL round trips, want 0", n)
	}
	key := sha256.Sum256([]byte(tok))
	if at, ok := e.p.verified.get(&key, unixNano(), e.p.keyPublished); !ok || at.answer.Load() == nil {
		t.Fatal("the token's entry or its rendered answer is not cached")
	}
	if r := e.post("/revoke", url.Values{"token": {tok}}, string(c.ID), secret); r.code != http.StatusOK {
		t.Fatalf("revoke: %d %s", r.code, r.body)
	}
	if got := introspect(); string(got) != string(inactiveAnswer) || strings.TrimSpace(string(got)) != `{"active":false}` {
		t.Fatalf("after the revocation: %s", got)
	}
}

// A token revoked through one instance is inactive at once on another instance over the same
// database and Redis, which had answered it active (and cached that answer) just before.
func TestIntrospection_RevokedOnAnotherInstance_InactiveThereAtOnce(t *testing.T) {
	one := newOIDC(t)
	other := newOIDC(t, func(cfg *ProviderConfig, d *ProviderDeps) {
		cfg.Issuer = one.issuer // one authorization server, two instances: the same issuer and keys
		d.Keys = one.p.storage.keys
	})
	a := newTenant()
	c, secret := one.ccClient(a, "tenant.read")
	tok := one.clientCredentials(c, secret).json(t)["access_token"].(string)
	for range 2 {
		if m := other.post("/introspect", url.Values{"token": {tok}}, string(c.ID), secret).json(t); m["active"] != true {
			t.Fatalf("on the other instance before the revocation: %v", m)
		}
	}
	if r := one.post("/revoke", url.Values{"token": {tok}}, string(c.ID), secret); r.code != http.StatusOK {
		t.Fatalf("revoke: %d %s", r.code, r.body)
	}
	for _, e := range []*oidcEnv{other, one} {
		if m := e.post("/introspect", url.Values{"token": {tok}}, string(c.ID), secret).json(t); m["active"] != false || len(m) != 1 {
			t.Fatalf("after the revocation on the first instance: %v", m)
		}
	}
	// And the other way round: revoked on the other instance, inactive on the first.
	tok2 := one.clientCredentials(c, secret).json(t)["access_token"].(string)
	if m := one.post("/introspect", url.Values{"token": {tok2}}, string(c.ID), secret).json(t); m["active"] != true {
		t.Fatalf("second token: %v", m)
	}
	if r := other.post("/revoke", url.Values{"token": {tok2}}, string(c.ID), secret); r.code != http.StatusOK {
		t.Fatalf("revoke on the other instance: %d %s", r.code, r.body)
	}
	if m := one.post("/introspect", url.Values{"token": {tok2}}, string(c.ID), secret).json(t); m["active"] != false {
		t.Fatalf("revoked on the other instance, on the first: %v", m)
	}
}

// withdrawableKeys hides every published key once withdrawn (a key taken out of the ring).
type withdrawableKeys struct {
	signingKeys
	withdrawn atomic.Bool
}

func (w *withdrawableKeys) Published() []secrets.SigningKey {
	if w.withdrawn.Load() {
		return nil
	}
	return w.signingKeys.Published()
}

// A cached token is not served once the key that signed it is no longer published: it is
// inactive at introspection and refused at userinfo and revocation, as a fresh verification
// would answer.
func TestVerifyAccess_KeyWithdrawn_CachedTokenNoLongerAccepted(t *testing.T) {
	var keys *withdrawableKeys
	e := newOIDC(t, func(_ *ProviderConfig, d *ProviderDeps) {
		keys = &withdrawableKeys{signingKeys: d.Keys}
		d.Keys = keys
	})
	a := newTenant()
	c, secret := e.ccClient(a, "tenant.read")
	tok := e.clientCredentials(c, secret).json(t)["access_token"].(string)
	if m := e.post("/introspect", url.Values{"token": {tok}}, string(c.ID), secret).json(t); m["active"] != true {
		t.Fatalf("before: %v", m)
	}
	keys.withdrawn.Store(true)
	if m := e.post("/introspect", url.Values{"token": {tok}}, string(c.ID), secret).json(t); m["active"] != false {
		t.Fatalf("after the key's withdrawal: %v", m)
	}
	// As op's issuer interceptor sets it for every request.
	if _, ok := e.p.verifyAccess(op.ContextWithIssuer(t.Context(), e.issuer), tok); ok {
		t.Fatal("verifyAccess accepted a token whose key is withdrawn")
	}
	keys.withdrawn.Store(false)
	if _, ok := e.p.verifyAccess(op.ContextWithIssuer(t.Context(), e.issuer), tok); !ok {
		t.Fatal("verifyAccess refused the token once its key is published again")
	}
}

// tokenShards is auth.TokenCache's shard count for a bound of 16 or 32 entries (a power of two, at
// most 32, at most the bound): key[0] & 15 picks the shard with 16 of them.
const tokenShards = 16

// The cache never serves an entry past its deadline (the token's exp), and holds at most its
// bound, dropping expired entries first.
func TestVerifiedTokens_ExpiredNotServed_Bounded(t *testing.T) {
	c := newVerifiedTokens(tokenShards * 2)
	always := func(string) bool { return true }
	now := time.Now().UnixNano()
	k := sha256.Sum256([]byte("a"))
	c.put(&k, &accessToken{kid: "k", deadline: now + int64(time.Minute)}, now)
	if _, ok := c.get(&k, now, always); !ok {
		t.Fatal("a live entry was not served")
	}
	if _, ok := c.get(&k, now+int64(time.Minute), always); ok {
		t.Fatal("an entry was served at its deadline")
	}
	if c.len() != 0 {
		t.Fatalf("the expired entry was kept: %d", c.len())
	}
	c.put(&k, &accessToken{kid: "k", deadline: now + int64(time.Minute)}, now)
	if _, ok := c.get(&k, now, func(string) bool { return false }); ok {
		t.Fatal("an entry was served whose key is not published")
	}
	for i := range 1000 {
		k := sha256.Sum256([]byte{byte(i), byte(i >> 8)})
		c.put(&k, &accessToken{deadline: now + int64(time.Minute)}, now)
	}
	if n := c.len(); n > tokenShards*2 {
		t.Fatalf("%d entries, bound %d", n, tokenShards*2)
	}
	// A full shard drops its expired entries before a live one.
	c = newVerifiedTokens(tokenShards)
	var live, dead [sha256.Size]byte
	live[0], dead[0] = 3, 3+tokenShards // the same shard
	c.put(&dead, &accessToken{deadline: now + 1}, now)
	c.put(&live, &accessToken{deadline: now + int64(time.Minute)}, now+2)
	if _, ok := c.get(&live, now+2, always); !ok || c.len() != 1 {
		t.Fatalf("live entry served %v, %d entries", ok, c.len())
	}
}

// BenchmarkIntrospect_RepeatToken is one introspection of a token seen before, through the
// edge as the binary serves it (no network): client authentication from the local copy, the
// verified-token cache, the revocation answer from Redis, the rendered answer. It reports the
// PostgreSQL round trips per introspection (0 expected).
func BenchmarkIntrospect_RepeatToken(b *testing.B) {
	var rt *testenv.RoundTrips
	e := newOIDC(b, countedStore(b, &rt))
	c, secret := e.ccClient(newTenant(), "tenant.read")
	tok := e.clientCredentials(c, secret).json(b)["access_token"].(string)
	body := url.Values{"token": {tok}}.Encode()
	h := e.srv.Config.Handler
	serve := func() *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, ConnectPath+"/introspect", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(string(c.ID), secret)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}
	for range 3 { // warm: the client's local copy, the token, the revocation answer
		if w := serve(); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"active":true`) {
			b.Fatalf("%d %s", w.Code, w.Body)
		}
	}
	before := rt.Count()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		serve()
	}
	b.StopTimer()
	b.ReportMetric(float64(rt.Count()-before)/float64(b.N), "sql-roundtrips/op")
}

// BenchmarkToken_ClientCredentials is one client_credentials grant through the edge as the binary
// serves it (no network): client authentication from the local copy, an ES256 token signed in
// process, its TokenIssued event written to the outbox in a transaction of its own. It reports
// the PostgreSQL round trips per token (3: BEGIN with the scope, the outbox insert, COMMIT).
func BenchmarkToken_ClientCredentials(b *testing.B) {
	var rt *testenv.RoundTrips
	e := newOIDC(b, countedStore(b, &rt))
	c, secret := e.ccClient(newTenant(), "tenant.read")
	body := url.Values{"grant_type": {"client_credentials"}, "scope": {"tenant.read"}}.Encode()
	h := e.srv.Config.Handler
	serve := func() *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, ConnectPath+"/token", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(string(c.ID), secret)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}
	for range 3 {
		if w := serve(); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"access_token"`) {
			b.Fatalf("%d %s", w.Code, w.Body)
		}
	}
	before := rt.Count()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		serve()
	}
	b.StopTimer()
	b.ReportMetric(float64(rt.Count()-before)/float64(b.N), "sql-roundtrips/op")
}

// An access token's revocation whose cache invalidation cannot reach Redis is recorded all the
// same (the store says revoked) but not confirmed: 503 temporarily_unavailable with Retry-After
// (RFC 7009 §2.2.1), since an instance still reading Redis could answer from the old "not
// revoked" until the invalidation lands. The instance itself reads the store meanwhile: inactive.
func TestRevoke_AccessToken_RedisUnreachable_503ButRecorded(t *testing.T) {
	opt, err := cache.ClientOptions("redis://127.0.0.1:1") // nothing listens there
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	dead := cache.New(rdb, cache.Config{}, slog.New(slog.DiscardHandler))
	t.Cleanup(func() { dead.Close(); _ = rdb.Close() })
	e := newOIDC(t, func(_ *ProviderConfig, d *ProviderDeps) {
		d.Store = NewStore(testDB.OpenRuntime(t, sqlstore.PoolConfig{}), dead, StoreConfig{})
	})
	a := newTenant()
	c, secret := e.ccClient(a, "tenant.read")
	tok := e.clientCredentials(c, secret).json(t)["access_token"].(string)
	if m := e.post("/introspect", url.Values{"token": {tok}}, string(c.ID), secret).json(t); m["active"] != true {
		t.Fatalf("before: %v", m)
	}
	r := e.post("/revoke", url.Values{"token": {tok}}, string(c.ID), secret)
	if r.code != http.StatusServiceUnavailable || r.hdr.Get("Retry-After") == "" || r.json(t)["error"] != "temporarily_unavailable" {
		t.Fatalf("revoke with Redis unreachable: %d %v %s", r.code, r.hdr, r.body)
	}
	if m := e.post("/introspect", url.Values{"token": {tok}}, string(c.ID), secret).json(t); m["active"] != false {
		t.Fatalf("after the unconfirmed revocation, on the same instance: %v", m)
	}
	// Recorded: a store without a cache reads the row.
	jti, _ := e.claims(tok)["jti"].(string)
	plain := NewStore(testDB.OpenRuntime(t, sqlstore.PoolConfig{}), nil, StoreConfig{})
	if got, err := plain.AccessTokenRevoked(t.Context(), a, jti, time.Now().Add(time.Minute)); err != nil || !got {
		t.Fatalf("the revocation's row: %v %v", got, err)
	}
}
