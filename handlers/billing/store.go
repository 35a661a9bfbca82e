package billing

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"spine/shared/sqlstore"
	"spine/shared/tenancy"
)

// Store is the billing service's persistence on either engine: each method is written once, here,
// and sends its engine's statements (statements.go; pgStatements or msStatements).
//
// The service's rules run inside the store's transactions: Write and Read hand a closure a Tx, a
// transaction in the row-level-security scope given, whose methods are the service's statements
// for one tenant. Events go to the outbox through the same transaction. Times go in UTC, ids as
// canonical text, nullable values as sql.Null*.
//
// The store has no method that deletes an invoice, a line or a usage record, and the runtime
// role could not run one (migrations: no DELETE grant).
type Store struct {
	db *sqlstore.DB
	q  *statements
}

// NewStore returns the store over db (the runtime role's connection), with the statements of
// db's engine.
func NewStore(db *sqlstore.DB) *Store {
	q := &pgStatements
	if db.Dialect == sqlstore.SQLServer {
		q = &msStatements
	}
	return &Store{db: db, q: q}
}

// DB is the store's database.
func (s *Store) DB() *sqlstore.DB { return s.db }

// Tx is one transaction of the store, working on one tenant's rows.
type Tx struct {
	*sqlstore.Tx
	q      *statements
	tenant string
	// group, in BillingOnTenantsEvent's group transaction, collects what its events emit and
	// invalidate, written once for the whole group at its end; nil otherwise.
	group *groupWrites
}

// Write runs fn in a transaction in scope sc working on tenant's rows; it commits when fn returns
// nil. fn may run more than once (serialization retries).
func (s *Store) Write(ctx context.Context, sc sqlstore.Scope, tenant tenancy.TenantID, fn func(*Tx) error) error {
	return s.db.InTx(ctx, sc, func(tx *sqlstore.Tx) error {
		return fn(&Tx{Tx: tx, q: s.q, tenant: tenant.String()})
	})
}

// Read is Write in a read-only transaction.
func (s *Store) Read(ctx context.Context, sc sqlstore.Scope, tenant tenancy.TenantID, fn func(*Tx) error) error {
	return s.db.InReadTx(ctx, sc, func(tx *sqlstore.Tx) error {
		return fn(&Tx{Tx: tx, q: s.q, tenant: tenant.String()})
	})
}

// Bind returns the store's Tx over an open transaction (a consumer's).
func (s *Store) Bind(tx *sqlstore.Tx, tenant tenancy.TenantID) *Tx {
	return &Tx{Tx: tx, q: s.q, tenant: tenant.String()}
}

// SubscriptionFacts are what subscribing a tenant reads first: whether it has a live subscription
// and whether it ever had a trial.
type SubscriptionFacts struct {
	Live, HadTrial bool
}

// SubscriptionFacts reads SubscriptionFacts of every tenant in one statement (a consumer's group,
// in a scope that admits them all), by canonical tenant id.
func (tx *Tx) SubscriptionFacts(ctx context.Context, tenants []string) (map[string]SubscriptionFacts, error) {
	list, err := json.Marshal(tenants)
	if err != nil {
		return nil, err
	}
	rows, err := tx.QueryContext(ctx, tx.q.subscriptionFacts, string(list))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make(map[string]SubscriptionFacts, len(tenants))
	for rows.Next() {
		var id string
		var f SubscriptionFacts
		if err := rows.Scan(&id, &f.Live, &f.HadTrial); err != nil {
			return nil, err
		}
		out[id] = f
	}
	return out, rows.Err()
}

// Editions returns the catalog, by rank then code (platform-level rows: any scope reads them).
func (s *Store) Editions(ctx context.Context) ([]Edition, error) {
	var out []Edition
	err := s.db.InReadTx(ctx, sqlstore.Scope{}, func(tx *sqlstore.Tx) error {
		rows, err := tx.QueryContext(ctx, s.q.editions)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			e, err := scanEdition(rows)
			if err != nil {
				return err
			}
			out = append(out, e)
		}
		return rows.Err()
	})
	return out, err
}

// Edition returns the edition with this code, or ErrEditionNotFound.
func (s *Store) Edition(ctx context.Context, code string) (Edition, error) {
	var e Edition
	err := s.db.InReadTx(ctx, sqlstore.Scope{}, func(tx *sqlstore.Tx) error {
		var err error
		e, err = scanEdition(tx.QueryRowContext(ctx, s.q.edition, code))
		return err
	})
	return e, err
}

// PutEdition creates the edition e.Code (version 1) or replaces it (its version + 1), in
// platform scope, and reports whether it created it. ifMatch, when set, must equal the stored
// version (ErrVersionMismatch; an absent edition matches nothing). Without ifMatch it never fails
// with ErrVersionMismatch: a create that loses the race to a concurrent create of the same code
// (the INSERT hits editions_pkey) runs again and finds the row, locked, to replace. e.Version and
// e.UpdatedAt are set here; the result is the edition as stored. A replace of an edition whose body
// left out "public" (keepPublic) keeps the stored value; a create without it is private.
func (s *Store) PutEdition(ctx context.Context, e Edition, ifMatch *int64) (Edition, bool, error) {
	raw, err := json.Marshal(e.Entitlements)
	if err != nil {
		return Edition{}, false, err
	}
	var created bool
	// Editions are never deleted, so the second attempt finds the row the winner inserted; the
	// bound only guards against a store that misbehaves.
	for attempt := 1; ; attempt++ {
		err = s.db.InTx(ctx, sqlstore.PlatformScope(), func(tx *sqlstore.Tx) error {
			cur, err := scanEdition(tx.QueryRowContext(ctx, s.q.lockEdition, e.Code))
			switch {
			case errors.Is(err, ErrEditionNotFound):
				if ifMatch != nil {
					return ErrVersionMismatch
				}
				created, e.Version = true, 1
			case err != nil:
				return err
			case ifMatch != nil && *ifMatch != cur.Version:
				return ErrVersionMismatch
			default:
				created, e.Version = false, cur.Version+1
				if e.keepPublic {
					e.Public = cur.Public
				}
			}
			if !created {
				_, err = tx.ExecContext(ctx, s.q.updateEdition, e.Code, e.Name, e.PriceMinor, e.Currency, e.PeriodMonths,
					e.TrialDays, e.Rank, string(raw), e.Version, e.UpdatedAt.UTC(), e.Public)
				return err
			}
			_, err = tx.ExecContext(ctx, s.q.insertEdition, e.Code, e.Name, e.PriceMinor, e.Currency, e.PeriodMonths,
				e.TrialDays, e.Rank, string(raw), e.Version, e.UpdatedAt.UTC(), e.Public)
			if sqlstore.Constraint(sqlstore.Translate(tx.Dialect, err)) == "editions_pkey" {
				return errLostCreate // created concurrently: replace it on the next attempt
			}
			return err
		})
		if !errors.Is(err, errLostCreate) || attempt == 3 {
			break
		}
	}
	if err != nil {
		return Edition{}, false, err
	}
	e.UpdatedAt = e.UpdatedAt.UTC()
	return e, created, nil
}

// errLostCreate: PutEdition's INSERT met a row a concurrent writer committed since its lookup (an
// internal error should it happen three times in a row, which a store that never deletes an
// edition cannot do).
var errLostCreate = errors.New("billing: edition created concurrently, three times in a row")

// Edition returns the edition with this code in the transaction, or ErrEditionNotFound.
func (tx *Tx) Edition(ctx context.Context, code string) (Edition, error) {
	return scanEdition(tx.QueryRowContext(ctx, tx.q.edition, code))
}

// ---- subscriptions ----

// LiveSubscription returns the tenant's subscription that is not Cancelled, or ErrNoSubscription.
func (tx *Tx) LiveSubscription(ctx context.Context) (Subscription, error) {
	s, err := scanSubscription(tx.QueryRowContext(ctx, tx.q.liveSubscription, tx.tenant))
	if errors.Is(err, ErrSubscriptionNotFound) {
		return s, ErrNoSubscription
	}
	return s, err
}

// ShareLiveSubscription is LiveSubscription with the row locked against writers until the
// transaction ends (FOR SHARE; UPDLOCK on SQL Server): a renewal that holds it is waited for, and
// waits.
func (tx *Tx) ShareLiveSubscription(ctx context.Context) (Subscription, error) {
	s, err := scanSubscription(tx.QueryRowContext(ctx, tx.q.shareLiveSubscription, tx.tenant))
	if errors.Is(err, ErrSubscriptionNotFound) {
		return s, ErrNoSubscription
	}
	return s, err
}

// Subscription returns the subscription, or ErrSubscriptionNotFound.
func (tx *Tx) Subscription(ctx context.Context, id SubscriptionID) (Subscription, error) {
	return scanSubscription(tx.QueryRowContext(ctx, tx.q.subscription, tx.tenant, string(id)))
}

// LockSubscription returns the subscription locked until the transaction ends, or
// ErrSubscriptionNotFound.
func (tx *Tx) LockSubscription(ctx context.Context, id SubscriptionID) (Subscription, error) {
	return scanSubscription(tx.QueryRowContext(ctx, tx.q.lockSubscription, tx.tenant, string(id)))
}

// HadTrial reports whether the tenant ever had a trial (any subscription, cancelled ones
// included: subscriptions are never deleted).
func (tx *Tx) HadTrial(ctx context.Context) (bool, error) {
	var had bool
	err := tx.QueryRowContext(ctx, tx.q.hadTrial, tx.tenant).Scan(&had)
	return had, err
}

// Subscriptions returns every subscription of the tenant, newest first.
func (tx *Tx) Subscriptions(ctx context.Context) ([]Subscription, error) {
	rows, err := tx.QueryContext(ctx, tx.q.listSubscriptions, tx.tenant)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Subscription{}
	for rows.Next() {
		s, err := scanSubscription(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// InsertSubscription inserts s; ErrSubscriptionExists when the tenant has a live one already.
func (tx *Tx) InsertSubscription(ctx context.Context, s Subscription) error {
	_, err := tx.ExecContext(ctx, tx.q.insertSubscription, tx.tenant, string(s.ID), s.EditionCode, string(s.Status),
		sqlstore.NullUTC(s.TrialEndsAt), s.PeriodStart.UTC(), s.PeriodEnd.UTC(), s.CreatedAt.UTC(), s.Version)
	if err != nil && sqlstore.Constraint(sqlstore.Translate(tx.Dialect, err)) == "subscriptions_live" {
		return ErrSubscriptionExists
	}
	return err
}

// UpdateSubscription writes s's changeable columns.
func (tx *Tx) UpdateSubscription(ctx context.Context, s Subscription) error {
	return tx.execOne(ctx, ErrSubscriptionNotFound, tx.q.updateSubscription, tx.tenant, string(s.ID), s.EditionCode,
		string(s.Status), s.PeriodStart.UTC(), s.PeriodEnd.UTC(), sqlstore.NullString(s.PendingEdition), sqlstore.NullUTC(s.CancelledAt),
		sqlstore.NullString(s.CancelReason), s.Version, s.UpdatedAt.UTC(), sqlstore.NullUTC(s.PastDueSince))
}

// LockDueSubscription returns the subscription locked until the transaction ends, or
// ErrSubscriptionNotFound when it does not exist or another transaction holds it (skipped, not
// waited for).
func (tx *Tx) LockDueSubscription(ctx context.Context, id SubscriptionID) (Subscription, error) {
	return scanSubscription(tx.QueryRowContext(ctx, tx.q.lockDueSubscription, tx.tenant, string(id)))
}

// DueSubscription names a subscription the renewal timer has work on.
type DueSubscription struct {
	Tenant tenancy.TenantID
	ID     SubscriptionID
}

// DueSubscriptions returns up to limit live subscriptions of every tenant whose period ended at
// now, whose trial ended, or that are PastDue since before pastDueBefore, by period end.
func (s *Store) DueSubscriptions(ctx context.Context, now, pastDueBefore time.Time, limit int) ([]DueSubscription, error) {
	var out []DueSubscription
	err := s.db.InReadTx(ctx, sqlstore.PlatformScope(), func(tx *sqlstore.Tx) error {
		out = nil
		rows, err := tx.QueryContext(ctx, s.q.dueSubscriptions, now.UTC(), pastDueBefore.UTC(), limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var tenant, id string
			if err := rows.Scan(&tenant, &id); err != nil {
				return err
			}
			t, err := tenancy.ParseTenantID(tenant)
			if err != nil {
				return err
			}
			out = append(out, DueSubscription{Tenant: t, ID: SubscriptionID(id)})
		}
		return rows.Err()
	})
	return out, err
}

// RecordRenewalFailure notes that the subscription's renewal failed at `at` and returns how many
// times in a row it has now; retry(attempts) is when the renewal timer may try it again (it skips
// it until then). The next successful write of the subscription clears the record.
func (tx *Tx) RecordRenewalFailure(ctx context.Context, id SubscriptionID, at time.Time, retry func(attempts int) time.Time) (int, error) {
	var n int
	err := tx.QueryRowContext(ctx, tx.q.renewalAttempts, tx.tenant, string(id)).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, ErrSubscriptionNotFound
	}
	if err != nil {
		return 0, err
	}
	n++
	return n, tx.execOne(ctx, ErrSubscriptionNotFound, tx.q.recordRenewalFailure, tx.tenant, string(id), n, at.UTC(), retry(n).UTC())
}

// savepoint marks a point of the transaction that rollbackTo undoes the writes back to.
func (tx *Tx) savepoint(ctx context.Context) error {
	_, err := tx.ExecContext(ctx, tx.q.savepoint)
	return err
}

func (tx *Tx) rollbackTo(ctx context.Context) error {
	_, err := tx.ExecContext(ctx, tx.q.rollbackToSavepoint)
	return err
}

// PeriodUsage returns the sum of the usage quantities recorded into the period starting at
// start, per metric; a sum beyond maxMinor reads as maxMinor + 1 (never an overflow).
func (tx *Tx) PeriodUsage(ctx context.Context, start time.Time) (map[string]int64, error) {
	rows, err := tx.QueryContext(ctx, tx.q.periodUsage, tx.tenant, start.UTC())
	if err != nil {
		return nil, err
	}
	return scanTotals(rows)
}

// ---- usage ----

// RecordUsage inserts u; false (and no error) when its id was recorded already.
func (tx *Tx) RecordUsage(ctx context.Context, u UsageRecord) (bool, error) {
	res, err := tx.ExecContext(ctx, tx.q.insertUsage, tx.tenant, u.ID, u.Metric, u.Quantity, u.PeriodStart.UTC(), u.RecordedAt.UTC())
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// Usage returns the usage record, or sqlstore.ErrNotFound.
func (tx *Tx) Usage(ctx context.Context, id string) (UsageRecord, error) {
	u := UsageRecord{ID: id}
	err := tx.QueryRowContext(ctx, tx.q.usage, tx.tenant, id).Scan(&u.Metric, &u.Quantity, &u.PeriodStart, &u.RecordedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return u, sqlstore.ErrNotFound
	}
	u.PeriodStart, u.RecordedAt = u.PeriodStart.UTC(), u.RecordedAt.UTC()
	return u, err
}

// UsageFilter selects usage records: Metric "" for every metric, RecordedAt in [From, To).
type UsageFilter struct {
	Metric   string
	From, To time.Time
}

// ListUsage returns up to limit usage records of f with an id greater than after ("" for the
// first page), in id order.
func (tx *Tx) ListUsage(ctx context.Context, f UsageFilter, after string, limit int) ([]UsageRecord, error) {
	if after == "" {
		after = zeroID
	}
	rows, err := tx.QueryContext(ctx, tx.q.listUsage, tx.tenant, f.Metric, f.From.UTC(), f.To.UTC(), after, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []UsageRecord{}
	for rows.Next() {
		var u UsageRecord
		if err := rows.Scan(&u.ID, &u.Metric, &u.Quantity, &u.PeriodStart, &u.RecordedAt); err != nil {
			return nil, err
		}
		u.PeriodStart, u.RecordedAt = u.PeriodStart.UTC(), u.RecordedAt.UTC()
		out = append(out, u)
	}
	return out, rows.Err()
}

// UsageTotals returns the sum of the quantities of f's records per metric; a sum beyond maxMinor
// reads as maxMinor + 1.
func (tx *Tx) UsageTotals(ctx context.Context, f UsageFilter) (map[string]int64, error) {
	rows, err := tx.QueryContext(ctx, tx.q.usageTotals, tx.tenant, f.Metric, f.From.UTC(), f.To.UTC())
	if err != nil {
		return nil, err
	}
	return scanTotals(rows)
}

// scanTotals reads (metric, sum) rows into a map and closes them.
func scanTotals(rows *sql.Rows) (map[string]int64, error) {
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var m string
		var n int64
		if err := rows.Scan(&m, &n); err != nil {
			return nil, err
		}
		out[m] = n
	}
	return out, rows.Err()
}

// ---- invoices ----

// CountInvoices returns how many invoices the tenant has (numbering).
func (tx *Tx) CountInvoices(ctx context.Context) (int64, error) {
	var n int64
	err := tx.QueryRowContext(ctx, tx.q.countInvoices, tx.tenant).Scan(&n)
	return n, err
}

// InsertInvoice inserts inv as a Draft with its lines (the total is the lines' sum).
func (tx *Tx) InsertInvoice(ctx context.Context, inv Invoice) error {
	if _, err := tx.ExecContext(ctx, tx.q.insertInvoice, tx.tenant, string(inv.ID), inv.Number, string(InvoiceDraft),
		inv.Currency, inv.TotalMinor, inv.PeriodStart.UTC(), inv.PeriodEnd.UTC(), inv.CreatedAt.UTC()); err != nil {
		return err
	}
	for _, l := range inv.Lines {
		if _, err := tx.ExecContext(ctx, tx.q.insertLine, tx.tenant, string(inv.ID), l.No, l.Description, l.Quantity,
			l.UnitMinor, l.AmountMinor); err != nil {
			return err
		}
	}
	return nil
}

// SetInvoiceStatus moves the invoice to inv.Status with its times (the database refuses an
// illegal move and any change of an issued invoice's money).
func (tx *Tx) SetInvoiceStatus(ctx context.Context, inv Invoice) error {
	return tx.execOne(ctx, ErrInvoiceNotFound, tx.q.setInvoiceStatus, tx.tenant, string(inv.ID), string(inv.Status),
		sqlstore.NullUTC(inv.IssuedAt), sqlstore.NullUTC(inv.PaidAt), sqlstore.NullUTC(inv.VoidedAt))
}

// LockInvoice returns the invoice (without its lines) locked until the transaction ends, or
// ErrInvoiceNotFound.
func (tx *Tx) LockInvoice(ctx context.Context, id InvoiceID) (Invoice, error) {
	return scanInvoice(tx.QueryRowContext(ctx, tx.q.lockInvoice, tx.tenant, string(id)))
}

// CountIssuedInvoices returns how many of the tenant's invoices are Issued (unpaid).
func (tx *Tx) CountIssuedInvoices(ctx context.Context) (int64, error) {
	var n int64
	err := tx.QueryRowContext(ctx, tx.q.countIssuedInvoices, tx.tenant).Scan(&n)
	return n, err
}

// Invoice returns the invoice with its lines, or ErrInvoiceNotFound.
func (tx *Tx) Invoice(ctx context.Context, id InvoiceID) (Invoice, error) {
	inv, err := scanInvoice(tx.QueryRowContext(ctx, tx.q.invoice, tx.tenant, string(id)))
	if err != nil {
		return inv, err
	}
	rows, err := tx.QueryContext(ctx, tx.q.invoiceLines, tx.tenant, string(id))
	if err != nil {
		return inv, err
	}
	defer rows.Close()
	inv.Lines = []InvoiceLine{}
	for rows.Next() {
		var l InvoiceLine
		if err := rows.Scan(&l.No, &l.Description, &l.Quantity, &l.UnitMinor, &l.AmountMinor); err != nil {
			return inv, err
		}
		inv.Lines = append(inv.Lines, l)
	}
	return inv, rows.Err()
}

// Invoices returns up to limit invoices with an id greater than after ("" for the first page), in
// id order, without their lines.
func (tx *Tx) Invoices(ctx context.Context, after InvoiceID, limit int) ([]Invoice, error) {
	if after == "" {
		after = zeroID
	}
	rows, err := tx.QueryContext(ctx, tx.q.listInvoices, tx.tenant, string(after), limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Invoice{}
	for rows.Next() {
		inv, err := scanInvoice(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, inv)
	}
	return out, rows.Err()
}

// ---- scanning ----

const zeroID = "00000000-0000-0000-0000-000000000000"

// rowScanner is *sql.Row or *sql.Rows.
type rowScanner interface{ Scan(dest ...any) error }

func scanEdition(r rowScanner) (Edition, error) {
	var e Edition
	var ent string
	err := r.Scan(&e.Code, &e.Name, &e.PriceMinor, &e.Currency, &e.PeriodMonths, &e.TrialDays, &e.Rank, &ent, &e.Version, &e.UpdatedAt, &e.Public)
	if errors.Is(err, sql.ErrNoRows) {
		return Edition{}, ErrEditionNotFound
	}
	if err != nil {
		return Edition{}, err
	}
	if e.Entitlements, err = parseEntitlements([]byte(ent)); err != nil {
		return Edition{}, fmt.Errorf("edition %s: %w", e.Code, err)
	}
	e.UpdatedAt = e.UpdatedAt.UTC()
	return e, nil
}

func scanSubscription(r rowScanner) (Subscription, error) {
	var s Subscription
	var id, status string
	var trial, cancelled, pastDue sql.NullTime
	err := r.Scan(&id, &s.EditionCode, &status, &trial, &s.PeriodStart, &s.PeriodEnd, &s.PendingEdition, &cancelled,
		&s.CancelReason, &s.Version, &s.CreatedAt, &s.UpdatedAt, &pastDue)
	if errors.Is(err, sql.ErrNoRows) {
		return Subscription{}, ErrSubscriptionNotFound
	}
	if err != nil {
		return Subscription{}, err
	}
	s.ID, s.Status = SubscriptionID(id), Status(status)
	s.TrialEndsAt, s.CancelledAt, s.PastDueSince = sqlstore.PtrUTC(trial), sqlstore.PtrUTC(cancelled), sqlstore.PtrUTC(pastDue)
	s.PeriodStart, s.PeriodEnd = s.PeriodStart.UTC(), s.PeriodEnd.UTC()
	s.CreatedAt, s.UpdatedAt = s.CreatedAt.UTC(), s.UpdatedAt.UTC()
	return s, nil
}

func scanInvoice(r rowScanner) (Invoice, error) {
	var inv Invoice
	var id, status string
	var issued, paid, voided sql.NullTime
	err := r.Scan(&id, &inv.Number, &status, &inv.Currency, &inv.TotalMinor, &inv.PeriodStart, &inv.PeriodEnd,
		&inv.CreatedAt, &issued, &paid, &voided)
	if errors.Is(err, sql.ErrNoRows) {
		return Invoice{}, ErrInvoiceNotFound
	}
	if err != nil {
		return Invoice{}, err
	}
	inv.ID, inv.Status = InvoiceID(id), InvoiceStatus(status)
	inv.PeriodStart, inv.PeriodEnd, inv.CreatedAt = inv.PeriodStart.UTC(), inv.PeriodEnd.UTC(), inv.CreatedAt.UTC()
	inv.IssuedAt, inv.PaidAt, inv.VoidedAt = sqlstore.PtrUTC(issued), sqlstore.PtrUTC(paid), sqlstore.PtrUTC(voided)
	return inv, nil
}

// execOne runs a statement that must change one row; none is notFound.
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
