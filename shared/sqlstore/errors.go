package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	mssql "github.com/microsoft/go-mssqldb"
)

// Sentinels that stores wrap driver errors into. Stores translate these further into their own
// domain sentinels (ErrSlugTaken, ...); the HTTP edge never sees a driver's text.
var (
	ErrNotFound        = errors.New("sqlstore: no rows")
	ErrUniqueViolation = errors.New("sqlstore: unique violation")
	ErrForeignKey      = errors.New("sqlstore: foreign key violation")
	ErrCheckViolation  = errors.New("sqlstore: check violation")
	ErrRetryable       = errors.New("sqlstore: serialization failure or deadlock")
	ErrPermission      = errors.New("sqlstore: permission denied")
	ErrUnavailable     = errors.New("sqlstore: database unavailable")
)

// ConstraintError is a constraint violation with the constraint's name, so a store can tell
// which unique key was hit. It unwraps to one of the sentinels above and to the driver error.
type ConstraintError struct {
	Kind       error
	Constraint string
	cause      error
}

// Error names the violation and the constraint.
func (e *ConstraintError) Error() string {
	return fmt.Sprintf("%v (constraint %s)", e.Kind, e.Constraint)
}

// Unwrap exposes the sentinel and the driver error.
func (e *ConstraintError) Unwrap() []error { return []error{e.Kind, e.cause} }

// Constraint returns the violated constraint's name when err is a ConstraintError.
func Constraint(err error) string {
	var ce *ConstraintError
	if errors.As(err, &ce) {
		return ce.Constraint
	}
	return ""
}

// Translate maps driver errors to sentinels (wrapping, so errors.Is finds both). Errors that are
// already translated, and context errors, pass through unchanged.
func Translate(d Dialect, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		switch pg.Code {
		case "23505":
			return &ConstraintError{Kind: ErrUniqueViolation, Constraint: pg.ConstraintName, cause: err}
		case "23503":
			return &ConstraintError{Kind: ErrForeignKey, Constraint: pg.ConstraintName, cause: err}
		case "23514":
			return &ConstraintError{Kind: ErrCheckViolation, Constraint: pg.ConstraintName, cause: err}
		case "40001", "40P01":
			return fmt.Errorf("%w: %w", ErrRetryable, err)
		case "42501":
			return fmt.Errorf("%w: %w", ErrPermission, err)
		case "57P01", "57P02", "57P03", "53300":
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		return err
	}
	var ms mssql.Error
	if errors.As(err, &ms) {
		switch ms.Number {
		case 2627: // "Violation of UNIQUE KEY constraint 'name'. Cannot insert duplicate key in object 'dbo.t'."
			return &ConstraintError{Kind: ErrUniqueViolation, Constraint: quoted(ms.Message, 0), cause: err}
		case 2601: // "Cannot insert duplicate key row in object 'dbo.t' with unique index 'name'. ..."
			return &ConstraintError{Kind: ErrUniqueViolation, Constraint: quoted(ms.Message, 1), cause: err}
		case 547:
			return &ConstraintError{Kind: ErrForeignKey, Constraint: quoted(ms.Message, 0), cause: err}
		case 1205, 3960:
			return fmt.Errorf("%w: %w", ErrRetryable, err)
		case 229, 230, 33504:
			return fmt.Errorf("%w: %w", ErrPermission, err)
		case 40613, 40501, 40197:
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		return err
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, sql.ErrConnDone) {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}

// quoted returns the n-th (0-based) single-quoted name in one of SQL Server's constraint messages.
func quoted(msg string, n int) string {
	parts := strings.Split(msg, "'")
	if i := 2*n + 1; i < len(parts)-1 {
		return parts[i]
	}
	return ""
}
