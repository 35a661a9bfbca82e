package tenants

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"spine/shared/events"
	"spine/shared/idempotency"
	"spine/shared/outbox"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
)

// sqlStore is the Store on either engine: each method is written once, here, and sends its
// engine's statements (statements.go; pgStatements or msStatements). Whatever differs between
// the engines is statement text; the Go below never asks which engine it talks to.
//
// It passes every time in UTC (SQL Server keeps a datetimeoffset's clock reading in a datetime2
// column; PostgreSQL's timestamptz does not mind), ids as canonical text, and nullable values as
// sql.Null*, as the statement sets expect.
type sqlStore struct {
	db *sqlstore.DB
	q  *statements
}

var _ Store = (*sqlStore)(nil)

// NewPostgresStore returns the store over a PostgreSQL db (the runtime role's connection).
func NewPostgresStore(db *sqlstore.DB) Store { return &sqlStore{db: db, q: &pgStatements} }

// NewSQLServerStore returns the store over an Azure SQL db (the runtime user's connection).
func NewSQLServerStore(db *sqlstore.DB) Store { return &sqlStore{db: db, q: &msStatements} }

// Create implements Store: the tenant, its steps and its events' outbox rows in one statement
// (create), after the Idempotency-Key's claim when there is one.
func (s *sqlStore) Create(ctx context.Context, sc sqlstore.Scope, t Tenant, steps []Step, evs []events.Event) error {
	rows, err := stepRows(steps)
	if err != nil {
		return err
	}
	outboxRows, err := outbox.Rows(evs)
	if err != nil {
		return err
	}
	err = s.db.InTx(ctx, sc, func(tx *sqlstore.Tx) error {
		if err := idempotency.Claim(ctx, tx); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q.create,
			t.ID.String(), t.Name, string(t.Slug), string(t.Status), string(t.EditionCode), t.OwnerEmail,
			t.Version, sqlstore.UTC(t.CreatedAt), sqlstore.UTC(t.UpdatedAt), sqlstore.NullUTC(t.ProvisionedAt),
			rows, outboxRows, sqlstore.UTC(sqlstore.Now())); err != nil {
			return err
		}
		if len(evs) > 0 {
			outbox.Emitted(tx)
		}
		return nil
	})
	return createError(err)
}

// stepRows is create's steps parameter: the steps as a JSON array of {"seq","name","status"}
// ("[]" for none).
func stepRows(steps []Step) (string, error) {
	type row struct {
		Seq    int    `json:"seq"`
		Name   string `json:"name"`
		Status string `json:"status"`
	}
	rows := make([]row, len(steps))
	for i, st := range steps {
		rows[i] = row{Seq: st.Seq, Name: st.Name, Status: string(st.Status)}
	}
	b, err := json.Marshal(rows)
	if err != nil {
		return "", fmt.Errorf("tenants: encoding steps: %w", err)
	}
	return string(b), nil
}

// Get implements Store.
func (s *sqlStore) Get(ctx context.Context, sc sqlstore.Scope, id tenancy.TenantID) (View, error) {
	return s.view(ctx, sc, s.q.tenantByID, id.String())
}

// GetBySlug implements Store. A string that is not a valid slug is "not found" without asking:
// no stored row can match one (both engines' CHECK constraints), and SQL Server would otherwise
// compare it case-insensitively and ignoring trailing spaces, matching rows PostgreSQL would not.
func (s *sqlStore) GetBySlug(ctx context.Context, sc sqlstore.Scope, slug Slug) (View, error) {
	if _, err := ParseSlug(string(slug)); err != nil {
		return View{}, notFound(sqlstore.Translate(s.db.Dialect, sql.ErrNoRows))
	}
	return s.view(ctx, sc, s.q.tenantBySlug, string(slug))
}

// view reads one tenant (query returns tenantColumns for one parameter, arg) and its steps.
func (s *sqlStore) view(ctx context.Context, sc sqlstore.Scope, query string, arg any) (View, error) {
	var v View
	err := s.db.InReadTx(ctx, sc, func(tx *sqlstore.Tx) error {
		t, err := scanTenant(tx.QueryRowContext(ctx, query, arg))
		if err != nil {
			return err
		}
		v.Tenant = t
		v.Steps, err = s.readSteps(ctx, tx, t.ID)
		return err
	})
	return v, notFound(err)
}

// readSteps reads the tenant's steps, in seq order.
func (s *sqlStore) readSteps(ctx context.Context, tx *sqlstore.Tx, id tenancy.TenantID) ([]Step, error) {
	rows, err := tx.QueryContext(ctx, s.q.steps, id.String())
	if err != nil {
		return nil, err
	}
	return scanSteps(rows)
}

// List implements Store. An unknown status filter matches nothing without asking, as both
// engines' CHECK constraints make it match nothing; SQL Server would compare it case-insensitively.
func (s *sqlStore) List(ctx context.Context, sc sqlstore.Scope, q ListQuery) ([]Tenant, error) {
	if q.Status != "" && !q.Status.Valid() {
		return nil, nil
	}
	after := "00000000-0000-0000-0000-000000000000"
	if !q.After.IsZero() {
		after = q.After.String()
	}
	var out []Tenant
	err := s.db.InReadTx(ctx, sc, func(tx *sqlstore.Tx) error {
		rows, err := tx.QueryContext(ctx, s.q.list, after, string(q.Status), q.Limit)
		if err != nil {
			return err
		}
		out, err = scanTenants(rows)
		return err
	})
	return out, err
}

// Update implements Store.
func (s *sqlStore) Update(ctx context.Context, sc sqlstore.Scope, id tenancy.TenantID, fn func(*View) ([]events.Event, error)) (View, error) {
	var v View
	err := s.db.InTx(ctx, sc, func(tx *sqlstore.Tx) error {
		t, err := scanTenant(tx.QueryRowContext(ctx, s.q.lockTenant, id.String()))
		if err != nil {
			return err
		}
		v = View{Tenant: t}
		if v.Steps, err = s.readSteps(ctx, tx, id); err != nil {
			return err
		}
		evs, err := fn(&v)
		if err != nil {
			return err
		}
		v.Tenant.Version = t.Version + 1
		v.Tenant.UpdatedAt = sqlstore.Now()
		nt := v.Tenant
		if _, err := tx.ExecContext(ctx, s.q.updateTenant,
			id.String(), nt.Name, string(nt.Slug), string(nt.Status), string(nt.EditionCode), nt.OwnerEmail,
			nt.Version, sqlstore.UTC(nt.UpdatedAt), sqlstore.NullUTC(nt.ProvisionedAt)); err != nil {
			return err
		}
		return outbox.Emit(ctx, tx, evs...)
	})
	if errors.Is(err, sqlstore.ErrUniqueViolation) && sqlstore.Constraint(err) == "tenants_slug_key" {
		return View{}, fmt.Errorf("%w: %w", ErrSlugTaken, err)
	}
	return v, notFound(err)
}

// RecordStep implements Store. It writes the tenant row before the step row: Update locks the
// tenant and then reads the steps, and taking the locks in the same order here means the two
// cannot deadlock on SQL Server without READ_COMMITTED_SNAPSHOT, where that read would wait for
// this transaction's step lock. Both rows change or neither.
func (s *sqlStore) RecordStep(ctx context.Context, sc sqlstore.Scope, id tenancy.TenantID, seq int, ok bool, code string) error {
	status, lastErr := StepSucceeded, sql.NullString{}
	if !ok {
		status, lastErr = StepFailed, sql.NullString{String: code, Valid: true}
	}
	err := s.db.InTx(ctx, sc, func(tx *sqlstore.Tx) error {
		now := sqlstore.Now()
		if _, err := tx.ExecContext(ctx, s.q.bumpTenant, id.String(), now); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, s.q.updateStep, id.String(), seq, string(status), lastErr, now)
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

// RetryDue implements Store.
func (s *sqlStore) RetryDue(ctx context.Context, sc sqlstore.Scope, before time.Time, maxAttempts, limit int) ([]tenancy.TenantID, error) {
	var ids []tenancy.TenantID
	err := s.db.InReadTx(ctx, sc, func(tx *sqlstore.Tx) error {
		rows, err := tx.QueryContext(ctx, s.q.retryDue, sqlstore.UTC(before), maxAttempts, limit)
		if err != nil {
			return err
		}
		ids, err = scanIDs(rows)
		return err
	})
	return ids, err
}
