package reporting

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"spine/shared/blob"
	"spine/shared/bus"
	"spine/shared/contracts"
	"spine/shared/events"
	"spine/shared/functions"
	"spine/shared/outbox"
	"spine/shared/problem"
	"spine/shared/tenancy"
)

// The worker's outcomes for one delivery (its log line and the Generate result).
const (
	OutcomeGenerated = "generated" // the artifact was written and the run Succeeded
	OutcomeFailed    = "failed"    // the run Failed for good (ReportFailed emitted)
	OutcomeRetry     = "retry"     // the attempt failed; the run is Queued again and the host redelivers
	OutcomeDone      = "done"      // the run was already Succeeded or Failed: nothing to do
	OutcomeLost      = "lost"      // the claim lapsed and another worker took the run over
)

// The error classes a run records (stable; never an error's text).
const (
	classSource    = "source"             // the query or the row writer failed
	classStorage   = "storage"            // Blob storage refused or failed the upload
	classLease     = "lease-lost"         // the claim lapsed while the artifact was streaming
	classExhausted = "attempts-exhausted" // claimed MaxAttempts times without finishing
)

// errRunInProgress answers a delivery of a run another worker holds (its lease is live): the
// host redelivers later, by when the run is finished (a no-op then) or its lease has lapsed (the
// run is claimed again: its worker crashed).
var errRunInProgress = problem.New(http.StatusServiceUnavailable, "run-in-progress",
	"Another worker is generating this run; retry later.")

// errAttempt wraps a failed attempt's cause for the host (the run was requeued).
func errAttempt(class string, cause error) error {
	return problem.New(http.StatusServiceUnavailable, "report-attempt-failed",
		fmt.Sprintf("The attempt failed (%s); the run is queued again.", class)).WithCause(cause)
}

// onReportRequested serves ReportGeneration: it decodes the ReportRequested event and generates
// its run. It is not a bus.Consumer: a consumer's effect must not call out, and generating streams
// to Blob storage for as long as the report takes. Deduplication is on the run instead: the claim
// (Queued → Running, attempts counted) and the outcome are each a transaction on the run's row,
// so a redelivered or duplicated event finds the run claimed or finished.
func (a *API) onReportRequested(ctx context.Context, inv *functions.Invocation) (*functions.Result, error) {
	d, err := bus.DecodeEvent(inv)
	if err != nil {
		return nil, err
	}
	if d.Platform || d.Event.Type != contracts.ReportRequested {
		return &functions.Result{Logs: []string{fmt.Sprintf("reporting: %s event %s skipped", d.Event.Type, d.Event.ID)}}, nil
	}
	var data contracts.ReportRequestedData
	if err := d.Data(&data); err != nil {
		return nil, err
	}
	// Events the run emits are caused by this one and carry its trace.
	ctx = events.WithMeta(ctx, events.Meta{TraceParent: d.Event.TraceParent, CorrelationID: d.Event.CorrelationID,
		CausationID: d.Event.ID, Actor: "system:report-generation"})
	outcome, err := a.svc.Generate(ctx, d.TenantID, data.RunID)
	a.svc.log.InfoContext(ctx, "report run", "outcome", outcome, "runId", data.RunID, "tenantId", d.TenantID.String(),
		"eventId", d.Event.ID, "invocationId", inv.InvocationID, "deliveryCount", d.Meta.DeliveryCount)
	if err != nil {
		return nil, err
	}
	return &functions.Result{Logs: []string{fmt.Sprintf("reporting: run %s %s", data.RunID, outcome)}}, nil
}

// claim is a worker's hold on a run: the attempt number it claimed it under.
type claim struct {
	run     Run
	attempt int
}

// Generate runs one attempt of the run: it claims the run (Queued, or Running under a lapsed
// lease → Running, attempts + 1), streams the source's rows through the format's writer into a
// create-only blob, and records the outcome. The returned error (with OutcomeRetry) asks the host
// to redeliver; the run is then Queued again unless it used its MaxAttempts, when it is Failed
// and ReportFailed is emitted instead.
func (s *Service) Generate(ctx context.Context, tenant tenancy.TenantID, runID string) (string, error) {
	cl, outcome, err := s.claim(ctx, tenant, runID)
	if err != nil || cl == nil {
		return outcome, err
	}
	name := artifactName(tenant, cl.run, cl.attempt)
	// A crashed earlier attempt may have committed its blob before the process died: nothing
	// refers to it, so it goes (best effort; the container's lifecycle rule is the backstop).
	for n := 1; n < cl.attempt; n++ {
		if err := s.blobs.Delete(ctx, Container, artifactName(tenant, cl.run, n)); err != nil {
			s.log.WarnContext(ctx, "reporting: an earlier attempt's artifact could not be deleted", "runId", runID, "attempt", n)
		}
	}
	genCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := s.renewLease(genCtx, tenant, cl, cancel)
	rows, written, class, genErr := s.stream(genCtx, tenant, cl.run, name)
	stop()
	if genErr == nil {
		return s.succeed(ctx, tenant, cl, name, rows, written)
	}
	if errors.Is(context.Cause(genCtx), errLeaseLost) {
		class = classLease
	}
	return s.attemptFailed(ctx, tenant, cl, class, genErr)
}

// artifactName is attempt's blob name: <tenant>/reports/<yyyy>/<mm>/<dd>/<runId>.<ext> (the run's
// creation day) for the first attempt, <runId>-<attempt>.<ext> for a retry. A retry never reuses
// an earlier attempt's name: that blob may exist (create-only refuses it) and be incomplete for
// this attempt's rows, so each attempt writes its own and the run records the one that finished.
func artifactName(tenant tenancy.TenantID, r Run, attempt int) string {
	id := r.ID
	if attempt > 1 {
		id = fmt.Sprintf("%s-%d", r.ID, attempt)
	}
	return blob.Name(tenant.String(), "reports", r.CreatedAt, id, r.Format.Ext())
}

// claim takes the run for one attempt, or says why not: (nil, OutcomeDone) for a finished run,
// errRunInProgress for one held under a live lease, (nil, OutcomeFailed) when its attempts are used
// up (it is failed here, ReportFailed emitted).
func (s *Service) claim(ctx context.Context, tenant tenancy.TenantID, runID string) (*claim, string, error) {
	var cl *claim
	outcome := ""
	err := s.store.Write(ctx, tenant, func(tx *Tx) error {
		cl, outcome = nil, ""
		run, err := tx.LockRun(ctx, runID)
		if errors.Is(err, ErrRunNotFound) {
			outcome = OutcomeDone // not this tenant's run (or never committed): nothing to generate
			return nil
		}
		if err != nil {
			return err
		}
		now := s.cfg.Now()
		switch {
		case run.Status == RunSucceeded || run.Status == RunFailed:
			outcome = OutcomeDone
			return nil
		case run.Status == RunRunning && run.LeaseUntil != nil && now.Before(*run.LeaseUntil):
			return errRunInProgress
		case run.Attempts >= MaxAttempts:
			outcome = OutcomeFailed
			return s.fail(ctx, tx, tenant, run, run.Attempts, classExhausted, now)
		}
		attempt := run.Attempts + 1
		if err := tx.ClaimRun(ctx, run.ID, attempt, now.Add(s.cfg.Lease), now); err != nil {
			return err
		}
		run.Status, run.Attempts = RunRunning, attempt
		cl = &claim{run: run, attempt: attempt}
		return nil
	})
	if err != nil {
		return nil, OutcomeRetry, err
	}
	return cl, outcome, nil
}

// errLeaseLost is the cause of an attempt cancelled because its claim lapsed.
var errLeaseLost = errors.New("reporting: the run's lease was lost")

// renewLease renews cl's lease every Lease/3 until stop is called; when the claim is found lost
// (another worker took the run), it cancels the attempt with errLeaseLost.
func (s *Service) renewLease(ctx context.Context, tenant tenancy.TenantID, cl *claim, cancel context.CancelCauseFunc) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(s.cfg.Lease / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			var held bool
			err := s.store.Write(ctx, tenant, func(tx *Tx) (err error) {
				held, err = tx.RenewLease(ctx, cl.run.ID, cl.attempt, s.cfg.Now().Add(s.cfg.Lease))
				return err
			})
			if err == nil && !held {
				cancel(errLeaseLost)
				return
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done); wg.Wait() }) }
}

// stream writes the run's artifact: the source's rows, read from a SQL cursor in the tenant's
// scope, through the format's writer into an io.Pipe whose reader is the create-only blob upload.
// Memory is bounded by the upload's blocks, the writers' buffers and one row, whatever the row
// count. It returns the row count, what the upload wrote and, on failure, the error's class.
func (s *Service) stream(ctx context.Context, tenant tenancy.TenantID, run Run, name string) (int64, blob.Written, string, error) {
	src, err := lookupSource(run.Source)
	if err != nil {
		return 0, blob.Written{}, classSource, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	var rows int64
	produced := make(chan error, 1)
	go func() {
		err := s.store.Read(ctx, tenant, func(tx *Tx) error {
			rs, err := src.open(ctx, tx, run.Parameters)
			if err != nil {
				return err
			}
			defer rs.Close()
			w, err := newRowWriter(run.Format, pw, src.Columns)
			if err != nil {
				return err
			}
			vals := make([]any, len(src.Columns))
			for rs.Next() {
				if err := scanRow(rs, src.Columns, vals); err != nil {
					return err
				}
				if err := w.Row(vals); err != nil {
					return err
				}
				rows++
			}
			if err := rs.Err(); err != nil {
				return err
			}
			return w.Close()
		})
		if err != nil {
			// Marked, so that an upload failing with it is told from storage failing on its own.
			err = &sourceError{err}
		}
		_ = pw.CloseWithError(err) // nil: the upload reads io.EOF
		produced <- err
	}()
	written, upErr := s.blobs.PutStreamCreateOnly(ctx, Container, name, pr, run.Format.ContentType())
	if upErr != nil {
		cancel()
		_ = pr.CloseWithError(upErr) // unblocks the producer's pending write
	}
	prodErr := <-produced
	var se *sourceError
	switch {
	case upErr != nil && errors.As(upErr, &se):
		// The source failed; the upload read its error from the pipe and committed nothing.
		return 0, blob.Written{}, classSource, se.err
	case upErr != nil:
		// Storage failed on its own (the producer then failed on the closed pipe or the cancelled
		// query: not the source's fault).
		return 0, blob.Written{}, classStorage, upErr
	case prodErr != nil:
		// The upload ended without the producer's error (it should have read it): the blob may hold
		// a truncated artifact, which nothing will refer to.
		s.deleteQuietly(ctx, name)
		return 0, blob.Written{}, classSource, prodErr
	}
	return rows, written, "", nil
}

// sourceError is the producer's own failure (the query, a row, the format's writer), as the
// upload reads it from the pipe.
type sourceError struct{ err error }

func (e *sourceError) Error() string { return "reporting: source: " + e.err.Error() }
func (e *sourceError) Unwrap() error { return e.err }

func (s *Service) deleteQuietly(ctx context.Context, name string) {
	if err := s.blobs.Delete(context.WithoutCancel(ctx), Container, name); err != nil {
		s.log.WarnContext(ctx, "reporting: an unrecorded artifact could not be deleted", "blob", name)
	}
}

// succeed records the artifact under cl and emits ReportGenerated; a lost claim (another worker
// took the run over meanwhile) deletes this attempt's blob and changes nothing.
func (s *Service) succeed(ctx context.Context, tenant tenancy.TenantID, cl *claim, name string, rows int64, w blob.Written) (string, error) {
	ttl := s.artifactTTL(ctx, tenant)
	err := s.store.Write(ctx, tenant, func(tx *Tx) error {
		now := s.cfg.Now()
		expires := now.Add(ttl)
		if err := tx.SucceedRun(ctx, cl.run.ID, cl.attempt, rows, name, w.SHA256, w.Size, now, expires); err != nil {
			return err
		}
		ev, err := events.New(service, contracts.ReportGenerated, cl.run.ID, tenant.String(), contracts.ReportGeneratedData{
			TenantID: tenant.String(), ReportID: cl.run.ReportID, RunID: cl.run.ID, Format: string(cl.run.Format), RowCount: rows,
			Size: w.Size, SHA256: fmt.Sprintf("%x", w.SHA256), BlobName: name, Attempts: cl.attempt, ExpiresAt: expires, GeneratedAt: now,
		}, events.MetaFrom(ctx))
		if err != nil {
			return err
		}
		return outbox.Emit(ctx, tx.Tx, ev)
	})
	if errors.Is(err, ErrRunNotFound) {
		s.deleteQuietly(ctx, name)
		return OutcomeLost, nil
	}
	if err != nil {
		// The artifact is complete but unrecorded: the redelivery claims the run again (attempt + 1,
		// a new name) and deletes this one first.
		return OutcomeRetry, err
	}
	return OutcomeGenerated, nil
}

// attemptFailed requeues the run after a failed attempt (the host redelivers: OutcomeRetry and an
// error), or fails it for good once it used MaxAttempts (ReportFailed; the delivery succeeds).
func (s *Service) attemptFailed(ctx context.Context, tenant tenancy.TenantID, cl *claim, class string, cause error) (string, error) {
	s.log.WarnContext(ctx, "reporting: attempt failed", "runId", cl.run.ID, "attempt", cl.attempt, "errorClass", class)
	outcome := OutcomeRetry
	err := s.store.Write(context.WithoutCancel(ctx), tenant, func(tx *Tx) error {
		if cl.attempt >= MaxAttempts {
			outcome = OutcomeFailed
			return s.fail(ctx, tx, tenant, cl.run, cl.attempt, class, s.cfg.Now())
		}
		outcome = OutcomeRetry
		return tx.RequeueRun(ctx, cl.run.ID, cl.attempt, class)
	})
	switch {
	case errors.Is(err, ErrRunNotFound):
		return OutcomeLost, nil
	case err != nil:
		return OutcomeRetry, err
	case outcome == OutcomeFailed:
		return outcome, nil
	}
	return outcome, errAttempt(class, cause)
}

// fail marks the run Failed with class and emits ReportFailed, in tx.
func (s *Service) fail(ctx context.Context, tx *Tx, tenant tenancy.TenantID, run Run, attempts int, class string, now time.Time) error {
	if err := tx.FailRun(ctx, run.ID, class, now); err != nil {
		return err
	}
	ev, err := events.New(service, contracts.ReportFailed, run.ID, tenant.String(), contracts.ReportFailedData{
		TenantID: tenant.String(), ReportID: run.ReportID, RunID: run.ID, Attempts: attempts, ErrorClass: class, FailedAt: now,
	}, events.MetaFrom(ctx))
	if err != nil {
		return err
	}
	return outbox.Emit(ctx, tx.Tx, ev)
}
