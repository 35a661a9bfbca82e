package reporting

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"spine/shared/blob"
	"spine/shared/contracts"
	"spine/shared/retention"
	"spine/shared/retention/retentiontest"
	"spine/shared/testenv"
)

// lifecycleEnv is the harness with a lifecycle sweep registered under a name of its own on an
// engine over the real ledger, the engine's clock the service's.
type lifecycleEnv struct {
	*harness
	ledger *retention.Ledger
	sweep  string
	t0     time.Time
}

func newLifecycleEnv(t *testing.T) *lifecycleEnv {
	h := newHarness(t, harnessOpts{cfg: ServiceConfig{ArtifactTTL: 2 * time.Hour}})
	t0 := time.Now().UTC().Truncate(time.Second)
	h.now.set(t0)
	return &lifecycleEnv{harness: h, ledger: retentiontest.Ledger(t), sweep: "ReportArtifactLifecycleT" + uuid.NewString()[:8], t0: t0}
}

// engine is a fresh engine (a restarted process) with the sweep, batches of 2 runs; fault, when
// set, is the crash-injection hook.
func (e *lifecycleEnv) engine(fault func(string)) *retention.Engine {
	e.t.Helper()
	eng, err := retention.New(retention.Config{Ledger: e.ledger, Now: e.now.Now, Fault: fault})
	if err != nil {
		e.t.Fatal(err)
	}
	s := e.svc.LifecycleSweepOf(e.sweep)
	s.BatchSize = 2
	if err := eng.Register(s); err != nil {
		e.t.Fatal(err)
	}
	return eng
}

func (e *lifecycleEnv) sweepOnce(eng *retention.Engine) retention.Run {
	e.t.Helper()
	r, err := eng.Run(context.Background(), e.sweep)
	if err != nil {
		e.t.Fatalf("%s: %v", r, err)
	}
	return r
}

// succeeded generates n runs of tn at the clock's time: their artifacts expire 2 hours later.
// It returns the runs as generated (Succeeded, with their artifact).
func (e *lifecycleEnv) succeeded(tn tenantT, n int) []runJSON {
	e.t.Helper()
	rep := e.createReport(tn, usersReport("csv"))
	var out []runJSON
	for range n {
		run := e.runReport(tn, rep.ID, nil)
		e.generate(tn, run.ID)
		got := e.run(tn, run.ID)
		if got.Status != string(RunSucceeded) || got.Artifact == nil {
			e.t.Fatalf("run %s: %+v", run.ID, got)
		}
		out = append(out, got)
	}
	return out
}

func (e *lifecycleEnv) blobExists(name string) bool {
	e.t.Helper()
	_, err := e.blobs.Properties(context.Background(), Container, name)
	if err != nil && !errors.Is(err, blob.ErrNotFound) {
		e.t.Fatal(err)
	}
	return err == nil
}

// checkExpired checks that runs are Expired with their blobs gone (want true) or Succeeded with
// their blobs there (want false).
func (e *lifecycleEnv) checkExpired(tn tenantT, runs []runJSON, want bool) {
	e.t.Helper()
	for _, r := range runs {
		got := e.run(tn, r.ID)
		if exists := e.blobExists(r.Artifact.Name); want == exists {
			e.t.Errorf("run %s: blob exists %v, want %v", r.ID, exists, !want)
		}
		switch {
		case want && (got.Status != string(RunExpired) || got.ExpiredAt == nil || got.Artifact != nil):
			e.t.Errorf("run %s: %s (expiredAt %v, artifact %v), want Expired", r.ID, got.Status, got.ExpiredAt, got.Artifact)
		case !want && got.Status != string(RunSucceeded):
			e.t.Errorf("run %s: %s, want Succeeded", r.ID, got.Status)
		}
	}
}

// evidence returns tenant's evidence rows of the env's sweep and its RetentionApplied events.
func (e *lifecycleEnv) evidence(tn tenantT) ([]retention.Evidence, []string) {
	e.t.Helper()
	all, err := e.ledger.Evidence(context.Background(), tn.id.String(), time.Time{}, time.Time{}, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	var evs []retention.Evidence
	for _, ev := range all {
		if ev.Sweep == e.sweep {
			evs = append(evs, ev)
		}
	}
	var events []string
	for _, ev := range testenv.Outbox(e.t, e.db, tn.id) {
		if ev.Type == contracts.RetentionApplied {
			events = append(events, ev.ID)
		}
	}
	return evs, events
}

// checkEvidence checks one evidence row per range and one event per range with its id, and that
// the rows' counts add up to runs.
func (e *lifecycleEnv) checkEvidence(tn tenantT, ranges, runs int) {
	e.t.Helper()
	evs, events := e.evidence(tn)
	affected := 0
	var ids []string
	for _, ev := range evs {
		affected += ev.Affected
		ids = append(ids, ev.ID)
		if ev.Action != retention.ActionExpire || ev.Tenant != tn.id.String() || ev.Artifact != nil {
			e.t.Errorf("evidence %+v", ev)
		}
	}
	slices.Sort(ids)
	slices.Sort(events)
	if len(evs) != ranges || affected != runs || !slices.Equal(ids, events) {
		e.t.Errorf("%d evidence rows (%d runs, ids %v), events %v: want %d ranges, %d runs, one event per row", len(evs), affected, ids, events, ranges, runs)
	}
}

// Expired artifacts are deleted from Blob and their runs marked Expired, a range at a time; runs
// not yet expired (another tenant's, generated later) are untouched. A download of an Expired run
// is 410 artifact-expired even at a time its expiresAt has not passed (the status answers).
func TestLifecycle_ExpiredArtifactsDeleted_RunsExpired_UnexpiredUntouched(t *testing.T) {
	e := newLifecycleEnv(t)
	a, b := e.tenant(), e.tenant()
	due := e.succeeded(a, 3)
	e.now.set(e.t0.Add(time.Hour))
	later := e.succeeded(b, 1) // expires at t0 + 3h
	e.now.set(e.t0.Add(2*time.Hour + 30*time.Minute))
	eng := e.engine(nil)
	r := e.sweepOnce(eng)
	if r.Status != retention.StatusCompleted || r.Affected < 3 {
		t.Errorf("run %s", r)
	}
	e.checkExpired(a, due, true)
	e.checkExpired(b, later, false)
	e.checkEvidence(a, 2, 3) // batches of 2: ranges of 2 and 1
	if evs, events := e.evidence(b); len(evs) != 0 || len(events) != 0 {
		t.Errorf("the unexpired tenant has evidence %v, events %v", evs, events)
	}
	e.now.set(e.t0) // before expiresAt: only the status says expired
	res := e.do("GET", "/api/report-runs/"+due[0].ID+"/download", a.reader, nil)
	if res.Code != http.StatusGone || res.ProblemCode(t) != "artifact-expired" {
		t.Fatalf("download of an Expired run: %d %s", res.Code, res.Body)
	}
	// Nothing left due: the next run changes nothing.
	e.now.set(e.t0.Add(2*time.Hour + 30*time.Minute))
	if r := e.sweepOnce(e.engine(nil)); r.Affected != 0 {
		t.Errorf("a second run: %s", r)
	}
	e.checkEvidence(a, 2, 3)
	// b's run once due goes too.
	e.now.set(e.t0.Add(3*time.Hour + time.Minute))
	e.sweepOnce(e.engine(nil))
	e.checkExpired(b, later, true)
	e.checkEvidence(b, 1, 1)
}

// A crash at each step of a batch (intent written, exported, applied, evidence written) is
// finished by the next run of a fresh engine: every due run is Expired exactly once, its blob
// gone, the ledger's evidence counts the runs expired, one event per range, with the evidence id.
func TestLifecycle_CrashAtEachFaultPoint_RerunExpiresEachRangeOnce(t *testing.T) {
	for _, point := range []string{retention.FaultAfterIntent, retention.FaultAfterExport, retention.FaultAfterApply, retention.FaultAfterEvidence} {
		t.Run(point, func(t *testing.T) {
			e := newLifecycleEnv(t)
			tn := e.tenant()
			runs := e.succeeded(tn, 3)
			e.now.set(e.t0.Add(3 * time.Hour))
			crashed := false
			func() {
				defer func() {
					if v := recover(); v != nil {
						crashed = true
					}
				}()
				e.sweepOnce(e.engine(func(p string) {
					if p == point {
						panic(fmt.Sprintf("crash at %s", p))
					}
				}))
			}()
			if !crashed {
				t.Fatalf("the run did not reach %s", point)
			}
			r := e.sweepOnce(e.engine(nil))
			if r.Resumed != 1 {
				t.Errorf("rerun %s: want the crashed range resumed", r)
			}
			e.checkExpired(tn, runs, true)
			e.checkEvidence(tn, 2, 3)
		})
	}
}

// A legal hold on a tenant (scope reports, or all) keeps its artifacts through a sweep that
// expires another tenant's; once the hold is removed, the next run expires them.
func TestLifecycle_LegalHold_SkipsTheTenantUntilRemoved(t *testing.T) {
	for _, scope := range []string{LifecycleScope, retention.ScopeAll} {
		t.Run(scope, func(t *testing.T) {
			e := newLifecycleEnv(t)
			held, other := e.tenant(), e.tenant()
			heldRuns, otherRuns := e.succeeded(held, 2), e.succeeded(other, 1)
			e.now.set(e.t0.Add(3 * time.Hour))
			hold := retention.Hold{ID: uuid.NewString(), TenantID: held.id.String(), Scope: scope, Reason: "litigation",
				CreatedBy: "test", CreatedAt: e.t0}
			if err := e.ledger.PutHold(context.Background(), hold); err != nil {
				t.Fatal(err)
			}
			r := e.sweepOnce(e.engine(nil))
			if r.HeldUnits < 1 {
				t.Errorf("run %s: want the held tenant counted", r)
			}
			e.checkExpired(held, heldRuns, false)
			e.checkExpired(other, otherRuns, true)
			if _, err := e.ledger.DeleteHold(context.Background(), hold.ID); err != nil {
				t.Fatal(err)
			}
			e.sweepOnce(e.engine(nil))
			e.checkExpired(held, heldRuns, true)
			e.checkEvidence(held, 1, 2)
		})
	}
}
