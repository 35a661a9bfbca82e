package tenants

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"spine/shared/events"
	"spine/shared/outbox"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
)

// msStore is the Azure SQL (SQL Server) Store, the twin of pgStore: same semantics, same
// sentinels, its own T-SQL. Every statement is a package-level msq* constant so that
// store_sqlserver_test.go can check placeholders and argument counts without a server.
//
// Driver facts this file relies on (go-mssqldb):
//   - Parameters are @p1..@pN. Go strings travel as nvarchar and ints as bigint; SQL Server
//     converts them implicitly (nvarchar → uniqueidentifier keeps index seeks, since
//     uniqueidentifier has the higher type precedence).
//   - A uniqueidentifier read back raw arrives as bytes in SQL Server's mixed-endian order, so
//     ids are always read through dbo.tenants.tenant_key, the persisted canonical lowercase text.
//   - time.Time travels as datetimeoffset(7). Converted into a datetime2(6) column it keeps its
//     clock reading and drops the offset, so every time is passed in UTC (msUTC).
type msStore struct{ db *sqlstore.DB }

var _ Store = (*msStore)(nil)

// NewSQLServerStore returns the Azure SQL store over db (the runtime user's connection).
func NewSQLServerStore(db *sqlstore.DB) Store { return &msStore{db: db} }

// msTenantCols is the column list scanTenant reads, in its order. tenant_key, not tenant_id: see msStore.
const msTenantCols = `tenant_key, name, slug, status, edition_code, owner_email, version, created_at, updated_at, provisioned_at`

const (
	// msqInsertIdempotency is PostgreSQL's INSERT ... ON CONFLICT DO NOTHING. UPDLOCK+HOLDLOCK
	// range-locks the (caller, key) slot, so a concurrent request with the same key waits and then
	// inserts nothing (RowsAffected 0 → errIdempotencyRace); a duplicate that still slips through
	// fails on idempotency_keys_pkey, which createError maps to the same sentinel.
	msqInsertIdempotency = `INSERT INTO dbo.idempotency_keys
		(caller, [key], request_hash, status_code, response_body, location, created_at)
		SELECT @p1, @p2, @p3, @p4, @p5, @p6, @p7
		WHERE NOT EXISTS (SELECT 1 FROM dbo.idempotency_keys WITH (UPDLOCK, HOLDLOCK) WHERE caller = @p1 AND [key] = @p2)`

	msqInsertTenant = `INSERT INTO dbo.tenants
		(tenant_id, name, slug, status, edition_code, owner_email, version, created_at, updated_at, provisioned_at)
		VALUES (@p1, @p2, @p3, @p4, @p5, @p6, @p7, @p8, @p9, @p10)`

	msqInsertStep = `INSERT INTO dbo.tenant_provisioning_steps
		(tenant_id, seq, name, status, attempts, updated_at) VALUES (@p1, @p2, @p3, @p4, 0, @p5)`

	msqTenantByID = `SELECT ` + msTenantCols + ` FROM dbo.tenants WHERE tenant_id = @p1`

	// msqTenantBySlug casts the nvarchar parameter to the column's type so the unique index on
	// slug is sought rather than scanned (varchar vs nvarchar would convert the column). The cast
	// cannot truncate or fold case: GetBySlug only sends valid slugs.
	msqTenantBySlug = `SELECT ` + msTenantCols + ` FROM dbo.tenants WHERE slug = CAST(@p1 AS varchar(63))`

	msqSteps = `SELECT seq, name, status, attempts, COALESCE(last_error, ''), updated_at
		FROM dbo.tenant_provisioning_steps WHERE tenant_id = @p1 ORDER BY seq`

	// msqList pages on tenant_key (see the migration): comparing and ordering the text form gives
	// PostgreSQL's uuid order, which uniqueidentifier's own order does not. The cast gives the
	// parameter the column's type, so the column's binary collation applies and the index on
	// tenant_key is sought. TOP rather than OFFSET/FETCH because FETCH NEXT 0 ROWS is an error
	// where PostgreSQL's LIMIT 0 returns nothing.
	msqList = `SELECT TOP (@p3) ` + msTenantCols + ` FROM dbo.tenants
		WHERE tenant_key > CAST(@p1 AS char(36)) AND (@p2 = N'' OR status = @p2)
		ORDER BY tenant_key`

	// msqLockTenant is SELECT ... FOR UPDATE: UPDLOCK makes concurrent Updates of one tenant queue
	// here (readers are not blocked), ROWLOCK keeps it to the row, HOLDLOCK keeps the lock (and,
	// for a missing id, the empty range) until commit.
	msqLockTenant = `SELECT ` + msTenantCols + ` FROM dbo.tenants WITH (UPDLOCK, ROWLOCK, HOLDLOCK) WHERE tenant_id = @p1`

	msqUpdateTenant = `UPDATE dbo.tenants SET name = @p2, slug = @p3, status = @p4, edition_code = @p5,
		owner_email = @p6, version = @p7, updated_at = @p8, provisioned_at = @p9 WHERE tenant_id = @p1`

	msqBumpTenant = `UPDATE dbo.tenants SET version = version + 1, updated_at = @p2 WHERE tenant_id = @p1`

	msqUpdateStep = `UPDATE dbo.tenant_provisioning_steps
		SET status = @p3, attempts = attempts + 1, last_error = @p4, updated_at = @p5
		WHERE tenant_id = @p1 AND seq = @p2`

	msqRetryDue = `SELECT TOP (@p3) t.tenant_key FROM dbo.tenants t
		WHERE t.status = 'Provisioning' AND EXISTS (
			SELECT 1 FROM dbo.tenant_provisioning_steps s
			WHERE s.tenant_id = t.tenant_id AND s.status = 'Failed' AND s.updated_at < @p1 AND s.attempts < @p2)
		ORDER BY t.updated_at`

	msqIdempotency = `SELECT caller, [key], request_hash, status_code, response_body, location, created_at
		FROM dbo.idempotency_keys WHERE caller = @p1 AND [key] = @p2`
)

// msUTC returns t in UTC: go-mssqldb sends a datetimeoffset, and a datetime2 column keeps its
// clock reading, so a non-UTC time would be stored shifted.
func msUTC(t time.Time) time.Time { return t.UTC() }

// msNullUTC is msUTC for a nullable time (NULL for nil).
func msNullUTC(t *time.Time) sql.NullTime {
	if t == nil {
		return sql.NullTime{}
	}
	return sql.NullTime{Time: t.UTC(), Valid: true}
}

// msNoRows is the error of a lookup that cannot match, shaped as if the database had said so.
func msNoRows() error { return notFound(sqlstore.Translate(sqlstore.SQLServer, sql.ErrNoRows)) }

func (s *msStore) Create(ctx context.Context, t Tenant, steps []Step, evs []events.Event, rec *IdempotencyRecord) error {
	err := s.db.InTx(ctx, sqlstore.PlatformScope(), func(tx *sqlstore.Tx) error {
		if rec != nil {
			res, err := tx.ExecContext(ctx, msqInsertIdempotency,
				rec.Caller, rec.Key, rec.RequestHash, rec.StatusCode, rec.Body, rec.Location, msUTC(rec.CreatedAt))
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 0 {
				return errIdempotencyRace
			}
		}
		if _, err := tx.ExecContext(ctx, msqInsertTenant,
			t.ID.String(), t.Name, string(t.Slug), string(t.Status), string(t.EditionCode), t.OwnerEmail,
			t.Version, msUTC(t.CreatedAt), msUTC(t.UpdatedAt), msNullUTC(t.ProvisionedAt)); err != nil {
			return err
		}
		for _, st := range steps {
			if _, err := tx.ExecContext(ctx, msqInsertStep,
				t.ID.String(), st.Seq, st.Name, string(st.Status), msUTC(st.UpdatedAt)); err != nil {
				return err
			}
		}
		return outbox.Emit(ctx, tx, evs...)
	})
	return createError(err)
}

func (s *msStore) Get(ctx context.Context, sc sqlstore.Scope, id tenancy.TenantID) (View, error) {
	return s.view(ctx, sc, msqTenantByID, id.String())
}

// GetBySlug answers "not found" for a string that is not a valid slug without asking: no stored
// row can match one (the CHECK constraint, as in PostgreSQL), and SQL Server would otherwise
// compare it case-insensitively and ignoring trailing spaces, matching rows PostgreSQL would not.
func (s *msStore) GetBySlug(ctx context.Context, sc sqlstore.Scope, slug Slug) (View, error) {
	if _, err := ParseSlug(string(slug)); err != nil {
		return View{}, msNoRows()
	}
	return s.view(ctx, sc, msqTenantBySlug, string(slug))
}

// view reads one tenant (query selects msTenantCols by one parameter) and its steps.
func (s *msStore) view(ctx context.Context, sc sqlstore.Scope, query string, arg any) (View, error) {
	var v View
	err := s.db.InReadTx(ctx, sc, func(tx *sqlstore.Tx) error {
		t, err := scanTenant(tx.QueryRowContext(ctx, query, arg))
		if err != nil {
			return err
		}
		v.Tenant = t
		v.Steps, err = msSteps(ctx, tx, t.ID)
		return err
	})
	return v, notFound(err)
}

func msSteps(ctx context.Context, tx *sqlstore.Tx, id tenancy.TenantID) ([]Step, error) {
	rows, err := tx.QueryContext(ctx, msqSteps, id.String())
	if err != nil {
		return nil, err
	}
	return scanSteps(rows)
}

// List: an unknown status filter matches nothing without asking, as PostgreSQL's CHECK makes it
// match nothing there; SQL Server would compare it case-insensitively.
func (s *msStore) List(ctx context.Context, sc sqlstore.Scope, q ListQuery) ([]Tenant, error) {
	if q.Status != "" && !q.Status.Valid() {
		return nil, nil
	}
	var out []Tenant
	err := s.db.InReadTx(ctx, sc, func(tx *sqlstore.Tx) error {
		after := "00000000-0000-0000-0000-000000000000"
		if !q.After.IsZero() {
			after = q.After.String()
		}
		rows, err := tx.QueryContext(ctx, msqList, after, string(q.Status), q.Limit)
		if err != nil {
			return err
		}
		out, err = scanTenants(rows)
		return err
	})
	return out, err
}

func (s *msStore) Update(ctx context.Context, sc sqlstore.Scope, id tenancy.TenantID, fn func(*View) ([]events.Event, error)) (View, error) {
	var v View
	err := s.db.InTx(ctx, sc, func(tx *sqlstore.Tx) error {
		t, err := scanTenant(tx.QueryRowContext(ctx, msqLockTenant, id.String()))
		if err != nil {
			return err
		}
		v = View{Tenant: t}
		if v.Steps, err = msSteps(ctx, tx, id); err != nil {
			return err
		}
		evs, err := fn(&v)
		if err != nil {
			return err
		}
		v.Tenant.Version = t.Version + 1
		v.Tenant.UpdatedAt = sqlstore.Now()
		nt := v.Tenant
		if _, err := tx.ExecContext(ctx, msqUpdateTenant,
			id.String(), nt.Name, string(nt.Slug), string(nt.Status), string(nt.EditionCode), nt.OwnerEmail,
			nt.Version, msUTC(nt.UpdatedAt), msNullUTC(nt.ProvisionedAt)); err != nil {
			return err
		}
		return outbox.Emit(ctx, tx, evs...)
	})
	if errors.Is(err, sqlstore.ErrUniqueViolation) && sqlstore.Constraint(err) == "tenants_slug_key" {
		return View{}, fmt.Errorf("%w: %w", ErrSlugTaken, err)
	}
	return v, notFound(err)
}

// RecordStep writes the tenant row before the step row (PostgreSQL's store does the reverse).
// Update locks the tenant and then reads the steps; taking the locks in the same order here means
// the two cannot deadlock when the database runs without READ_COMMITTED_SNAPSHOT, where that read
// would wait for this transaction's step lock. Both rows change or neither, as before.
func (s *msStore) RecordStep(ctx context.Context, sc sqlstore.Scope, id tenancy.TenantID, seq int, ok bool, code string) error {
	status, lastErr := StepSucceeded, sql.NullString{}
	if !ok {
		status, lastErr = StepFailed, sql.NullString{String: code, Valid: true}
	}
	err := s.db.InTx(ctx, sc, func(tx *sqlstore.Tx) error {
		now := sqlstore.Now()
		if _, err := tx.ExecContext(ctx, msqBumpTenant, id.String(), now); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, msqUpdateStep, id.String(), seq, string(status), lastErr, now)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return sql.ErrNoRows // rolls the version bump back too
		}
		return nil
	})
	return notFound(err)
}

func (s *msStore) RetryDue(ctx context.Context, before time.Time, maxAttempts, limit int) ([]tenancy.TenantID, error) {
	var ids []tenancy.TenantID
	err := s.db.InReadTx(ctx, sqlstore.PlatformScope(), func(tx *sqlstore.Tx) error {
		rows, err := tx.QueryContext(ctx, msqRetryDue, msUTC(before), maxAttempts, limit)
		if err != nil {
			return err
		}
		ids, err = scanIDs(rows)
		return err
	})
	return ids, err
}

func (s *msStore) Idempotency(ctx context.Context, caller, key string) (*IdempotencyRecord, error) {
	var rec IdempotencyRecord
	var loc sql.NullString
	err := s.db.InReadTx(ctx, sqlstore.PlatformScope(), func(tx *sqlstore.Tx) error {
		return tx.QueryRowContext(ctx, msqIdempotency, caller, key).
			Scan(&rec.Caller, &rec.Key, &rec.RequestHash, &rec.StatusCode, &rec.Body, &loc, &rec.CreatedAt)
	})
	if errors.Is(err, sqlstore.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	rec.Location = loc.String
	rec.CreatedAt = rec.CreatedAt.UTC()
	return &rec, nil
}
