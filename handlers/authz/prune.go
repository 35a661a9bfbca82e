package authz

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"spine/shared/retention"
)

// Pruning deletes what the server keeps only until it expires: authorization codes (redeemed or
// not) past their expiry, refresh tokens past theirs — consumed and revoked ones included, but
// only then: reuse detection needs a consumed token until it would have expired — and revoked
// access tokens' records past the token's exp. Codes and refresh tokens are kept
// MaxAccessTokenTTL past their expiry: their rows say whether their family was revoked, which
// introspection asks for as long as an access token issued from them can live.
//
// It is AuthzTokenPrune, a platform sweep of the retention engine (shared/retention): its units
// are the three pruned tables, each with its own cutoff (the engine's, now, for revoked tokens;
// now − MaxAccessTokenTTL for codes and refresh tokens). The engine bounds a run (its MaxRows and
// MaxDuration), serves the tables fairly and keeps each table's watermark and the evidence of
// every batch in the ledger (platform partition). A batch is an index range of the table's
// (expires_at, tenant_id, key) pruning index of at most BatchSize rows (never a scan, never a long
// lock: OpenIddict's and Hydra's pruning that deleted everything in one statement is the
// counter-example), deleted by one statement in one platform-scoped transaction with its
// RetentionApplied event. It runs as the runtime role, whose DELETE grant on the token tables
// exists for it alone.

// PruneSweep is the sweep's and its timer function's name.
const PruneSweep = "AuthzTokenPrune"

// PruneConfig bounds the sweep's batches. Zero fields take the documented defaults.
type PruneConfig struct {
	// BatchSize is the most rows one batch (one statement, one transaction) deletes. Default 1000.
	BatchSize int
}

func (c PruneConfig) withDefaults() PruneConfig {
	if c.BatchSize <= 0 {
		c.BatchSize = 1000
	}
	return c
}

// ErrInvalidPruneKey is a range bound this package did not write, or a unit that is no pruned
// table.
var ErrInvalidPruneKey = errors.New("authz: invalid pruning position")

// PruneSweepOf returns the pruning sweep over s under name (PruneSweep; tests register it under
// names of their own, as the ledger is shared).
func (s *Service) PruneSweepOf(name string) retention.Sweep {
	units := make([]string, len(PruneTables))
	for i, t := range PruneTables {
		units[i] = string(t)
	}
	return retention.Sweep{
		Name: name, Service: service, Schedule: PruneSchedule, Action: retention.ActionDelete, Platform: true,
		Units:     func(context.Context, time.Time) ([]string, error) { return slices.Clone(units), nil },
		Target:    pruneTarget{s: s},
		BatchSize: s.cfg.Prune.BatchSize,
	}
}

// tableCutoff is table's cutoff given the engine's (now): a code's or refresh token's row is the
// evidence that its family was revoked (FamilyRevoked); the access tokens issued from it live up
// to MaxAccessTokenTTL longer, so the row stays until none of them can still be introspected.
func tableCutoff(table PruneTable, cutoff time.Time) time.Time {
	if table == PruneRevokedTokens {
		return cutoff
	}
	return cutoff.Add(-MaxAccessTokenTTL)
}

// pruneTarget is the sweep's retention.Target over the service's store.
type pruneTarget struct {
	retention.NoExport
	s *Service
}

func pruneTable(unit string) (PruneTable, error) {
	t := PruneTable(unit)
	if !slices.Contains(PruneTables, t) {
		return "", fmt.Errorf("%w: no pruned table %q", ErrInvalidPruneKey, unit)
	}
	return t, nil
}

// Next implements retention.Target: the next expired rows of the table after after, an index range.
func (p pruneTarget) Next(ctx context.Context, unit, after string, cutoff time.Time, limit int) (retention.Range, bool, error) {
	table, err := pruneTable(unit)
	if err != nil {
		return retention.Range{}, false, err
	}
	from, err := parsePruneKey(table, after)
	if err != nil {
		return retention.Range{}, false, err
	}
	first, last, n, err := p.s.store.PruneNext(ctx, table, from, tableCutoff(table, cutoff), limit)
	if err == nil && n == 0 && after != "" {
		// Nothing past the watermark: look once from the start, for a row that expired behind it
		// (inserted already expired by an instance whose clock runs behind).
		first, last, n, err = p.s.store.PruneNext(ctx, table, PruneKey{}, tableCutoff(table, cutoff), limit)
	}
	if err != nil || n == 0 {
		return retention.Range{}, false, err
	}
	return retention.Range{From: first.encode(table), To: last.encode(table), Count: n, FirstAt: first.ExpiresAt, LastAt: last.ExpiresAt}, true, nil
}

// Apply implements retention.Target: deletes the range's rows that are still expired, with the
// evidence event, in one transaction; a rerun finds them gone and changes nothing.
func (p pruneTarget) Apply(ctx context.Context, unit string, r retention.Range, ev retention.Evidence) (int, error) {
	table, err := pruneTable(unit)
	if err != nil {
		return 0, err
	}
	from, err := parsePruneKey(table, r.From)
	if err != nil {
		return 0, err
	}
	to, err := parsePruneKey(table, r.To)
	if err != nil {
		return 0, err
	}
	if from.ExpiresAt.IsZero() || to.ExpiresAt.IsZero() {
		return 0, fmt.Errorf("%w: an empty range bound", ErrInvalidPruneKey)
	}
	e, err := retention.EvidenceEvent(ev)
	if err != nil {
		return 0, err
	}
	return p.s.store.PruneRange(ctx, table, from, to, tableCutoff(table, ev.Cutoff), e)
}

// encode is the key as the ledger keeps it: "<expires at, RFC 3339 UTC>/<tenant>/<key>", the key
// a code's hash in hex, a token's id otherwise.
func (k PruneKey) encode(table PruneTable) string {
	key := k.ID
	if table == PruneCodes {
		key = hex.EncodeToString(k.Hash)
	}
	return k.ExpiresAt.UTC().Format(time.RFC3339Nano) + "/" + k.Tenant + "/" + key
}

// parsePruneKey reads a key encode wrote; "" is the zero key (before every row).
func parsePruneKey(table PruneTable, s string) (PruneKey, error) {
	if s == "" {
		return PruneKey{}, nil
	}
	parts := strings.Split(s, "/")
	if len(parts) != 3 {
		return PruneKey{}, fmt.Errorf("%w: %q", ErrInvalidPruneKey, s)
	}
	at, err := time.Parse(time.RFC3339Nano, parts[0])
	if err != nil || !validID(parts[1]) && parts[1] != PlatformTenant {
		return PruneKey{}, fmt.Errorf("%w: %q", ErrInvalidPruneKey, s)
	}
	k := PruneKey{ExpiresAt: at.UTC(), Tenant: parts[1], ID: parts[2]}
	if table == PruneCodes {
		if k.Hash, err = hex.DecodeString(parts[2]); err != nil {
			return PruneKey{}, fmt.Errorf("%w: %q", ErrInvalidPruneKey, s)
		}
		k.ID = ""
	} else if !validID(k.ID) {
		return PruneKey{}, fmt.Errorf("%w: %q", ErrInvalidPruneKey, s)
	}
	return k, nil
}
