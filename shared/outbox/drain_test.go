package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"spine/shared/events"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
	"spine/shared/testenv"
)

// The drainer runs against a real tenants database (it owns an outbox table).
var testDB *testenv.Database

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, "tenants", &testDB)) }

// open returns a runtime-role pool on an empty outbox.
func open(t *testing.T) *sqlstore.DB {
	t.Helper()
	db := testDB.OpenRuntime(t, sqlstore.PoolConfig{})
	if err := db.InTx(context.Background(), sqlstore.PlatformScope(), func(tx *sqlstore.Tx) error {
		_, err := tx.Exec(`DELETE FROM outbox`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return db
}

// write inserts n events for each aggregate (tenant, subject), interleaved, each in its own tx.
func write(t *testing.T, db *sqlstore.DB, aggregates []tenancy.TenantID, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		for _, tid := range aggregates {
			ev, err := events.New("tenants", "TenantTouched", tid.String(), tid.String(), map[string]int{"n": i}, events.Meta{})
			if err != nil {
				t.Fatal(err)
			}
			if err := db.InTx(context.Background(), sqlstore.TenantScope(tid), func(tx *sqlstore.Tx) error {
				return Emit(context.Background(), tx, ev)
			}); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// recorder is a Publisher that records what the broker accepted and can refuse on demand.
type recorder struct {
	mu       sync.Mutex
	accepted []Message
	refuse   func(m Message) string // "" accepts
	down     bool
	after    func() // called after accepting (to simulate a crash before delete)
}

func (r *recorder) Publish(ctx context.Context, topic string, msgs []Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.down {
		return fmt.Errorf("broker down")
	}
	pe := &PublishError{Failed: map[int]string{}, Blocked: map[int]bool{}}
	refused := map[string]bool{}
	for i, m := range msgs {
		if refused[m.Key] {
			pe.Blocked[i] = true
			continue
		}
		if r.refuse != nil {
			if code := r.refuse(m); code != "" {
				pe.Failed[i] = code
				refused[m.Key] = true
				continue
			}
		}
		r.accepted = append(r.accepted, m)
	}
	if r.after != nil {
		r.after()
	}
	if len(pe.Failed)+len(pe.Blocked) > 0 {
		return pe
	}
	return nil
}

// counts of accepted messages by id, and the n values per key in acceptance order.
func (r *recorder) byKey(t *testing.T) (ids map[string]int, order map[string][]int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ids, order = map[string]int{}, map[string][]int{}
	for _, m := range r.accepted {
		ids[m.ID]++
		var ev struct {
			Data struct{ N int } `json:"data"`
		}
		if err := json.Unmarshal(m.Body, &ev); err != nil {
			t.Fatal(err)
		}
		order[m.Key] = append(order[m.Key], ev.Data.N)
	}
	return ids, order
}

func pending(t *testing.T, d *Drainer) Counts {
	t.Helper()
	c, err := d.Counts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func assertOrdered(t *testing.T, order map[string][]int, n int) {
	t.Helper()
	for k, seq := range order {
		for i, v := range seq {
			if v != i {
				t.Fatalf("aggregate %s received %v: out of order or duplicated", k, seq)
			}
		}
		if len(seq) != n {
			t.Fatalf("aggregate %s received %d events, want %d", k, len(seq), n)
		}
	}
}

func TestDrain_PublishesEveryRowOnceInOrderPerAggregate(t *testing.T) {
	db := open(t)
	aggs := []tenancy.TenantID{tenancy.NewTenantID(), tenancy.NewTenantID(), tenancy.NewTenantID()}
	write(t, db, aggs, 20)
	pub := &recorder{}
	d, err := NewDrainer(db, "tenants", pub, DrainerConfig{BatchSize: 7}, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := d.Drain(context.Background(), time.Minute)
	if err != nil || res.Published != 60 {
		t.Fatalf("drain: %+v %v", res, err)
	}
	ids, order := pub.byKey(t)
	if len(ids) != 60 {
		t.Fatalf("%d distinct ids", len(ids))
	}
	assertOrdered(t, order, 20)
	if c := pending(t, d); c.Pending != 0 || c.Parked != 0 {
		t.Fatalf("left behind: %+v", c)
	}
	m := pub.accepted[0]
	if m.ContentType != events.ContentType || m.Properties["eventType"] != "TenantTouched" || m.Properties["tenantId"] == "" || m.Subject != "TenantTouched" {
		t.Fatalf("message shape: %+v", m)
	}
}

// Two drainers at once (as two Function instances would run): every row exactly once, in order.
func TestDrain_ConcurrentDrainersNeverDuplicateOrReorder(t *testing.T) {
	db := open(t)
	var aggs []tenancy.TenantID
	for i := 0; i < 6; i++ {
		aggs = append(aggs, tenancy.NewTenantID())
	}
	write(t, db, aggs, 25)
	pub := &recorder{}
	var wg sync.WaitGroup
	for i := 0; i < 3; i++ {
		d, err := NewDrainer(db, "tenants", pub, DrainerConfig{BatchSize: 5}, nil)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 200; j++ {
				if _, err := d.Drain(context.Background(), time.Second); err != nil {
					t.Error(err)
					return
				}
				if c := pending(t, d); c.Pending == 0 {
					return
				}
			}
		}()
	}
	wg.Wait()
	ids, order := pub.byKey(t)
	for id, n := range ids {
		if n != 1 {
			t.Fatalf("event %s published %d times", id, n)
		}
	}
	assertOrdered(t, order, 25)
}

// A broker down for a while loses nothing; rows back off, then everything arrives once, in order.
func TestDrain_BrokerDownThenBack_NothingLost(t *testing.T) {
	db := open(t)
	aggs := []tenancy.TenantID{tenancy.NewTenantID(), tenancy.NewTenantID()}
	write(t, db, aggs, 5)
	pub := &recorder{down: true}
	d, _ := NewDrainer(db, "tenants", pub, DrainerConfig{BackoffBase: time.Millisecond, BackoffMax: 5 * time.Millisecond, MaxAttempts: 50}, nil)
	for i := 0; i < 3; i++ {
		res, err := d.Drain(context.Background(), time.Second)
		if err != nil || res.Published != 0 {
			t.Fatalf("while down: %+v %v", res, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	pub.mu.Lock()
	pub.down = false
	pub.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for pending(t, d).Pending > 0 && time.Now().Before(deadline) {
		if _, err := d.Drain(context.Background(), time.Second); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	ids, order := pub.byKey(t)
	if len(ids) != 10 {
		t.Fatalf("%d events arrived, want 10", len(ids))
	}
	assertOrdered(t, order, 5)
}

// One aggregate's poisoned event is retried, then parked after MaxAttempts; its later events wait
// behind it while every other aggregate drains; replaying after the fix delivers the rest in order.
func TestDrain_PoisonedRowParksAndBlocksOnlyItsAggregate(t *testing.T) {
	db := open(t)
	bad, good := tenancy.NewTenantID(), tenancy.NewTenantID()
	write(t, db, []tenancy.TenantID{bad, good}, 4)
	pub := &recorder{}
	poisoned := true
	pub.refuse = func(m Message) string {
		if poisoned && m.Key == bad.String()+"/"+bad.String() {
			return "message-too-large"
		}
		return ""
	}
	d, _ := NewDrainer(db, "tenants", pub, DrainerConfig{MaxAttempts: 3, BackoffBase: time.Millisecond, BackoffMax: 2 * time.Millisecond}, nil)
	for i := 0; i < 20 && pending(t, d).Parked == 0; i++ {
		if _, err := d.Drain(context.Background(), time.Second); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * time.Millisecond)
	}
	c := pending(t, d)
	if c.Parked != 1 || c.Pending != 3 {
		t.Fatalf("counts %+v, want 1 parked and its 3 followers pending", c)
	}
	_, order := pub.byKey(t)
	if len(order[good.String()+"/"+good.String()]) != 4 || len(order[bad.String()+"/"+bad.String()]) != 0 {
		t.Fatalf("delivered: %v", order)
	}
	parked, err := d.Parked(context.Background(), 10)
	if err != nil || len(parked) != 1 || parked[0].Attempts != 3 || parked[0].LastError != "message-too-large" || parked[0].TenantID != bad.String() {
		t.Fatalf("parked = %+v, %v", parked, err)
	}
	poisoned = false
	if err := d.Replay(context.Background(), parked[0].EventID); err != nil {
		t.Fatal(err)
	}
	if err := d.Replay(context.Background(), parked[0].EventID); err != ErrNotParked {
		t.Fatalf("second replay: %v", err)
	}
	if _, err := d.Drain(context.Background(), time.Second); err != nil {
		t.Fatal(err)
	}
	_, order = pub.byKey(t)
	assertOrdered(t, order, 4)
}

// The drainer dies after the broker accepted but before the delete committed: the rows stay and
// are published again with the same message ids (broker duplicate detection and consumers'
// inboxes absorb the second copy).
func TestDrain_CrashBetweenPublishAndDelete_Republishes(t *testing.T) {
	db := open(t)
	tid := tenancy.NewTenantID()
	write(t, db, []tenancy.TenantID{tid}, 3)
	ctx, crash := context.WithCancel(context.Background())
	pub := &recorder{after: crash}
	d, _ := NewDrainer(db, "tenants", pub, DrainerConfig{}, nil)
	if _, err := d.Drain(ctx, time.Second); err == nil {
		t.Fatal("the crashed drain reported success")
	}
	if c := pending(t, d); c.Pending != 3 {
		t.Fatalf("after the crash %d rows remain, want 3", c.Pending)
	}
	pub.after = nil
	if res, err := d.Drain(context.Background(), time.Second); err != nil || res.Published != 3 {
		t.Fatalf("redrain: %+v %v", res, err)
	}
	ids, _ := pub.byKey(t)
	if len(ids) != 3 {
		t.Fatalf("%d ids", len(ids))
	}
	for id, n := range ids {
		if n != 2 {
			t.Fatalf("event %s published %d times, want 2 (same id both times)", id, n)
		}
	}
}

// Emit kicks the drainer once its transaction commits, and never for a transaction that rolled
// back: services do not wire the drainer themselves.
func TestEmit_KicksTheDrainerOnlyAfterCommit(t *testing.T) {
	db := open(t)
	d, err := NewDrainer(db, "tenants", &recorder{}, DrainerConfig{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tid := tenancy.NewTenantID()
	ev, err := events.New("tenants", "TenantTouched", tid.String(), tid.String(), map[string]int{"n": 1}, events.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	kicked := func() bool {
		select {
		case <-d.kick:
			return true
		default:
			return false
		}
	}
	rollback := errors.New("roll back")
	err = db.InTx(context.Background(), sqlstore.TenantScope(tid), func(tx *sqlstore.Tx) error {
		if err := Emit(context.Background(), tx, ev); err != nil {
			return err
		}
		if kicked() {
			t.Error("kicked before the commit")
		}
		return rollback
	})
	if !errors.Is(err, rollback) || kicked() {
		t.Fatalf("rolled back: err %v, kicked %v; want no kick", err, !kicked())
	}
	if err := db.InTx(context.Background(), sqlstore.TenantScope(tid), func(tx *sqlstore.Tx) error {
		return Emit(context.Background(), tx, ev)
	}); err != nil {
		t.Fatal(err)
	}
	if !kicked() {
		t.Fatal("a committed Emit did not kick the drainer")
	}
}

// On a backlog the planner's statistics do not know about yet (thousands of rows inserted since
// the last analyze), the claim still walks outbox_pending in seq order and stops at the batch: no
// bitmap scan of every pending row, no sort of them all (each row it passes tries an advisory
// lock, so a plan that visits every row locks every pending aggregate).
func TestClaim_WalksThePendingIndexInOrderWhateverTheStatistics(t *testing.T) {
	db := open(t)
	ctx := context.Background()
	if err := db.InTx(ctx, sqlstore.PlatformScope(), func(tx *sqlstore.Tx) error {
		for i := 0; i < 3000; i += 500 {
			evs := make([]events.Event, 500)
			for j := range evs {
				tid := tenancy.NewTenantID()
				ev, err := events.New("tenants", "TenantTouched", tid.String(), tid.String(), map[string]int{"n": i + j}, events.Meta{})
				if err != nil {
					return err
				}
				evs[j] = ev
			}
			if err := Emit(ctx, tx, evs...); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	plan, claim, batch, ok := ClaimStatement(sqlstore.Postgres)
	if !ok || plan == "" {
		t.Fatal("no planner settings for the PostgreSQL claim")
	}
	var lines []string
	if err := db.InTx(ctx, sqlstore.PlatformScope(), func(tx *sqlstore.Tx) error {
		if _, err := tx.ExecContext(ctx, plan); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `EXPLAIN `+claim, batch)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var l string
			if err := rows.Scan(&l); err != nil {
				return err
			}
			lines = append(lines, l)
		}
		return rows.Err()
	}); err != nil {
		t.Fatal(err)
	}
	text := strings.Join(lines, "\n")
	// outbox_pending (partial) and outbox_seq_key (every row) are both in seq order: the planner
	// picks either by its estimates, and either walks in order and stops at the batch.
	inOrder := strings.Contains(text, "Index Scan using outbox_pending on outbox o") ||
		strings.Contains(text, "Index Scan using outbox_seq_key on outbox o")
	if !inOrder || strings.Contains(text, "Sort") || strings.Contains(text, "Bitmap") || strings.Contains(text, "Seq Scan on outbox o") {
		t.Fatalf("the claim's plan does not walk the outbox in seq order:\n%s", text)
	}
}
