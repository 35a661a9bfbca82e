package authz

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"spine/shared/contracts"
	"spine/shared/events"
	"spine/shared/ids"
	"spine/shared/retention"
	"spine/shared/retention/retentiontest"
	"spine/shared/sqlstore"
	"spine/shared/testenv"
)

// recordingStore records the size of every pruning range deleted.
type recordingStore struct {
	Store
	mu    sync.Mutex
	sizes []int
}

func (r *recordingStore) PruneRange(ctx context.Context, table PruneTable, from, to PruneKey, cutoff time.Time, ev events.Event) (int, error) {
	n, err := r.Store.PruneRange(ctx, table, from, to, cutoff, ev)
	r.mu.Lock()
	r.sizes = append(r.sizes, n)
	r.mu.Unlock()
	return n, err
}

// pruner is svc's AuthzTokenPrune sweep registered under a test-unique name (the ledger on the
// stack's Azurite is shared by every test package) on an engine over the real ledger.
type pruner struct {
	t      *testing.T
	svc    *Service
	ledger *retention.Ledger
	name   string
	cfg    retention.Config
}

func newPruner(t *testing.T, svc *Service, cfg retention.Config) *pruner {
	t.Helper()
	l := retentiontest.Ledger(t)
	cfg.Ledger = l
	return &pruner{t: t, svc: svc, ledger: l, name: "AuthzTokenPruneT" + strings.ReplaceAll(ids.New()[:13], "-", ""), cfg: cfg}
}

// engine is a fresh engine (a restarted process) with the sweep; fault, when set, is the
// crash-injection hook.
func (p *pruner) engine(fault func(string)) *retention.Engine {
	p.t.Helper()
	cfg := p.cfg
	cfg.Fault = fault
	e, err := retention.New(cfg)
	if err != nil {
		p.t.Fatal(err)
	}
	if err := e.Register(p.svc.PruneSweepOf(p.name)); err != nil {
		p.t.Fatal(err)
	}
	return e
}

// run is one run of the sweep on a fresh engine.
func (p *pruner) run() retention.Run {
	p.t.Helper()
	r, err := p.engine(nil).Run(context.Background(), p.name)
	if err != nil {
		p.t.Fatalf("%s: %v", r, err)
	}
	return r
}

// evidence is the sweep's evidence rows (platform partition) and how many RetentionApplied events
// of the sweep db's outbox holds, with their ids.
func (p *pruner) evidence(db *sqlstore.DB) ([]retention.Evidence, []string) {
	p.t.Helper()
	ctx := context.Background()
	all, err := p.ledger.Evidence(ctx, "", time.Time{}, time.Time{}, 0)
	if err != nil {
		p.t.Fatal(err)
	}
	var evs []retention.Evidence
	for _, ev := range all {
		if ev.Sweep == p.name {
			evs = append(evs, ev)
		}
	}
	var events []string
	if err := db.InReadTx(ctx, sqlstore.PlatformScope(), func(tx *sqlstore.Tx) (err error) {
		events, err = testenv.QueryStrings(ctx, tx, `SELECT event_id::text FROM outbox
			WHERE event_type = $1 AND envelope -> 'data' ->> 'sweep' = $2 ORDER BY event_id`, contracts.RetentionApplied, p.name)
		return err
	}); err != nil {
		p.t.Fatal(err)
	}
	return evs, events
}

// checkEvidence checks one platform evidence row and one outbox event (its id) per range, and
// returns the rows' total.
func (p *pruner) checkEvidence(db *sqlstore.DB) int {
	p.t.Helper()
	evs, events := p.evidence(db)
	total := 0
	var ids []string
	for _, ev := range evs {
		total += ev.Affected
		ids = append(ids, ev.ID)
		if ev.Tenant != "" || ev.Action != retention.ActionDelete || ev.Artifact != nil || !slices.Contains(PruneTables, PruneTable(ev.Unit)) {
			p.t.Errorf("evidence %+v", ev)
		}
	}
	slices.Sort(ids)
	if !slices.Equal(ids, events) {
		p.t.Errorf("%d evidence rows, %d events: want one event per row, with its id", len(ids), len(events))
	}
	return total
}

// The markers of the seeded rows: expired ones must go, live ones (consumed, revoked and redeemed
// ones among them) must stay.
const (
	expiredSeed   = "expired-seed"
	liveSeed      = "live-seed"
	expiredClient = "00000000-0000-0000-0000-00000000e001"
	liveClient    = "00000000-0000-0000-0000-00000000e002"
)

// seedSQL inserts, as the owner in platform scope, 100,000 expired rows (60,000 refresh tokens of
// which a third consumed and a third revoked, 20,000 codes of which half redeemed, 20,000 revoked
// access tokens) over 20 tenants, and 2,500 live ones that look alike. $1 is the tenants as a
// uuid[] literal.
var seedSQL = []string{
	`INSERT INTO refresh_tokens (tenant_id, token_id, token_hash, family_id, client_id, subject, scopes, audience, auth_time,
		amr, created_at, expires_at, consumed_at, revoked_at)
	 SELECT ($1::uuid[])[1 + i % 20], gen_random_uuid(), sha256(('e' || i)::bytea), gen_random_uuid(), '` + expiredClient + `',
		'` + expiredSeed + `', '[]', '[]', now() - interval '3 hours', '[]', now() - interval '3 hours',
		now() - interval '1 hour' - (i % 5000) * interval '1 second',
		CASE WHEN i % 3 = 1 THEN now() - interval '2 hours' END, CASE WHEN i % 3 = 2 THEN now() - interval '2 hours' END
	 FROM generate_series(1, 60000) AS i`,
	`INSERT INTO auth_codes (tenant_id, code_hash, auth_request_id, client_id, subject, request, family_id, created_at,
		expires_at, redeemed_at)
	 SELECT ($1::uuid[])[1 + i % 20], sha256(('c' || i)::bytea), '` + expiredSeed + `', '` + expiredClient + `', 'u', '{}',
		gen_random_uuid(), now() - interval '2 hours', now() - interval '1 hour' - (i % 600) * interval '1 second',
		CASE WHEN i % 2 = 0 THEN now() - interval '90 minutes' END
	 FROM generate_series(1, 20000) AS i`,
	`INSERT INTO revoked_tokens (tenant_id, jti, client_id, expires_at)
	 SELECT ($1::uuid[])[1 + i % 20], gen_random_uuid(), '` + expiredClient + `', now() - (i % 900) * interval '1 second' - interval '1 second'
	 FROM generate_series(1, 20000) AS i`,
	`INSERT INTO refresh_tokens (tenant_id, token_id, token_hash, family_id, client_id, subject, scopes, audience, auth_time,
		amr, created_at, expires_at, consumed_at, revoked_at)
	 SELECT ($1::uuid[])[1 + i % 20], gen_random_uuid(), sha256(('l' || i)::bytea), gen_random_uuid(), '` + liveClient + `',
		'` + liveSeed + `', '[]', '[]', now(), '[]', now(), now() + interval '1 hour',
		CASE WHEN i % 3 = 1 THEN now() END, CASE WHEN i % 3 = 2 THEN now() END
	 FROM generate_series(1, 1500) AS i`,
	`INSERT INTO auth_codes (tenant_id, code_hash, auth_request_id, client_id, subject, request, family_id, created_at,
		expires_at, redeemed_at)
	 SELECT ($1::uuid[])[1 + i % 20], sha256(('k' || i)::bytea), '` + liveSeed + `', '` + liveClient + `', 'u', '{}',
		gen_random_uuid(), now(), now() + interval '10 minutes', CASE WHEN i % 2 = 0 THEN now() END
	 FROM generate_series(1, 500) AS i`,
	`INSERT INTO revoked_tokens (tenant_id, jti, client_id, expires_at)
	 SELECT ($1::uuid[])[1 + i % 20], gen_random_uuid(), '` + liveClient + `', now() + interval '10 minutes'
	 FROM generate_series(1, 500) AS i`,
}

// countSQL counts the seeded rows still there: expired and live, per table.
const countSQL = `SELECT
	(SELECT count(*) FROM refresh_tokens WHERE client_id = '` + expiredClient + `'),
	(SELECT count(*) FROM auth_codes WHERE client_id = '` + expiredClient + `'),
	(SELECT count(*) FROM revoked_tokens WHERE client_id = '` + expiredClient + `'),
	(SELECT count(*) FROM refresh_tokens WHERE client_id = '` + liveClient + `'),
	(SELECT count(*) FROM auth_codes WHERE client_id = '` + liveClient + `'),
	(SELECT count(*) FROM revoked_tokens WHERE client_id = '` + liveClient + `')`

func seedCounts(t *testing.T, owner *sqlstore.DB) [6]int {
	t.Helper()
	var n [6]int
	if err := owner.InReadTx(context.Background(), sqlstore.PlatformScope(), func(tx *sqlstore.Tx) error {
		return tx.QueryRowContext(context.Background(), countSQL).Scan(&n[0], &n[1], &n[2], &n[3], &n[4], &n[5])
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// 100,000 expired rows are pruned in bounded batches while refresh tokens are issued and rotated
// alongside: every expired row goes, no live row does (consumed, revoked and redeemed ones that
// have not expired stay), no batch exceeds its bound, and issuance never fails. Time and lock
// waits (pg_stat_activity sampled every 10 ms) are reported, never asserted.
func TestPrune_100kExpiredRowsInBoundedBatchesWhileTokensAreIssued(t *testing.T) {
	ctx := context.Background()
	owner := testDB.OpenOwner(t, sqlstore.PoolConfig{MaxOpen: 2})
	// Rows other tests left behind, pruned first (by a sweep of its own) so the counts below are
	// this test's.
	rt := testDB.OpenRuntime(t, sqlstore.PoolConfig{})
	base := NewStore(rt, nil, StoreConfig{})
	pre, _ := NewService(base, testenv.NewDirectory(), ServiceConfig{}, slog.New(slog.DiscardHandler))
	newPruner(t, pre, retention.Config{MaxRows: 1_000_000}).run()

	tenants := make([]string, 20)
	for i := range tenants {
		tenants[i] = newTenant()
	}
	seedStart := time.Now()
	if err := owner.InTx(ctx, sqlstore.PlatformScope(), func(tx *sqlstore.Tx) error {
		for _, q := range seedSQL {
			if _, err := tx.ExecContext(ctx, q, "{"+strings.Join(tenants, ",")+"}"); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	before := seedCounts(t, owner)
	if before != [6]int{60000, 20000, 20000, 1500, 500, 500} {
		t.Fatalf("seeded %v", before)
	}
	t.Logf("seeded 100,000 expired and 2,500 live rows in %s", time.Since(seedStart).Round(time.Millisecond))

	// Lock waits: every 10 ms, the sessions of this database waiting for a lock.
	admin := openAdmin(t)
	var samples, waitingSamples, maxWaiting atomic.Int64
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopSampling:
				return
			case <-tick.C:
			}
			var n int64
			if err := admin.QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_activity
				WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&n); err != nil {
				continue
			}
			samples.Add(1)
			if n > 0 {
				waitingSamples.Add(1)
			}
			if n > maxWaiting.Load() {
				maxWaiting.Store(n)
			}
		}
	}()

	// Issuance alongside: each worker creates a refresh token and rotates it, over and over.
	issuer := NewStore(rt, nil, StoreConfig{})
	type chain struct {
		tenant string
		value  string
	}
	var issued atomic.Int64
	var issueErr atomic.Value
	stopIssuing := make(chan struct{})
	var workers sync.WaitGroup
	latest := make([]chain, 4)
	for w := range latest {
		c := clientFixture(tenants[w], ClientPublic, sqlstore.Now())
		if _, _, err := issuer.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
		workers.Add(1)
		go func() {
			defer workers.Done()
			for {
				select {
				case <-stopIssuing:
					return
				default:
				}
				v, err := issuer.CreateRefreshToken(ctx, refreshFixture(c, "", sqlstore.Now()))
				if err == nil {
					v, err = issuer.RotateRefreshToken(ctx, v, RefreshToken{ClientID: c.ID})
				}
				if err != nil {
					issueErr.Store(err)
					return
				}
				latest[w] = chain{tenant: c.Tenant, value: v}
				issued.Add(2)
			}
		}()
	}

	rec := &recordingStore{Store: base}
	svc, err := NewService(rec, testenv.NewDirectory(), ServiceConfig{Prune: PruneConfig{BatchSize: 1000}}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	p := newPruner(t, svc, retention.Config{MaxRows: 1_000_000, MaxDuration: 10 * time.Minute})
	start := time.Now()
	report, err := p.engine(nil).Run(ctx, p.name)
	elapsed := time.Since(start)
	close(stopIssuing)
	workers.Wait()
	close(stopSampling)
	<-sampled
	if err != nil {
		t.Fatal(err)
	}
	if v := issueErr.Load(); v != nil {
		t.Fatalf("issuance failed during the pruning: %v", v.(error))
	}

	after := seedCounts(t, owner)
	if after != [6]int{0, 0, 0, 1500, 500, 500} {
		t.Errorf("after the pruning: expired left %v, live %v; want none expired and every live row", after[:3], after[3:])
	}
	if report.Status != retention.StatusCompleted || report.Affected != 100000 {
		t.Errorf("run %s, want 100,000 rows", report)
	}
	if n := p.checkEvidence(rt); n != 100000 {
		t.Errorf("the ledger's evidence counts %d rows, want 100,000", n)
	}
	largest := 0
	for _, n := range rec.sizes {
		largest = max(largest, n)
	}
	if largest > 1000 || len(rec.sizes) < 100 {
		t.Errorf("%d batches, the largest %d rows: want at least 100 batches of at most 1,000", len(rec.sizes), largest)
	}
	for _, c := range latest {
		if c.value == "" {
			continue
		}
		if _, err := issuer.RefreshTokenByValue(ctx, c.value); err != nil && !errors.Is(err, ErrRefreshTokenReused) {
			t.Errorf("a token issued during the pruning: %v", err)
		}
	}
	t.Logf("%s in %s; %d tokens issued meanwhile (%.0f/s)", report, elapsed.Round(time.Millisecond), issued.Load(), float64(issued.Load())/elapsed.Seconds())
	t.Logf("lock waits: %d of %d samples (every 10 ms) saw a session of the database waiting for a lock, at most %d at once",
		waitingSamples.Load(), samples.Load(), maxWaiting.Load())
}

// expiredRows counts, in platform scope, the rows of the pruned tables due at now (each table's
// cutoff).
func expiredRows(t *testing.T, db *sqlstore.DB, now time.Time) int {
	t.Helper()
	n := 0
	if err := db.InReadTx(context.Background(), sqlstore.PlatformScope(), func(tx *sqlstore.Tx) error {
		return tx.QueryRowContext(context.Background(), `SELECT
			(SELECT count(*) FROM auth_codes WHERE expires_at < $1) + (SELECT count(*) FROM refresh_tokens WHERE expires_at < $1)
			+ (SELECT count(*) FROM revoked_tokens WHERE expires_at < $2)`,
			tableCutoff(PruneCodes, now), tableCutoff(PruneRevokedTokens, now)).Scan(&n)
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// A crash at each step of a batch (intent written, exported, applied, evidence written) is
// finished by the next run of a fresh engine: every expired row is gone, none twice, the ledger's
// evidence (platform partition) counts exactly the rows deleted, one event per range.
func TestPrune_CrashAtEachFaultPoint_RerunDeletesEachRangeOnce(t *testing.T) {
	for _, point := range []string{retention.FaultAfterIntent, retention.FaultAfterExport, retention.FaultAfterApply, retention.FaultAfterEvidence} {
		t.Run(point, func(t *testing.T) {
			h := newHarness(t)
			newPruner(t, h.svc, retention.Config{Now: h.clock.now, MaxRows: 1_000_000}).run() // earlier tests' rows
			f := h.tenant()
			for range 5 {
				h.issue(f, ids.New())
			}
			h.clock.move(2 * time.Hour)
			due := expiredRows(t, h.rt, h.clock.now())
			if due < 5 {
				t.Fatalf("%d rows due, want at least the 5 refresh tokens", due)
			}
			svc, err := NewService(h.store, h.dir, ServiceConfig{Now: h.clock.now, Prune: PruneConfig{BatchSize: 2}}, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			p := newPruner(t, svc, retention.Config{Now: h.clock.now, MaxRows: 1_000_000})
			crashed := false
			func() {
				defer func() { crashed = recover() != nil }()
				_, _ = p.engine(func(at string) {
					if at == point {
						panic("crash at " + at)
					}
				}).Run(context.Background(), p.name)
			}()
			if !crashed {
				t.Fatalf("the run did not reach %s", point)
			}
			if r := p.run(); r.Resumed != 1 {
				t.Errorf("rerun %s: want the crashed range resumed", r)
			}
			if left := expiredRows(t, h.rt, h.clock.now()); left != 0 {
				t.Errorf("%d expired rows left", left)
			}
			if n := p.checkEvidence(h.rt); n != due {
				t.Errorf("the ledger's evidence counts %d rows, %d were deleted", n, due)
			}
		})
	}
}
