package idempotency_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/labstack/echo/v4"

	"spine/shared/events"
	"spine/shared/httpx"
	"spine/shared/idempotency"
	"spine/shared/outbox"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
	"spine/shared/testenv/apitest"
)

// A route that shows a secret once (identity's invitation token) records its replay without it:
// the repeat answers the same status and headers with the body ReplayBody set, and the stored
// record never holds the secret.
func TestReplayBody_KeepsTheSecretOutOfTheRecord(t *testing.T) {
	db := testDB.OpenRuntime(t, sqlstore.PoolConfig{})
	tokens := apitest.NewTokens(t)
	tenant := tenancy.NewTenantID()
	tok := tokens.Mint(t, tenant.String(), false)
	e := echo.New()
	_, api := httpx.NewAPI(e, httpx.APIConfig{Verifier: tokens.Verifier(t), MaxBodyBytes: 64 << 10})
	api.POST("/secrets", func(c echo.Context) error {
		ctx := c.Request().Context()
		ev, err := events.New("tenants", "SecretIssued", tenant.String(), tenant.String(), map[string]string{}, events.Meta{})
		if err != nil {
			return err
		}
		if err := db.InTx(ctx, sqlstore.TenantScope(tenant), func(tx *sqlstore.Tx) error {
			if err := idempotency.Claim(ctx, tx); err != nil {
				return err
			}
			return outbox.Emit(ctx, tx, ev)
		}); err != nil {
			return err
		}
		idempotency.ReplayBody(ctx, []byte(`{"id":"`+ev.ID+`"}`))
		c.Response().Header().Set("Location", "/api/secrets/"+ev.ID)
		return c.JSON(http.StatusCreated, map[string]string{"id": ev.ID, "secret": "s3cr3t-" + ev.ID})
	}, idempotency.Middleware(db))

	first := apitest.Do(t, e, "POST", "/api/secrets", tok, `{}`, "Idempotency-Key", "k-secret")
	var m map[string]string
	if err := json.Unmarshal(first.Body, &m); err != nil || first.Code != http.StatusCreated || m["secret"] == "" {
		t.Fatalf("first: %d %s", first.Code, first.Body)
	}
	again := apitest.Do(t, e, "POST", "/api/secrets", tok, `{}`, "Idempotency-Key", "k-secret")
	if again.Code != http.StatusCreated || again.Header.Get("Idempotent-Replayed") != "true" ||
		string(again.Body) != `{"id":"`+m["id"]+`"}` || again.Header.Get("Location") != first.Header.Get("Location") {
		t.Fatalf("replay: %d %s %v", again.Code, again.Body, again.Header)
	}
	owner := testDB.OpenOwner(t, sqlstore.PoolConfig{MaxOpen: 1})
	var n int
	if err := owner.QueryRow(`SELECT count(*) FROM idempotency_keys WHERE position($1::bytea IN response_body) > 0`,
		[]byte(m["secret"])).Scan(&n); err != nil || n != 0 {
		t.Fatalf("the secret is in %d idempotency records (%v)", n, err)
	}
}
