package audit

import (
	"context"
	"encoding/hex"
	"errors"
	"math"
	"time"

	"spine/shared/events"
	"spine/shared/outbox"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
)

// Export is one exported range of a tenant's chain as audit_exports keeps it: entries FromSeq..ToSeq
// (Count of them) are in the archive blob Blob (its name in ArchiveContainer) whose bytes have
// SHA256; FirstPrevHash is the prev hash of entry FromSeq, LastHash the hash of entry ToSeq.
type Export struct {
	TenantID      tenancy.TenantID
	FromSeq       int64
	ToSeq         int64
	Count         int
	Blob          string
	SHA256        string
	FirstPrevHash []byte
	LastHash      []byte
	EvidenceID    string
	ExportedAt    time.Time
}

// SeqAt is an entry's seq and recording time.
type SeqAt struct {
	Seq        int64
	RecordedAt time.Time
}

// ArchiveStore is what the retention sweeps (AuditExport, AuditPurge) and the export verifier ask
// of the store. Scopes as Store's: one tenant's scope, except where a method says platform.
type ArchiveStore interface {
	// EntryTenants lists every tenant with entries (not the platform chain), in platform scope.
	EntryTenants(ctx context.Context) ([]string, error)
	// ExportedTenants lists every tenant with an export, in platform scope.
	ExportedTenants(ctx context.Context) ([]string, error)
	// SeqSpan returns seq and recorded_at of up to limit of the tenant's entries with
	// after < seq <= through, in seq order.
	SeqSpan(ctx context.Context, s sqlstore.Scope, after, through int64, limit int) ([]SeqAt, error)
	// ChainBounds returns the lowest and highest seq of the tenant's entries (0, 0 for none).
	ChainBounds(ctx context.Context, s sqlstore.Scope) (first, last int64, err error)
	// ExportsCovering returns the tenant's exports overlapping first..last, in from_seq order
	// (FromSeq, ToSeq, Blob and SHA256 set).
	ExportsCovering(ctx context.Context, s sqlstore.Scope, first, last int64) ([]Export, error)
	// ExportedThrough returns the highest seq the tenant's exports reach (0 for none).
	ExportedThrough(ctx context.Context, s sqlstore.Scope) (int64, error)
	// RecordExport records x through the owner's audit_record_export, in one transaction with the
	// events emit returns, unless the tenant has an export from x.FromSeq: then it changes nothing,
	// emits nothing and returns false. The routine refuses x (an error) unless it fits the chain:
	// contiguous with the last export, its hashes the stored entries', its blob named by its range.
	RecordExport(ctx context.Context, s sqlstore.Scope, x Export, emit func() ([]events.Event, error)) (inserted bool, err error)
	// Exports returns up to limit of the tenant's exports with FromSeq > afterFrom, in order.
	Exports(ctx context.Context, s sqlstore.Scope, afterFrom int64, limit int) ([]Export, error)
	// ExportEnding returns the tenant's export whose ToSeq is toSeq, or ErrNotFound.
	ExportEnding(ctx context.Context, s sqlstore.Scope, toSeq int64) (Export, error)
	// Purge has the owner's purge routine delete the tenant's exported entries up to toSeq recorded
	// before cutoff (never the chain's head; see audit_purge), and when it deleted some, appends the
	// entry record(deleted) returns to the chain and writes its events, all in one transaction. It
	// returns how many entries were deleted (0: nothing changed). A cutoff younger than the
	// database's retention floor (audit_retention_floor) is refused: an error, nothing deleted.
	Purge(ctx context.Context, s sqlstore.Scope, toSeq int64, cutoff time.Time,
		record func(deleted int) (NewEntry, []events.Event, error)) (deleted int, err error)
}

// exportColumns, as listExports and exportEnding return them: from_seq, to_seq, count, blob,
// sha256, first_prev_hash, last_hash, evidence id (canonical text), exported_at.
func scanExport(tenant tenancy.TenantID, r scanner) (Export, error) {
	x := Export{TenantID: tenant}
	if err := r.Scan(&x.FromSeq, &x.ToSeq, &x.Count, &x.Blob, &x.SHA256, &x.FirstPrevHash, &x.LastHash,
		&x.EvidenceID, &x.ExportedAt); err != nil {
		return Export{}, err
	}
	x.ExportedAt = x.ExportedAt.UTC()
	return x, nil
}

// EntryTenants implements ArchiveStore.
func (s *sqlStore) EntryTenants(ctx context.Context) ([]string, error) {
	return s.platformStrings(ctx, s.a.entryTenants, outbox.PlatformTenant)
}

// ExportedTenants implements ArchiveStore.
func (s *sqlStore) ExportedTenants(ctx context.Context) ([]string, error) {
	return s.platformStrings(ctx, s.a.exportedTenants)
}

// platformStrings runs query (one string column) in platform scope.
func (s *sqlStore) platformStrings(ctx context.Context, query string, args ...any) ([]string, error) {
	var out []string
	err := s.db.InReadTx(ctx, sqlstore.PlatformScope(), func(tx *sqlstore.Tx) error {
		rows, err := tx.QueryContext(ctx, query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var v string
			if err := rows.Scan(&v); err != nil {
				return err
			}
			out = append(out, v)
		}
		return rows.Err()
	})
	return out, err
}

// SeqSpan implements ArchiveStore.
func (s *sqlStore) SeqSpan(ctx context.Context, sc sqlstore.Scope, after, through int64, limit int) ([]SeqAt, error) {
	tenant, err := tenantOf(sc)
	if err != nil {
		return nil, err
	}
	if through <= 0 {
		through = math.MaxInt64
	}
	var out []SeqAt
	err = s.db.InReadTx(ctx, sc, func(tx *sqlstore.Tx) error {
		rows, err := tx.QueryContext(ctx, s.a.seqSpan, tenant.String(), after, through, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var v SeqAt
			if err := rows.Scan(&v.Seq, &v.RecordedAt); err != nil {
				return err
			}
			v.RecordedAt = v.RecordedAt.UTC()
			out = append(out, v)
		}
		return rows.Err()
	})
	return out, err
}

// ChainBounds implements ArchiveStore.
func (s *sqlStore) ChainBounds(ctx context.Context, sc sqlstore.Scope) (int64, int64, error) {
	tenant, err := tenantOf(sc)
	if err != nil {
		return 0, 0, err
	}
	var first, last int64
	err = s.db.InReadTx(ctx, sc, func(tx *sqlstore.Tx) error {
		return tx.QueryRowContext(ctx, s.a.chainBounds, tenant.String()).Scan(&first, &last)
	})
	return first, last, err
}

// ExportsCovering implements ArchiveStore.
func (s *sqlStore) ExportsCovering(ctx context.Context, sc sqlstore.Scope, first, last int64) ([]Export, error) {
	tenant, err := tenantOf(sc)
	if err != nil {
		return nil, err
	}
	var out []Export
	err = s.db.InReadTx(ctx, sc, func(tx *sqlstore.Tx) error {
		rows, err := tx.QueryContext(ctx, s.a.exportsCovering, tenant.String(), first, last)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			x := Export{TenantID: tenant}
			if err := rows.Scan(&x.FromSeq, &x.ToSeq, &x.Blob, &x.SHA256); err != nil {
				return err
			}
			out = append(out, x)
		}
		return rows.Err()
	})
	return out, err
}

// ExportedThrough implements ArchiveStore.
func (s *sqlStore) ExportedThrough(ctx context.Context, sc sqlstore.Scope) (int64, error) {
	tenant, err := tenantOf(sc)
	if err != nil {
		return 0, err
	}
	var n int64
	err = s.db.InReadTx(ctx, sc, func(tx *sqlstore.Tx) error {
		return tx.QueryRowContext(ctx, s.a.exportedThrough, tenant.String()).Scan(&n)
	})
	return n, err
}

// RecordExport implements ArchiveStore.
func (s *sqlStore) RecordExport(ctx context.Context, sc sqlstore.Scope, x Export, emit func() ([]events.Event, error)) (bool, error) {
	tenant, err := tenantOf(sc)
	if err != nil {
		return false, err
	}
	if tenant != x.TenantID {
		return false, errScope
	}
	var inserted bool
	err = s.db.InTx(ctx, sc, func(tx *sqlstore.Tx) error {
		if err := tx.QueryRowContext(ctx, s.a.recordExport, tenant.String(), x.FromSeq, x.ToSeq, x.Count, x.Blob, x.SHA256,
			hex.EncodeToString(x.FirstPrevHash), hex.EncodeToString(x.LastHash), x.EvidenceID, x.ExportedAt.UTC()).Scan(&inserted); err != nil {
			return err
		}
		if !inserted || emit == nil {
			return nil
		}
		evs, err := emit()
		if err != nil {
			return err
		}
		return outbox.Emit(ctx, tx, evs...)
	})
	if err != nil {
		return false, err
	}
	return inserted, nil
}

// Exports implements ArchiveStore.
func (s *sqlStore) Exports(ctx context.Context, sc sqlstore.Scope, afterFrom int64, limit int) ([]Export, error) {
	tenant, err := tenantOf(sc)
	if err != nil {
		return nil, err
	}
	var out []Export
	err = s.db.InReadTx(ctx, sc, func(tx *sqlstore.Tx) error {
		rows, err := tx.QueryContext(ctx, s.a.listExports, tenant.String(), afterFrom, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			x, err := scanExport(tenant, rows)
			if err != nil {
				return err
			}
			out = append(out, x)
		}
		return rows.Err()
	})
	return out, err
}

// ExportEnding implements ArchiveStore.
func (s *sqlStore) ExportEnding(ctx context.Context, sc sqlstore.Scope, toSeq int64) (Export, error) {
	tenant, err := chainRead(sc)
	if err != nil {
		return Export{}, err
	}
	var x Export
	err = s.db.InReadTx(ctx, sc, func(tx *sqlstore.Tx) error {
		var err error
		x, err = scanExport(tenant, tx.QueryRowContext(ctx, s.a.exportEnding, tenantText(tenant), toSeq))
		return err
	})
	return x, notFound(err)
}

// errNothingPurged rolls back a purge transaction that deleted nothing.
var errNothingPurged = errors.New("audit: nothing purged")

// Purge implements ArchiveStore.
func (s *sqlStore) Purge(ctx context.Context, sc sqlstore.Scope, toSeq int64, cutoff time.Time,
	record func(deleted int) (NewEntry, []events.Event, error)) (int, error) {
	tenant, err := tenantOf(sc)
	if err != nil {
		return 0, err
	}
	var deleted int
	err = s.db.InTx(ctx, sc, func(tx *sqlstore.Tx) error {
		deleted = 0
		var n int
		if err := tx.QueryRowContext(ctx, s.a.purge, tenant.String(), toSeq, cutoff.UTC()).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return errNothingPurged
		}
		ne, evs, err := record(n)
		if err != nil {
			return err
		}
		if _, err := s.appendGroupTx(ctx, tx, []GroupItem{{Tenant: tenant, Entry: ne}}, time.Now()); err != nil {
			return err
		}
		deleted = n
		return outbox.Emit(ctx, tx, evs...)
	})
	if errors.Is(err, errNothingPurged) {
		return 0, nil
	}
	return deleted, err
}
