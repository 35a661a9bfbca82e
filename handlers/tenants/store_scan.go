package tenants

import (
	"database/sql"
	"errors"
	"fmt"

	"spine/shared/sqlstore"
	"spine/shared/tenancy"
)

// Row conversion shared by both engines' stores: the column lists are the same on both.

type scanner interface{ Scan(dest ...any) error }

func scanTenant(r scanner) (Tenant, error) {
	var t Tenant
	var id, slug, status, edition string
	var prov sql.NullTime
	if err := r.Scan(&id, &t.Name, &slug, &status, &edition, &t.OwnerEmail, &t.Version, &t.CreatedAt, &t.UpdatedAt, &prov); err != nil {
		return Tenant{}, err
	}
	tid, err := tenancy.ParseTenantID(id)
	if err != nil {
		return Tenant{}, fmt.Errorf("tenants: stored id %q: %w", id, err)
	}
	t.ID, t.Slug, t.Status, t.EditionCode = tid, Slug(slug), tenancy.Status(status), EditionCode(edition)
	t.CreatedAt, t.UpdatedAt = t.CreatedAt.UTC(), t.UpdatedAt.UTC()
	if prov.Valid {
		p := prov.Time.UTC()
		t.ProvisionedAt = &p
	}
	return t, nil
}

func scanTenants(rows *sql.Rows) ([]Tenant, error) {
	defer rows.Close()
	var out []Tenant
	for rows.Next() {
		t, err := scanTenant(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

func scanSteps(rows *sql.Rows) ([]Step, error) {
	defer rows.Close()
	var out []Step
	for rows.Next() {
		var st Step
		var status string
		if err := rows.Scan(&st.Seq, &st.Name, &status, &st.Attempts, &st.LastError, &st.UpdatedAt); err != nil {
			return nil, err
		}
		st.Status, st.UpdatedAt = StepStatus(status), st.UpdatedAt.UTC()
		out = append(out, st)
	}
	return out, rows.Err()
}

func scanIDs(rows *sql.Rows) ([]tenancy.TenantID, error) {
	defer rows.Close()
	var out []tenancy.TenantID
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		id, err := tenancy.ParseTenantID(s)
		if err != nil {
			return nil, err
		}
		out = append(out, id)
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

// createError maps Create's constraint violations to the service's sentinels.
func createError(err error) error {
	if errors.Is(err, sqlstore.ErrUniqueViolation) {
		switch sqlstore.Constraint(err) {
		case "tenants_slug_key":
			return fmt.Errorf("%w: %w", ErrSlugTaken, err)
		}
	}
	return err
}
