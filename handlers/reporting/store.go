package reporting

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"spine/shared/retention"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
)

// Store is the reporting service's persistence on either engine: each method is written once,
// here, over its engine's statements (statements.go). The service's rules run inside Write's
// closure; every tenant-level method names the Tx's tenant.
type Store struct {
	db *sqlstore.DB
	q  *statements
}

// NewStore returns the store over db (the runtime role's connection).
func NewStore(db *sqlstore.DB) *Store {
	q := &pgStatements
	if db.Dialect == sqlstore.SQLServer {
		q = &msStatements
	}
	return &Store{db: db, q: q}
}

// DB is the store's database.
func (s *Store) DB() *sqlstore.DB { return s.db }

// Tx is one transaction of the store, working on tenant's rows.
type Tx struct {
	*sqlstore.Tx
	q      *statements
	tenant string
}

// Write runs fn in a transaction in tenant's scope; it commits when fn returns nil. fn may run
// more than once (serialization retries).
func (s *Store) Write(ctx context.Context, tenant tenancy.TenantID, fn func(*Tx) error) error {
	return s.db.InTx(ctx, sqlstore.TenantScope(tenant), func(tx *sqlstore.Tx) error { return fn(s.bind(tx, tenant.String())) })
}

// Read is Write in a read-only transaction.
func (s *Store) Read(ctx context.Context, tenant tenancy.TenantID, fn func(*Tx) error) error {
	return s.db.InReadTx(ctx, sqlstore.TenantScope(tenant), func(tx *sqlstore.Tx) error { return fn(s.bind(tx, tenant.String())) })
}

func (s *Store) bind(tx *sqlstore.Tx, tenant string) *Tx { return &Tx{Tx: tx, q: s.q, tenant: tenant} }

// ForTenant is the same transaction working on another tenant's rows (a consumer's group, whose
// scope is its tenants' set).
func (tx *Tx) ForTenant(tenant string) *Tx { return &Tx{Tx: tx.Tx, q: tx.q, tenant: tenant} }

type scanner interface{ Scan(...any) error }

// ---- report definitions ----

// InsertReport inserts a new definition.
func (tx *Tx) InsertReport(ctx context.Context, r Report) error {
	_, err := tx.ExecContext(ctx, tx.q.insertReport, tx.tenant, r.ID, r.Name, r.Source, parametersJSON(r.Parameters), string(r.Format),
		r.CreatedBy, r.Version, r.CreatedAt.UTC())
	return err
}

// Report returns the definition (not deleted), or ErrReportNotFound.
func (tx *Tx) Report(ctx context.Context, id string) (Report, error) {
	return scanReport(tx.QueryRowContext(ctx, tx.q.report, tx.tenant, id))
}

// LockReport is Report, locking the row until the transaction ends.
func (tx *Tx) LockReport(ctx context.Context, id string) (Report, error) {
	return scanReport(tx.QueryRowContext(ctx, tx.q.lockReport, tx.tenant, id))
}

// Reports returns up to limit definitions after id after ("" for the first page), by id.
func (tx *Tx) Reports(ctx context.Context, after string, limit int) ([]Report, error) {
	if after == "" {
		after = nilUUID
	}
	rows, err := tx.QueryContext(ctx, tx.q.listReports, tx.tenant, after, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Report{}
	for rows.Next() {
		r, err := scanReport(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// UpdateReport replaces the definition's name, parameters and format, or ErrReportNotFound.
func (tx *Tx) UpdateReport(ctx context.Context, r Report) error {
	return tx.execOne(ctx, ErrReportNotFound, tx.q.updateReport, tx.tenant, r.ID, r.Name, parametersJSON(r.Parameters), string(r.Format),
		r.Version, r.UpdatedAt.UTC())
}

// DeleteReport deletes the definition softly, or ErrReportNotFound.
func (tx *Tx) DeleteReport(ctx context.Context, id string, at time.Time) error {
	return tx.execOne(ctx, ErrReportNotFound, tx.q.deleteReport, tx.tenant, id, at.UTC())
}

func scanReport(r scanner) (Report, error) {
	var rep Report
	var params, format string
	if err := r.Scan(&rep.ID, &rep.Name, &rep.Source, &params, &format, &rep.CreatedBy, &rep.Version, &rep.CreatedAt, &rep.UpdatedAt); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return rep, ErrReportNotFound
		}
		return rep, err
	}
	if err := json.Unmarshal([]byte(params), &rep.Parameters); err != nil {
		return rep, fmt.Errorf("reporting: stored parameters of report %s: %w", rep.ID, err)
	}
	rep.Format, rep.CreatedAt, rep.UpdatedAt = Format(format), rep.CreatedAt.UTC(), rep.UpdatedAt.UTC()
	return rep, nil
}

// ---- runs ----

// InsertRun inserts a Queued run.
func (tx *Tx) InsertRun(ctx context.Context, r Run) error {
	_, err := tx.ExecContext(ctx, tx.q.insertRun, tx.tenant, r.ID, r.ReportID, r.Source, string(r.Format), parametersJSON(r.Parameters),
		r.RequestedBy, r.CreatedAt.UTC())
	return err
}

// Run returns the run, or ErrRunNotFound.
func (tx *Tx) Run(ctx context.Context, id string) (Run, error) {
	return scanRun(tx.QueryRowContext(ctx, tx.q.run, tx.tenant, id))
}

// LockRun is Run, locking the row until the transaction ends.
func (tx *Tx) LockRun(ctx context.Context, id string) (Run, error) {
	return scanRun(tx.QueryRowContext(ctx, tx.q.lockRun, tx.tenant, id))
}

// Runs returns up to limit of the report's runs older than run before ("" for the newest),
// newest first.
func (tx *Tx) Runs(ctx context.Context, reportID, before string, limit int) ([]Run, error) {
	if before == "" {
		before = maxUUID
	}
	rows, err := tx.QueryContext(ctx, tx.q.listRuns, tx.tenant, reportID, before, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Run{}
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// ClaimRun marks the run Running under claim attempts, its lease until leaseUntil.
func (tx *Tx) ClaimRun(ctx context.Context, id string, attempts int, leaseUntil, at time.Time) error {
	return tx.execOne(ctx, ErrRunNotFound, tx.q.claimRun, tx.tenant, id, attempts, leaseUntil.UTC(), at.UTC())
}

// RenewLease extends the lease of the run's claim attempts; false when the claim was lost (the
// run is no longer Running under it).
func (tx *Tx) RenewLease(ctx context.Context, id string, attempts int, leaseUntil time.Time) (bool, error) {
	err := tx.execOne(ctx, ErrRunNotFound, tx.q.renewLease, tx.tenant, id, attempts, leaseUntil.UTC())
	if errors.Is(err, ErrRunNotFound) {
		return false, nil
	}
	return err == nil, err
}

// SucceedRun records the artifact of claim attempts; ErrRunNotFound when the claim was lost.
func (tx *Tx) SucceedRun(ctx context.Context, id string, attempts int, rows int64, blobName string, sum [32]byte, size int64, at, expires time.Time) error {
	return tx.execOne(ctx, ErrRunNotFound, tx.q.succeedRun, tx.tenant, id, attempts, rows, blobName, hex.EncodeToString(sum[:]), size,
		at.UTC(), expires.UTC())
}

// FailRun marks the run Failed for good with errorClass.
func (tx *Tx) FailRun(ctx context.Context, id, errorClass string, at time.Time) error {
	return tx.execOne(ctx, ErrRunNotFound, tx.q.failRun, tx.tenant, id, errorClass, at.UTC())
}

// RequeueRun puts the run of claim attempts back to Queued after a failed attempt; ErrRunNotFound
// when the claim was lost.
func (tx *Tx) RequeueRun(ctx context.Context, id string, attempts int, errorClass string) error {
	return tx.execOne(ctx, ErrRunNotFound, tx.q.requeueRun, tx.tenant, id, attempts, errorClass)
}

func scanRun(r scanner) (Run, error) {
	var run Run
	var status, format, params string
	var lease, started, finished, expires, expired sql.NullTime
	var rows, size sql.NullInt64
	var blobName, sum, errClass sql.NullString
	if err := r.Scan(&run.ID, &run.ReportID, &status, &run.Source, &format, &params, &run.RequestedBy, &run.Attempts, &lease,
		&rows, &blobName, &sum, &size, &errClass, &run.CreatedAt, &started, &finished, &expires, &expired); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return run, ErrRunNotFound
		}
		return run, err
	}
	if err := json.Unmarshal([]byte(params), &run.Parameters); err != nil {
		return run, fmt.Errorf("reporting: stored parameters of run %s: %w", run.ID, err)
	}
	run.Status, run.Format, run.CreatedAt = RunStatus(status), Format(format), run.CreatedAt.UTC()
	run.LeaseUntil, run.StartedAt, run.FinishedAt, run.ExpiresAt = sqlstore.PtrUTC(lease), sqlstore.PtrUTC(started), sqlstore.PtrUTC(finished), sqlstore.PtrUTC(expires)
	run.ExpiredAt = sqlstore.PtrUTC(expired)
	if rows.Valid {
		run.RowCount = &rows.Int64
	}
	if size.Valid {
		run.Size = &size.Int64
	}
	run.BlobName, run.SHA256, run.ErrorClass = blobName.String, sum.String, errClass.String
	return run, nil
}

// ---- artifact lifecycle (the ReportArtifactLifecycle sweep) ----

// expiryBound is k (a run's position in the lifecycle sweep's keyset order: expires at, run id)
// with the zero key as the floor.
func expiryBound(k retention.Key) retention.Key {
	if k.At.IsZero() {
		return retention.Key{At: time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), ID: nilUUID}
	}
	return k
}

// DueTenants returns, in platform scope, every tenant with a Succeeded run that expired before
// before (the sweep's units).
func (s *Store) DueTenants(ctx context.Context, before time.Time) ([]string, error) {
	var out []string
	err := s.db.InReadTx(ctx, sqlstore.PlatformScope(), func(tx *sqlstore.Tx) (err error) {
		out, err = retention.UnitsOf(tx.QueryContext(ctx, s.q.expiryTenants, sqlstore.UTC(before)))
		return err
	})
	return out, err
}

// NextExpiring returns the keys of at most limit due runs (Succeeded with an artifact, expired
// before cutoff) after after, in keyset order.
func (tx *Tx) NextExpiring(ctx context.Context, after retention.Key, cutoff time.Time, limit int) ([]retention.Key, error) {
	after = expiryBound(after)
	return retention.KeysOf(tx.QueryContext(ctx, tx.q.expiryNext, tx.tenant, sqlstore.UTC(after.At), after.ID, sqlstore.UTC(cutoff), limit))
}

// ExpiringRuns returns the run ids and blob names of the due runs from..to (inclusive).
func (tx *Tx) ExpiringRuns(ctx context.Context, from, to retention.Key, cutoff time.Time) (ids, blobs []string, err error) {
	rows, err := tx.QueryContext(ctx, tx.q.expiryRange, tx.tenant, sqlstore.UTC(from.At), from.ID,
		sqlstore.UTC(to.At), to.ID, sqlstore.UTC(cutoff))
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id, name string
		if err := rows.Scan(&id, &name); err != nil {
			return nil, nil, err
		}
		ids, blobs = append(ids, id), append(blobs, name)
	}
	return ids, blobs, rows.Err()
}

// ExpireRuns marks the due runs from..to (inclusive) Expired at at and returns how many it marked.
func (tx *Tx) ExpireRuns(ctx context.Context, from, to retention.Key, cutoff, at time.Time) (int, error) {
	res, err := tx.ExecContext(ctx, tx.q.expireRange, tx.tenant, sqlstore.UTC(from.At), from.ID,
		sqlstore.UTC(to.At), to.ID, sqlstore.UTC(cutoff), sqlstore.UTC(at))
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// ---- sources (read models, streamed) ----

// UsersAndRoles opens the users-and-roles cursor (status "" for every status). The caller
// iterates and closes the rows; nothing is buffered beyond the driver's read buffer.
func (tx *Tx) UsersAndRoles(ctx context.Context, status string) (*sql.Rows, error) {
	return tx.QueryContext(ctx, tx.q.usersAndRoles, tx.tenant, status)
}

// ActivityByDay opens the activity-by-day cursor over the days from..to (inclusive).
func (tx *Tx) ActivityByDay(ctx context.Context, from, to time.Time, eventType string) (*sql.Rows, error) {
	return tx.QueryContext(ctx, tx.q.activityByDay, tx.tenant, from.Format(time.DateOnly), to.Format(time.DateOnly), eventType)
}

// ---- read models (consumers) ----

// UserInvited records the user as invited with email at at.
func (tx *Tx) UserInvited(ctx context.Context, user, email string, at time.Time) error {
	_, err := tx.ExecContext(ctx, tx.q.userInvited, tx.tenant, user, email, at.UTC())
	return err
}

// UserStatus records the user's status (and activation time, when activated is set) at at.
func (tx *Tx) UserStatus(ctx context.Context, user, status string, activated *time.Time, at time.Time) error {
	var act sql.NullTime
	if activated != nil {
		act = sql.NullTime{Time: activated.UTC(), Valid: true}
	}
	_, err := tx.ExecContext(ctx, tx.q.userStatus, tx.tenant, user, status, act, at.UTC())
	return err
}

// RoleAssigned records the user's role (a known assignment is kept).
func (tx *Tx) RoleAssigned(ctx context.Context, user, role, code string, at time.Time) error {
	_, err := tx.ExecContext(ctx, tx.q.roleAssigned, tx.tenant, user, role, code, at.UTC())
	return err
}

// RoleRevoked removes the user's role.
func (tx *Tx) RoleRevoked(ctx context.Context, user, role string) error {
	_, err := tx.ExecContext(ctx, tx.q.roleRevoked, tx.tenant, user, role)
	return err
}

// ActivityCount is one (tenant, day, event type) count to add.
type ActivityCount struct {
	Tenant    string `json:"tenant_id"`
	Day       string `json:"day"`
	EventType string `json:"event_type"`
	N         int64  `json:"n"`
}

// AddActivity adds the counts (each key once) in one statement, whatever their tenants (the
// transaction's scope must see them all).
func (tx *Tx) AddActivity(ctx context.Context, counts []ActivityCount) error {
	if len(counts) == 0 {
		return nil
	}
	doc, err := json.Marshal(counts)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, tx.q.addActivity, string(doc))
	return err
}

func (tx *Tx) execOne(ctx context.Context, notFound error, query string, args ...any) error {
	res, err := tx.ExecContext(ctx, query, args...)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return notFound
	}
	return nil
}

const (
	nilUUID = "00000000-0000-0000-0000-000000000000"
	maxUUID = "ffffffff-ffff-ffff-ffff-ffffffffffff"
)
