package inbox

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/uuid"

	"spine/shared/outbox"
	"spine/shared/sqlstore"
	"spine/shared/testenv"
	"spine/shared/testenv/tsqlcheck"
)

var inboxDB *testenv.Database

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, "audit", &inboxDB)) }

func newID() string { return uuid.NewString() }

// A group claims its events with one statement: each event is first exactly once, at its first
// listing, and a later group finds the ones already claimed, whichever of the group's tenants they
// belong to.
func TestClaimAll_EachEventFirstOnceInItemsOrder(t *testing.T) {
	db := inboxDB.OpenRuntime(t, sqlstore.PoolConfig{})
	ctx := context.Background()
	t1, t2 := newID(), newID()
	a, b, c, d := newID(), newID(), newID(), newID()
	set := sqlstore.TenantSetScope([]string{t1, t2})
	claim := func(items []Item) []bool {
		t.Helper()
		var got []bool
		if err := db.InTx(ctx, set, func(tx *sqlstore.Tx) error {
			var err error
			got, err = ClaimAll(ctx, tx, "audit", items)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return got
	}
	got := claim([]Item{{t1, a, "X"}, {t2, b, "Y"}, {t1, a, "X"}, {t1, c, "Z"}})
	if want := []bool{true, true, false, true}; !slices.Equal(got, want) {
		t.Fatalf("first group = %v, want %v", got, want)
	}
	got = claim([]Item{{t1, c, "Z"}, {t2, d, "Y"}, {t2, b, "Y"}})
	if want := []bool{false, true, false}; !slices.Equal(got, want) {
		t.Fatalf("second group = %v, want %v", got, want)
	}
	// The single-event Claim sees the group's claims, in the tenant's own scope.
	var first bool
	if err := db.InTx(ctx, sqlstore.Scope{Tenant: t2}, func(tx *sqlstore.Tx) error {
		var err error
		first, err = Claim(ctx, tx, "audit", d, "Y")
		return err
	}); err != nil || first {
		t.Fatalf("Claim after ClaimAll = %v, %v; want false, nil", first, err)
	}
}

// A set scope admits rows of exactly its tenants: a claim for a tenant outside the set is refused
// by row-level security (and nothing of the group is kept), and reads see only the set's rows.
func TestSetScope_RowLevelSecurityAdmitsExactlyTheSet(t *testing.T) {
	db := inboxDB.OpenRuntime(t, sqlstore.PoolConfig{})
	ctx := context.Background()
	t1, t2, outsider := newID(), newID(), newID()
	set := sqlstore.TenantSetScope([]string{t1, t2})

	err := db.InTx(ctx, set, func(tx *sqlstore.Tx) error {
		_, err := ClaimAll(ctx, tx, "audit", []Item{{t1, newID(), "X"}, {outsider, newID(), "X"}})
		return err
	})
	if !errors.Is(err, sqlstore.ErrPermission) {
		t.Fatalf("claim outside the set: err = %v, want a row-level-security refusal", err)
	}
	for _, tenant := range []string{t1, t2, outsider} {
		if err := db.InTx(ctx, sqlstore.Scope{Tenant: tenant}, func(tx *sqlstore.Tx) error {
			_, err := Claim(ctx, tx, "audit", newID(), "X")
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	count := func(sc sqlstore.Scope) (n int) {
		t.Helper()
		if err := db.InReadTx(ctx, sc, func(tx *sqlstore.Tx) error {
			return tx.QueryRowContext(ctx, `SELECT count(*) FROM inbox WHERE tenant_id = ANY($1::uuid[])`,
				"{"+t1+","+t2+","+outsider+"}").Scan(&n)
		}); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(set); n != 2 {
		t.Errorf("the set scope sees %d rows of the three tenants, want 2 (its own tenants' only)", n)
	}
	if n := count(sqlstore.Scope{Tenant: t1}); n != 1 {
		t.Errorf("one tenant's scope sees %d rows, want 1", n)
	}
	if n := count(sqlstore.Scope{}); n != 0 {
		t.Errorf("the zero scope sees %d rows, want 0", n)
	}
	// A set member that is not a tenant id never reaches the database.
	if err := db.InTx(ctx, sqlstore.TenantSetScope([]string{t1, "x'); DROP TABLE inbox; --"}), func(*sqlstore.Tx) error { return nil }); err == nil {
		t.Error("a set scope holding a non-UUID was accepted")
	}
}

// The SQL Server twin of each statement passes the checks that run without a server.
func TestClaimStatements_SQLServerChecked(t *testing.T) {
	// claimAll's SELECT feeds its INSERT (its ids reach Go only through OUTPUT, as canonical text),
	// so the raw-uniqueidentifier check of a select list does not apply to it.
	tsqlcheck.CheckStatement(t.Errorf, "claimAll", claimAllSQL[sqlstore.SQLServer])
	tsqlcheck.CheckStatement(t.Errorf, "seen", seenSQL[sqlstore.SQLServer])
}

// An event type the inbox cannot store as it is (longer than its column, NUL, invalid UTF-8) is
// stored clipped and replaced, and the event claimed exactly once: the type only labels the claim.
func TestClaimAll_UnstorableTypeIsClippedNotRefused(t *testing.T) {
	db := inboxDB.OpenRuntime(t, sqlstore.PoolConfig{})
	ctx := context.Background()
	tenant := newID()
	long := strings.Repeat("é", 200) + "\x00\xff"
	id1, id2 := newID(), newID()
	for range 2 {
		var got []bool
		if err := db.InTx(ctx, sqlstore.Scope{Tenant: tenant}, func(tx *sqlstore.Tx) error {
			var err error
			got, err = ClaimAll(ctx, tx, "audit", []Item{{tenant, id1, long}})
			if err != nil {
				return err
			}
			_, err = Claim(ctx, tx, "audit", id2, "T\x00"+long)
			return err
		}); err != nil {
			t.Fatalf("claim with an unstorable type: %v", err)
		}
		_ = got
	}
	var types []string
	if err := db.InReadTx(ctx, sqlstore.Scope{Tenant: tenant}, func(tx *sqlstore.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT event_type FROM inbox ORDER BY event_type`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				return err
			}
			types = append(types, s)
		}
		return rows.Err()
	}); err != nil {
		t.Fatal(err)
	}
	if len(types) != 2 || utf8.RuneCountInString(types[0]) != 128 || strings.ContainsRune(types[1], 0) {
		t.Fatalf("stored types %q, want two clipped to 128 characters without NUL", types)
	}
}

// In platform scope, Claim records a platform-level event under PlatformTenant (the outbox's nil
// UUID): a second claim finds it, and no tenant's scope sees the row.
func TestClaim_PlatformScopeClaimsUnderTheNilUUID(t *testing.T) {
	if PlatformTenant != outbox.PlatformTenant {
		t.Fatalf("inbox.PlatformTenant %q, outbox.PlatformTenant %q: a platform event must be claimed under its outbox tenant",
			PlatformTenant, outbox.PlatformTenant)
	}
	db := inboxDB.OpenRuntime(t, sqlstore.PoolConfig{})
	ctx := context.Background()
	ev := newID()
	claim := func() bool {
		t.Helper()
		var first bool
		if err := db.InTx(ctx, sqlstore.PlatformScope(), func(tx *sqlstore.Tx) error {
			var err error
			first, err = Claim(ctx, tx, "platform-claims", ev, "ClientCreated")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return first
	}
	if !claim() || claim() {
		t.Fatal("a platform event's claims: want first, then not first")
	}
	count := func(sc sqlstore.Scope) (n int) {
		t.Helper()
		if err := db.InReadTx(ctx, sc, func(tx *sqlstore.Tx) error {
			return tx.QueryRowContext(ctx, `SELECT count(*) FROM inbox WHERE consumer = 'platform-claims' AND tenant_id = $1 AND event_id = $2`,
				PlatformTenant, ev).Scan(&n)
		}); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(sqlstore.PlatformScope()); n != 1 {
		t.Fatalf("platform scope sees %d claims under the nil UUID, want 1", n)
	}
	if n := count(sqlstore.Scope{Tenant: newID()}); n != 0 {
		t.Fatalf("a tenant's scope sees the platform claim")
	}
	// Outside any scope a claim has no tenant to be recorded under.
	if err := db.InTx(ctx, sqlstore.Scope{}, func(tx *sqlstore.Tx) error {
		_, err := Claim(ctx, tx, "platform-claims", newID(), "X")
		return err
	}); err == nil {
		t.Fatal("a claim in the zero scope was accepted")
	}
}

// Seen reads without claiming: false before the claim (and the claim then is still first), true
// after it, in the claiming tenant's scope only and for the claiming consumer only; in platform
// scope it looks under PlatformTenant; outside any scope it is refused.
func TestSeen_TrueOnlyAfterTheClaim_NeverClaims(t *testing.T) {
	db := inboxDB.OpenRuntime(t, sqlstore.PoolConfig{})
	ctx := context.Background()
	tenant, ev := newID(), newID()
	seen := func(sc sqlstore.Scope, consumer, id string) bool {
		t.Helper()
		var got bool
		if err := db.InReadTx(ctx, sc, func(tx *sqlstore.Tx) error {
			var err error
			got, err = Seen(ctx, tx, consumer, id)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return got
	}
	claim := func(sc sqlstore.Scope, id string) bool {
		t.Helper()
		var first bool
		if err := db.InTx(ctx, sc, func(tx *sqlstore.Tx) error {
			var err error
			first, err = Claim(ctx, tx, "seen-test", id, "X")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return first
	}
	own := sqlstore.Scope{Tenant: tenant}
	for range 2 { // asked twice: the first ask claimed nothing
		if seen(own, "seen-test", ev) {
			t.Fatal("Seen before any claim = true")
		}
	}
	if !claim(own, ev) {
		t.Fatal("the claim after Seen was not first: Seen claimed")
	}
	if !seen(own, "seen-test", strings.ToUpper(ev)) {
		t.Error("Seen after the claim = false")
	}
	if seen(own, "other-consumer", ev) {
		t.Error("another consumer sees the claim")
	}
	if seen(sqlstore.Scope{Tenant: newID()}, "seen-test", ev) {
		t.Error("another tenant's scope sees the claim")
	}
	pev := newID()
	if seen(sqlstore.PlatformScope(), "seen-test", pev) || !claim(sqlstore.PlatformScope(), pev) || !seen(sqlstore.PlatformScope(), "seen-test", pev) {
		t.Error("platform scope: want unseen, first claim, then seen")
	}
	if err := db.InReadTx(ctx, sqlstore.Scope{}, func(tx *sqlstore.Tx) error {
		_, err := Seen(ctx, tx, "seen-test", ev)
		return err
	}); err == nil {
		t.Error("Seen in the zero scope was accepted")
	}
}
