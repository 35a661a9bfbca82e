package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	mssql "github.com/microsoft/go-mssqldb"
)

func TestTranslate_DriverCodesToSentinels(t *testing.T) {
	for _, tc := range []struct {
		name       string
		d          Dialect
		err        error
		want       error
		constraint string
	}{
		{"pg unique", Postgres, &pgconn.PgError{Code: "23505", ConstraintName: "tenants_slug_key"}, ErrUniqueViolation, "tenants_slug_key"},
		{"pg fk", Postgres, &pgconn.PgError{Code: "23503", ConstraintName: "fk"}, ErrForeignKey, "fk"},
		{"pg serialization", Postgres, &pgconn.PgError{Code: "40001"}, ErrRetryable, ""},
		{"pg deadlock", Postgres, &pgconn.PgError{Code: "40P01"}, ErrRetryable, ""},
		{"pg permission", Postgres, &pgconn.PgError{Code: "42501"}, ErrPermission, ""},
		{"pg shutdown", Postgres, &pgconn.PgError{Code: "57P01"}, ErrUnavailable, ""},
		{"no rows", Postgres, sql.ErrNoRows, ErrNotFound, ""},
		{"ms unique constraint", SQLServer, mssql.Error{Number: 2627, Message: "Violation of UNIQUE KEY constraint 'tenants_slug_key'. Cannot insert duplicate key in object 'dbo.tenants'. The duplicate key value is (acme)."}, ErrUniqueViolation, "tenants_slug_key"},
		{"ms unique index", SQLServer, mssql.Error{Number: 2601, Message: "Cannot insert duplicate key row in object 'dbo.tenants' with unique index 'tenants_key'. The duplicate key value is (x)."}, ErrUniqueViolation, "tenants_key"},
		{"ms deadlock", SQLServer, mssql.Error{Number: 1205}, ErrRetryable, ""},
		{"ms permission", SQLServer, mssql.Error{Number: 229}, ErrPermission, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Translate(tc.d, fmt.Errorf("wrapped: %w", tc.err))
			if !errors.Is(got, tc.want) {
				t.Fatalf("Translate = %v, want %v", got, tc.want)
			}
			if Constraint(got) != tc.constraint {
				t.Fatalf("constraint = %q, want %q", Constraint(got), tc.constraint)
			}
		})
	}
	if err := Translate(Postgres, context.Canceled); !errors.Is(err, context.Canceled) || errors.Is(err, ErrUnavailable) {
		t.Fatalf("context errors pass through: %v", err)
	}
}
