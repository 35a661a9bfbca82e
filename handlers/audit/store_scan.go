package audit

import (
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"spine/shared/sqlstore"
	"spine/shared/tenancy"
)

// Row conversion shared by both engines' stores: each selects, in its own dialect, the columns
// scanEntry reads in this order: seq, entry id (canonical text), occurred_at, recorded_at,
// actor_type, actor_id, action, resource_type, resource_id, trace_id, correlation_id, source event
// id (canonical text or ''), payload (JSON text), prev_hash, hash.

type scanner interface{ Scan(dest ...any) error }

// scanEntry reads one row of tenant's entries.
func scanEntry(tenant tenancy.TenantID, r scanner) (Entry, error) {
	e := Entry{TenantID: tenant}
	var payload []byte
	if err := r.Scan(&e.Seq, &e.ID, &e.OccurredAt, &e.RecordedAt, &e.Actor.Type, &e.Actor.ID, &e.Action,
		&e.Resource.Type, &e.Resource.ID, &e.TraceID, &e.CorrelationID, &e.SourceEventID, &payload,
		&e.PrevHash, &e.Hash); err != nil {
		return Entry{}, err
	}
	e.Payload = payload
	e.OccurredAt, e.RecordedAt = e.OccurredAt.UTC(), e.RecordedAt.UTC()
	return e, nil
}

func scanEntries(tenant tenancy.TenantID, rows *sql.Rows) ([]Entry, error) {
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		e, err := scanEntry(tenant, rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// notFound maps "no row" to the service's ErrNotFound, keeping the chain.
func notFound(err error) error {
	if errors.Is(err, sqlstore.ErrNotFound) {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return err
}

// sourceEventConstraint is the unique key on (tenant_id, source_event_id) on both engines.
const sourceEventConstraint = "audit_entries_source_event_key"

// isDuplicateSourceEvent reports whether err is the violation of sourceEventConstraint: the
// tenant already has an entry for this event. SQL Server reports a unique index (error 2601) with
// the table's name first, so sqlstore.Constraint can name the table instead of the index; the
// driver's message, which names both, is consulted too.
func isDuplicateSourceEvent(err error) bool {
	if !errors.Is(err, sqlstore.ErrUniqueViolation) {
		return false
	}
	if sqlstore.Constraint(err) == sourceEventConstraint {
		return true
	}
	var ms interface{ SQLErrorMessage() string }
	return errors.As(err, &ms) && strings.Contains(ms.SQLErrorMessage(), "'"+sourceEventConstraint+"'")
}
