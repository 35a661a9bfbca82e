package audit

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"spine/shared/inbox"
	"spine/shared/outbox"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
)

// msStore is the Azure SQL (SQL Server) Store, the twin of pgStore: same semantics, same
// sentinels, its own T-SQL. Every statement is a package-level msq* constant so that
// store_sqlserver_test.go can check placeholders and argument counts without a server.
//
// Driver facts this file relies on (go-mssqldb):
//   - Parameters are @p1..@pN. Go strings travel as nvarchar, ints as bigint, []byte as varbinary.
//     The payload is therefore passed as a string: bytes converted into nvarchar would be read as
//     UTF-16.
//   - A uniqueidentifier read back raw arrives as bytes in SQL Server's mixed-endian order, so ids
//     are always selected as LOWER(CONVERT(char(36), ...)), the canonical text the hash covers.
//   - time.Time travels as datetimeoffset(7). Converted into a datetime2(6) column it keeps its
//     clock reading and drops the offset, so every time is passed in UTC; comparisons CAST the
//     parameter to datetime2(6), so the column keeps its type and its index.
type msStore struct{ db *sqlstore.DB }

var _ Store = (*msStore)(nil)

// NewSQLServerStore returns the Azure SQL store over db (the runtime user's connection).
func NewSQLServerStore(db *sqlstore.DB) Store { return &msStore{db: db} }

// msEntryCols is the column list scanEntry reads, in its order.
const msEntryCols = `seq, LOWER(CONVERT(char(36), entry_id)), occurred_at, recorded_at, actor_type, actor_id, action,
	resource_type, resource_id, trace_id, correlation_id, COALESCE(LOWER(CONVERT(char(36), source_event_id)), ''), payload,
	prev_hash, hash`

// Open ends of a time range: the extremes of datetime2.
var (
	msMinTime = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	msMaxTime = time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC)
)

const (
	// msqLockTenant takes the tenant's append lock: an exclusive application lock owned by the
	// transaction (released at commit or rollback), named after the tenant, so appends for one
	// tenant queue and different tenants never meet. sp_getapplock answers < 0 when the lock was
	// not granted (timeout, deadlock victim); THROW then fails the transaction.
	msqLockTenant = `DECLARE @resource nvarchar(255) = @p1, @granted int;
		EXEC @granted = sp_getapplock @Resource = @resource, @LockMode = 'Exclusive', @LockOwner = 'Transaction', @LockTimeout = 30000;
		IF @granted < 0 THROW 51000, 'audit: the tenant append lock was not granted', 1;`

	// msqLastLink reads the tenant's last (seq, hash) after the lock is held. READCOMMITTEDLOCK
	// reads the latest committed row rather than a row version, whatever the database's
	// snapshot settings, so the previous lock holder's entries are always seen.
	msqLastLink = `SELECT TOP (1) seq, hash FROM dbo.audit_entries WITH (READCOMMITTEDLOCK)
		WHERE tenant_id = @p1 ORDER BY seq DESC`

	msqInsertEntry = `INSERT INTO dbo.audit_entries (tenant_id, seq, entry_id, occurred_at, recorded_at,
		actor_type, actor_id, action, resource_type, resource_id, trace_id, correlation_id, source_event_id,
		payload, prev_hash, hash)
		VALUES (@p1, @p2, @p3, @p4, @p5, @p6, @p7, @p8, @p9, @p10, @p11, @p12, @p13, @p14, @p15, @p16)`

	msqGetEntry = `SELECT ` + msEntryCols + ` FROM dbo.audit_entries WHERE tenant_id = @p1 AND entry_id = @p2`

	// msqQuery applies every filter, an empty string meaning "any". OPTION (RECOMPILE) plans each
	// execution with its actual values, so the unused filters fold away and the index that fits
	// the used ones is sought. The DATALENGTH terms make equality exact: SQL Server's = ignores
	// trailing spaces, PostgreSQL's does not.
	msqQuery = `SELECT TOP (@p10) ` + msEntryCols + ` FROM dbo.audit_entries
		WHERE tenant_id = @p1 AND seq > @p2
		AND occurred_at >= CAST(@p3 AS datetime2(6)) AND occurred_at < CAST(@p4 AS datetime2(6))
		AND (@p5 = N'' OR (actor_id = @p5 AND DATALENGTH(actor_id) = DATALENGTH(@p5)))
		AND (@p6 = N'' OR (action = @p6 AND DATALENGTH(action) = DATALENGTH(@p6)))
		AND (@p7 = N'' OR (resource_type = @p7 AND DATALENGTH(resource_type) = DATALENGTH(@p7)))
		AND (@p8 = N'' OR (resource_id = @p8 AND DATALENGTH(resource_id) = DATALENGTH(@p8)))
		AND (@p9 = N'' OR trace_id = @p9)
		ORDER BY seq
		OPTION (RECOMPILE)`

	msqSeqRange = `SELECT COALESCE(MIN(seq), 0), COALESCE(MAX(seq), 0) FROM dbo.audit_entries
		WHERE tenant_id = @p1 AND occurred_at >= CAST(@p2 AS datetime2(6)) AND occurred_at < CAST(@p3 AS datetime2(6))`

	msqRange = `SELECT TOP (@p4) ` + msEntryCols + ` FROM dbo.audit_entries
		WHERE tenant_id = @p1 AND seq > @p2 AND seq <= @p3 ORDER BY seq`
)

// msRange returns the bounds of a time range with open ends made explicit, in UTC.
func msRange(from, to time.Time) (time.Time, time.Time) {
	if from.IsZero() {
		from = msMinTime
	}
	if to.IsZero() {
		to = msMaxTime
	}
	return from.UTC(), to.UTC()
}

// Append implements Store; see appendOne.
func (s *msStore) Append(ctx context.Context, tenant tenancy.TenantID, entries []NewEntry, emit EmitFunc, claim *InboxClaim) ([]Entry, bool, error) {
	return appendOne(ctx, s.db, tenant, entries, emit, claim, s.appendTx)
}

// AppendEvents implements Store; see appendEvents.
func (s *msStore) AppendEvents(ctx context.Context, items []EventItem) ([]EventOutcome, error) {
	return appendEvents(ctx, s.db, items, s.appendTx)
}

// appendTx is Append's body inside a transaction already in tenant's scope.
func (s *msStore) appendTx(ctx context.Context, tx *sqlstore.Tx, tenant tenancy.TenantID, entries []NewEntry, emit EmitFunc, claim *InboxClaim) ([]Entry, bool, error) {
	if claim != nil {
		first, err := inbox.Claim(ctx, tx, claim.Consumer, claim.EventID, claim.EventType)
		if err != nil {
			return nil, false, err
		}
		if !first {
			return nil, true, nil
		}
	}
	if _, err := tx.ExecContext(ctx, msqLockTenant, "audit:"+tenant.String()); err != nil {
		return nil, false, err
	}
	var lastSeq int64
	var lastHash []byte
	err := tx.QueryRowContext(ctx, msqLastLink, tenant.String()).Scan(&lastSeq, &lastHash)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, false, err
	}
	out := link(tenant, lastSeq, lastHash, entries, time.Now())
	for i := range out {
		e := &out[i]
		if _, err := tx.ExecContext(ctx, msqInsertEntry,
			tenant.String(), e.Seq, e.ID, e.OccurredAt.UTC(), e.RecordedAt.UTC(), e.Actor.Type, e.Actor.ID, e.Action,
			e.Resource.Type, e.Resource.ID, e.TraceID, e.CorrelationID, nullUUID(e.SourceEventID),
			string(e.Payload), e.PrevHash, e.Hash); err != nil {
			return nil, false, err
		}
	}
	if emit == nil {
		return out, false, nil
	}
	evs, err := emit(out)
	if err != nil {
		return nil, false, err
	}
	return out, false, outbox.Emit(ctx, tx, evs...)
}

func (s *msStore) Get(ctx context.Context, tenant tenancy.TenantID, id string) (Entry, error) {
	var e Entry
	err := s.db.InReadTx(ctx, sqlstore.TenantScope(tenant), func(tx *sqlstore.Tx) error {
		var err error
		e, err = scanEntry(tenant, tx.QueryRowContext(ctx, msqGetEntry, tenant.String(), id))
		return err
	})
	return e, notFound(err)
}

func (s *msStore) Query(ctx context.Context, tenant tenancy.TenantID, f Filter) ([]Entry, error) {
	from, to := msRange(f.From, f.To)
	var out []Entry
	err := s.db.InReadTx(ctx, sqlstore.TenantScope(tenant), func(tx *sqlstore.Tx) error {
		rows, err := tx.QueryContext(ctx, msqQuery, tenant.String(), f.AfterSeq, from, to,
			f.ActorID, f.Action, f.ResourceType, f.ResourceID, f.TraceID, f.Limit)
		if err != nil {
			return err
		}
		out, err = scanEntries(tenant, rows)
		return err
	})
	return out, err
}

func (s *msStore) SeqRange(ctx context.Context, tenant tenancy.TenantID, from, to time.Time) (int64, int64, error) {
	lo, hi := msRange(from, to)
	var first, last int64
	err := s.db.InReadTx(ctx, sqlstore.TenantScope(tenant), func(tx *sqlstore.Tx) error {
		return tx.QueryRowContext(ctx, msqSeqRange, tenant.String(), lo, hi).Scan(&first, &last)
	})
	return first, last, err
}

func (s *msStore) Range(ctx context.Context, tenant tenancy.TenantID, afterSeq, throughSeq int64, limit int) ([]Entry, error) {
	var out []Entry
	err := s.db.InReadTx(ctx, sqlstore.TenantScope(tenant), func(tx *sqlstore.Tx) error {
		rows, err := tx.QueryContext(ctx, msqRange, tenant.String(), afterSeq, throughSeq, limit)
		if err != nil {
			return err
		}
		out, err = scanEntries(tenant, rows)
		return err
	})
	return out, err
}
