package authz

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Pruning deletes what the server keeps only until it expires: authorization codes (redeemed or
// not) past their expiry, refresh tokens past theirs — consumed and revoked ones included, but
// only then: reuse detection needs a consumed token until it would have expired — and revoked
// access tokens' records past the token's exp. Codes and refresh tokens are kept
// MaxAccessTokenTTL past their expiry: their rows say whether their family was revoked, which
// introspection asks for as long as an access token issued from them can live.
//
// A run is bounded: it deletes in batches of BatchSize rows, each batch one short transaction whose
// rows are an index range of the table's (expires_at, tenant_id, key) pruning index (never a scan,
// never a long lock: OpenIddict's and Hydra's pruning that deleted everything in one statement is
// the counter-example), and stops after MaxBatches batches or MaxDuration, whichever comes first. It
// is resumable: the deleted rows are gone, so the next run starts where this one stopped — the
// index order is the watermark. Within a run each batch starts after the previous batch's last key,
// so no batch walks the index entries its predecessors left behind.
//
// It runs in platform scope (maintenance), as the runtime role, whose DELETE grant on the token
// tables exists for it alone.

// PruneConfig bounds a pruning run. Zero fields take the documented defaults.
type PruneConfig struct {
	// BatchSize is the most rows one batch (one statement, one transaction) deletes. Default 1000.
	BatchSize int
	// MaxBatches bounds a run's batches, over every table. Default 500 (500,000 rows per run,
	// every five minutes).
	MaxBatches int
	// MaxDuration bounds a run's time; the batch under way finishes. Default 2 minutes.
	MaxDuration time.Duration
}

func (c PruneConfig) withDefaults() PruneConfig {
	if c.BatchSize <= 0 {
		c.BatchSize = 1000
	}
	if c.MaxBatches <= 0 {
		c.MaxBatches = 500
	}
	if c.MaxDuration <= 0 {
		c.MaxDuration = 2 * time.Minute
	}
	return c
}

// PruneReport is what a pruning run did.
type PruneReport struct {
	// Deleted counts the rows deleted, by table.
	Deleted map[PruneTable]int
	// Batches is how many batches ran; LargestBatch the most rows one of them deleted.
	Batches      int
	LargestBatch int
	// Complete is false when the run stopped at its bounds with expired rows left (the next run
	// goes on).
	Complete bool
	Duration time.Duration
}

// Total is the number of rows deleted.
func (r PruneReport) Total() int {
	n := 0
	for _, d := range r.Deleted {
		n += d
	}
	return n
}

// String is the run's log line: counts per table, batches, time, and whether rows were left.
func (r PruneReport) String() string {
	var b strings.Builder
	b.WriteString("token prune:")
	for _, t := range PruneTables {
		fmt.Fprintf(&b, " %s %d,", t, r.Deleted[t])
	}
	fmt.Fprintf(&b, " %d batches (largest %d) in %s", r.Batches, r.LargestBatch, r.Duration.Round(time.Millisecond))
	if !r.Complete {
		b.WriteString("; stopped at its bounds, the next run continues")
	}
	return b.String()
}

// Prune runs one bounded pruning pass over every pruned table, in PruneTables' order, deleting
// what expired before now (codes and refresh tokens: before now − MaxAccessTokenTTL). On a store failure it returns what it did so far with the error.
func (s *Service) Prune(ctx context.Context) (PruneReport, error) {
	cfg := s.cfg.Prune
	start := time.Now()
	now := s.cfg.Now()
	r := PruneReport{Deleted: map[PruneTable]int{}, Complete: true}
tables:
	for _, table := range PruneTables {
		cutoff := now
		if table != PruneRevokedTokens {
			// A code's or refresh token's row is the evidence that its family was revoked
			// (FamilyRevoked); the access tokens issued from it live up to MaxAccessTokenTTL
			// longer, so the row stays until none of them can still be introspected.
			cutoff = now.Add(-MaxAccessTokenTTL)
		}
		var after PruneKey
		for {
			if r.Batches >= cfg.MaxBatches || time.Since(start) >= cfg.MaxDuration {
				r.Complete = false
				break tables
			}
			n, next, done, err := s.store.PruneBatch(ctx, table, cutoff, after, cfg.BatchSize)
			if err != nil {
				r.Complete, r.Duration = false, time.Since(start)
				return r, fmt.Errorf("authz: pruning %s after %s: %w", table, r.String(), err)
			}
			r.Batches++
			r.Deleted[table] += n
			r.LargestBatch = max(r.LargestBatch, n)
			after = next
			if done {
				break
			}
		}
	}
	r.Duration = time.Since(start)
	return r, nil
}
