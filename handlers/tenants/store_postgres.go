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

// pgStore is the PostgreSQL Store. Its SQL is the whole of what the tenants service asks of
// PostgreSQL; the SQL Server twin is in store_sqlserver.go.
type pgStore struct{ db *sqlstore.DB }

var _ Store = (*pgStore)(nil)

// NewPostgresStore returns the PostgreSQL store over db (the runtime role's connection).
func NewPostgresStore(db *sqlstore.DB) Store { return &pgStore{db: db} }

const pgTenantCols = `tenant_id, name, slug, status, edition_code, owner_email, version, created_at, updated_at, provisioned_at`

func (s *pgStore) Create(ctx context.Context, t Tenant, steps []Step, evs []events.Event, rec *IdempotencyRecord) error {
	err := s.db.InTx(ctx, sqlstore.PlatformScope(), func(tx *sqlstore.Tx) error {
		if rec != nil {
			res, err := tx.ExecContext(ctx, `INSERT INTO idempotency_keys
				(caller, key, request_hash, status_code, response_body, location, created_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`,
				rec.Caller, rec.Key, rec.RequestHash, rec.StatusCode, rec.Body, rec.Location, rec.CreatedAt)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 0 {
				return errIdempotencyRace
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO tenants (`+pgTenantCols+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
			t.ID.String(), t.Name, string(t.Slug), string(t.Status), string(t.EditionCode), t.OwnerEmail,
			t.Version, t.CreatedAt, t.UpdatedAt, t.ProvisionedAt); err != nil {
			return err
		}
		// All steps in one statement: one round trip however many steps there are.
		seqs, names, statuses := make([]int32, len(steps)), make([]string, len(steps)), make([]string, len(steps))
		for i, st := range steps {
			seqs[i], names[i], statuses[i] = int32(st.Seq), st.Name, string(st.Status)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO tenant_provisioning_steps (tenant_id, seq, name, status, attempts, updated_at)
			SELECT $1, s.seq, s.name, s.status, 0, $2 FROM unnest($3::int[], $4::text[], $5::text[]) AS s(seq, name, status)`,
			t.ID.String(), t.CreatedAt, seqs, names, statuses); err != nil {
			return err
		}
		return outbox.Emit(ctx, tx, evs...)
	})
	return createError(err)
}

func (s *pgStore) Get(ctx context.Context, sc sqlstore.Scope, id tenancy.TenantID) (View, error) {
	return s.getWhere(ctx, sc, `tenant_id = $1`, id.String())
}

func (s *pgStore) GetBySlug(ctx context.Context, sc sqlstore.Scope, slug Slug) (View, error) {
	return s.getWhere(ctx, sc, `slug = $1`, string(slug))
}

func (s *pgStore) getWhere(ctx context.Context, sc sqlstore.Scope, where string, arg any) (View, error) {
	var v View
	err := s.db.InReadTx(ctx, sc, func(tx *sqlstore.Tx) error {
		t, err := scanTenant(tx.QueryRowContext(ctx, `SELECT `+pgTenantCols+` FROM tenants WHERE `+where, arg))
		if err != nil {
			return err
		}
		v.Tenant = t
		v.Steps, err = pgSteps(ctx, tx, t.ID)
		return err
	})
	return v, notFound(err)
}

func pgSteps(ctx context.Context, tx *sqlstore.Tx, id tenancy.TenantID) ([]Step, error) {
	rows, err := tx.QueryContext(ctx, `SELECT seq, name, status, attempts, COALESCE(last_error, ''), updated_at
		FROM tenant_provisioning_steps WHERE tenant_id = $1 ORDER BY seq`, id.String())
	if err != nil {
		return nil, err
	}
	return scanSteps(rows)
}

func (s *pgStore) List(ctx context.Context, sc sqlstore.Scope, q ListQuery) ([]Tenant, error) {
	var out []Tenant
	err := s.db.InReadTx(ctx, sc, func(tx *sqlstore.Tx) error {
		after := "00000000-0000-0000-0000-000000000000"
		if !q.After.IsZero() {
			after = q.After.String()
		}
		rows, err := tx.QueryContext(ctx, `SELECT `+pgTenantCols+` FROM tenants
			WHERE tenant_id > $1 AND ($2 = '' OR status = $2) ORDER BY tenant_id LIMIT $3`,
			after, string(q.Status), q.Limit)
		if err != nil {
			return err
		}
		out, err = scanTenants(rows)
		return err
	})
	return out, err
}

func (s *pgStore) Update(ctx context.Context, sc sqlstore.Scope, id tenancy.TenantID, fn func(*View) ([]events.Event, error)) (View, error) {
	var v View
	err := s.db.InTx(ctx, sc, func(tx *sqlstore.Tx) error {
		t, err := scanTenant(tx.QueryRowContext(ctx, `SELECT `+pgTenantCols+` FROM tenants WHERE tenant_id = $1 FOR UPDATE`, id.String()))
		if err != nil {
			return err
		}
		v = View{Tenant: t}
		if v.Steps, err = pgSteps(ctx, tx, id); err != nil {
			return err
		}
		evs, err := fn(&v)
		if err != nil {
			return err
		}
		v.Tenant.Version = t.Version + 1
		v.Tenant.UpdatedAt = sqlstore.Now()
		nt := v.Tenant
		if _, err := tx.ExecContext(ctx, `UPDATE tenants SET name = $2, slug = $3, status = $4, edition_code = $5,
			owner_email = $6, version = $7, updated_at = $8, provisioned_at = $9 WHERE tenant_id = $1`,
			id.String(), nt.Name, string(nt.Slug), string(nt.Status), string(nt.EditionCode), nt.OwnerEmail,
			nt.Version, nt.UpdatedAt, nt.ProvisionedAt); err != nil {
			return err
		}
		return outbox.Emit(ctx, tx, evs...)
	})
	if errors.Is(err, sqlstore.ErrUniqueViolation) && sqlstore.Constraint(err) == "tenants_slug_key" {
		return View{}, fmt.Errorf("%w: %w", ErrSlugTaken, err)
	}
	return v, notFound(err)
}

func (s *pgStore) RecordStep(ctx context.Context, sc sqlstore.Scope, id tenancy.TenantID, seq int, ok bool, code string) error {
	status, lastErr := StepSucceeded, sql.NullString{}
	if !ok {
		status, lastErr = StepFailed, sql.NullString{String: code, Valid: true}
	}
	err := s.db.InTx(ctx, sc, func(tx *sqlstore.Tx) error {
		now := sqlstore.Now()
		res, err := tx.ExecContext(ctx, `UPDATE tenant_provisioning_steps
			SET status = $3, attempts = attempts + 1, last_error = $4, updated_at = $5
			WHERE tenant_id = $1 AND seq = $2`, id.String(), seq, string(status), lastErr, now)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return sql.ErrNoRows
		}
		_, err = tx.ExecContext(ctx, `UPDATE tenants SET version = version + 1, updated_at = $2 WHERE tenant_id = $1`, id.String(), now)
		return err
	})
	return notFound(err)
}

func (s *pgStore) RetryDue(ctx context.Context, before time.Time, maxAttempts, limit int) ([]tenancy.TenantID, error) {
	var ids []tenancy.TenantID
	err := s.db.InReadTx(ctx, sqlstore.PlatformScope(), func(tx *sqlstore.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT t.tenant_id FROM tenants t
			WHERE t.status = 'Provisioning' AND EXISTS (
				SELECT 1 FROM tenant_provisioning_steps s
				WHERE s.tenant_id = t.tenant_id AND s.status = 'Failed' AND s.updated_at < $1 AND s.attempts < $2)
			ORDER BY t.updated_at LIMIT $3`, before, maxAttempts, limit)
		if err != nil {
			return err
		}
		ids, err = scanIDs(rows)
		return err
	})
	return ids, err
}

func (s *pgStore) Idempotency(ctx context.Context, caller, key string) (*IdempotencyRecord, error) {
	var rec IdempotencyRecord
	var loc sql.NullString
	err := s.db.InReadTx(ctx, sqlstore.PlatformScope(), func(tx *sqlstore.Tx) error {
		return tx.QueryRowContext(ctx, `SELECT caller, key, request_hash, status_code, response_body, location, created_at
			FROM idempotency_keys WHERE caller = $1 AND key = $2`, caller, key).
			Scan(&rec.Caller, &rec.Key, &rec.RequestHash, &rec.StatusCode, &rec.Body, &loc, &rec.CreatedAt)
	})
	if errors.Is(err, sqlstore.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	rec.Location = loc.String
	return &rec, nil
}
