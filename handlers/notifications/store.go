package notifications

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"

	"spine/shared/events"
	"spine/shared/idempotency"
	"spine/shared/outbox"
	"spine/shared/sqlstore"
)

// Store is the notifications service's persistence on either engine: each method is written
// once, here, over the engine's statements (statements.go). Every method takes the row-level
// security scope it runs in; a tenant's scope only ever reaches that tenant's rows.
type Store struct {
	db *sqlstore.DB
	q  *statements
}

// NewStore returns the store over db (the runtime role) with db's engine's statements.
func NewStore(db *sqlstore.DB) *Store {
	q := &pgStatements
	if db.Dialect == sqlstore.SQLServer {
		q = &msStatements
	}
	return &Store{db: db, q: q}
}

// maxUUID is the first page's exclusive upper bound of a newest-first list.
const maxUUID = "ffffffff-ffff-ffff-ffff-ffffffffffff"

type scanner interface{ Scan(dest ...any) error }

func scanEndpoint(r scanner) (Endpoint, error) {
	var e Endpoint
	var types string
	var failing, disabledAt sql.NullTime
	err := r.Scan(&e.TenantID, &e.ID, &e.URL, &e.Description, &types, &e.Secret.Vault, &e.Secret.Name, &e.Secret.Version,
		&e.Enabled, &failing, &e.DisabledReason, &disabledAt, &e.Version, &e.CreatedAt, &e.UpdatedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return Endpoint{}, ErrEndpointNotFound
	}
	if err != nil {
		return Endpoint{}, err
	}
	if types != "" {
		if err := json.Unmarshal([]byte(types), &e.EventTypes); err != nil {
			return Endpoint{}, err
		}
		if e.EventTypes == nil {
			e.EventTypes = []string{}
		}
	}
	e.FailingSince, e.DisabledAt = sqlstore.PtrUTC(failing), sqlstore.PtrUTC(disabledAt)
	e.CreatedAt, e.UpdatedAt = e.CreatedAt.UTC(), e.UpdatedAt.UTC()
	return e, nil
}

func scanNotification(r scanner) (Notification, error) {
	var n Notification
	var next, delivered, failed sql.NullTime
	err := r.Scan(&n.TenantID, &n.ID, &n.Channel, &n.Recipient, &n.EventType, &n.Subject, &n.Body, &n.BodyBlob, &n.BodySize,
		&n.BodySHA256, &n.Status, &n.Attempts, &next, &n.LastErrorClass, &n.CreatedAt, &n.UpdatedAt, &delivered, &failed)
	if errors.Is(err, sql.ErrNoRows) {
		return Notification{}, ErrNotFound
	}
	if err != nil {
		return Notification{}, err
	}
	n.NextAttemptAt, n.DeliveredAt, n.FailedAt = sqlstore.PtrUTC(next), sqlstore.PtrUTC(delivered), sqlstore.PtrUTC(failed)
	n.CreatedAt, n.UpdatedAt = n.CreatedAt.UTC(), n.UpdatedAt.UTC()
	return n, nil
}

func eventTypesJSON(types []string) (sql.NullString, error) {
	if types == nil {
		return sql.NullString{}, nil
	}
	raw, err := json.Marshal(types)
	return sql.NullString{String: string(raw), Valid: true}, err
}

// CreateEndpoint inserts e and claims the request's Idempotency-Key, atomically.
func (s *Store) CreateEndpoint(ctx context.Context, sc sqlstore.Scope, e Endpoint) error {
	types, err := eventTypesJSON(e.EventTypes)
	if err != nil {
		return err
	}
	return s.db.InTx(ctx, sc, func(tx *sqlstore.Tx) error {
		if err := idempotency.Claim(ctx, tx); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, s.q.insertEndpoint, e.TenantID, e.ID, e.URL, e.Description, types, e.Secret.Vault, e.Secret.Name,
			e.Secret.Version, e.Enabled, e.Version, e.CreatedAt.UTC())
		return err
	})
}

// Endpoint returns the endpoint, or ErrEndpointNotFound when it is not visible in sc.
func (s *Store) Endpoint(ctx context.Context, sc sqlstore.Scope, tenant, id string) (Endpoint, error) {
	var e Endpoint
	err := s.db.InReadTx(ctx, sc, func(tx *sqlstore.Tx) error {
		var err error
		e, err = scanEndpoint(tx.QueryRowContext(ctx, s.q.endpoint, tenant, id))
		return err
	})
	return e, err
}

// Endpoints returns up to limit of the tenant's endpoints after the id after ("" first), in id order.
func (s *Store) Endpoints(ctx context.Context, sc sqlstore.Scope, tenant, after string, limit int) ([]Endpoint, error) {
	if after == "" {
		after = "00000000-0000-0000-0000-000000000000"
	}
	var out []Endpoint
	err := s.db.InReadTx(ctx, sc, func(tx *sqlstore.Tx) error {
		rows, err := tx.QueryContext(ctx, s.q.listEndpoints, tenant, after, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			e, err := scanEndpoint(rows)
			if err != nil {
				return err
			}
			out = append(out, e)
		}
		return rows.Err()
	})
	return out, err
}

// UpdateEndpoint locks the endpoint, calls fn with it and, if fn succeeds, stores it with
// Version+1 and UpdatedAt=now together with the events fn returned, claiming the request's
// Idempotency-Key (rotate-secret). fn must not call out.
func (s *Store) UpdateEndpoint(ctx context.Context, sc sqlstore.Scope, tenant, id string, now time.Time,
	fn func(e *Endpoint) ([]events.Event, error)) (Endpoint, error) {
	var out Endpoint
	err := s.db.InTx(ctx, sc, func(tx *sqlstore.Tx) error {
		e, err := scanEndpoint(tx.QueryRowContext(ctx, s.q.lockEndpoint, tenant, id))
		if err != nil {
			return err
		}
		if err := idempotency.Claim(ctx, tx); err != nil {
			return err
		}
		evs, err := fn(&e)
		if err != nil {
			return err
		}
		e.Version++
		e.UpdatedAt = now.UTC()
		if err := s.writeEndpoint(ctx, tx, e); err != nil {
			return err
		}
		out = e
		return outbox.Emit(ctx, tx, evs...)
	})
	return out, err
}

func (s *Store) writeEndpoint(ctx context.Context, tx *sqlstore.Tx, e Endpoint) error {
	types, err := eventTypesJSON(e.EventTypes)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, s.q.updateEndpoint, e.TenantID, e.ID, e.URL, e.Description, types, e.Secret.Vault, e.Secret.Name,
		e.Secret.Version, e.Enabled, sqlstore.NullUTC(e.FailingSince), sqlstore.NullString(e.DisabledReason), sqlstore.NullUTC(e.DisabledAt), e.Version,
		e.UpdatedAt.UTC())
	return err
}

// DeleteEndpoint deletes the endpoint and returns it as it was (its secret reference, for Key
// Vault's soft delete). ifMatch, when set, must equal its version.
func (s *Store) DeleteEndpoint(ctx context.Context, sc sqlstore.Scope, tenant, id string, ifMatch *int64) (Endpoint, error) {
	var e Endpoint
	err := s.db.InTx(ctx, sc, func(tx *sqlstore.Tx) error {
		var err error
		if e, err = scanEndpoint(tx.QueryRowContext(ctx, s.q.lockEndpoint, tenant, id)); err != nil {
			return err
		}
		if ifMatch != nil && *ifMatch != e.Version {
			return ErrVersionMismatch
		}
		_, err = tx.ExecContext(ctx, s.q.deleteEndpoint, tenant, id)
		return err
	})
	return e, err
}

// CreateNotification inserts n (Pending, due now), its attachments' metadata and the events
// (NotificationRequested) into the outbox, and claims the Idempotency-Key, atomically. For the
// webhook channel the endpoint is read in the same transaction and check decides on it.
func (s *Store) CreateNotification(ctx context.Context, sc sqlstore.Scope, n Notification, atts []Attachment, evs []events.Event,
	check func(Endpoint) error) error {
	return s.db.InTx(ctx, sc, func(tx *sqlstore.Tx) error {
		if n.Channel == ChannelWebhook {
			e, err := scanEndpoint(tx.QueryRowContext(ctx, s.q.endpoint, n.TenantID, n.Recipient))
			if err != nil {
				return err
			}
			if err := check(e); err != nil {
				return err
			}
		}
		if err := idempotency.Claim(ctx, tx); err != nil {
			return err
		}
		var body, blobName sql.NullString
		if n.BodyBlob != "" {
			blobName = sqlstore.NullString(n.BodyBlob)
		} else {
			body = sql.NullString{String: n.Body, Valid: true}
		}
		if _, err := tx.ExecContext(ctx, s.q.insertNotification, n.TenantID, n.ID, string(n.Channel), n.Recipient, n.EventType, n.Subject,
			body, blobName, n.BodySize, n.BodySHA256, string(n.Status), sqlstore.NullUTC(n.NextAttemptAt), n.CreatedAt.UTC()); err != nil {
			return err
		}
		for _, a := range atts {
			if _, err := tx.ExecContext(ctx, s.q.insertAttachment, n.TenantID, n.ID, a.Name, a.ContentType, a.Size, a.SHA256, a.BlobName); err != nil {
				return err
			}
		}
		return outbox.Emit(ctx, tx, evs...)
	})
}

// Detail is a notification with its attachments and delivery log.
type Detail struct {
	Notification
	Attachments []Attachment
	Attempts    []Attempt
}

// Notification returns the notification with its attachments and attempts, or ErrNotFound.
func (s *Store) Notification(ctx context.Context, sc sqlstore.Scope, tenant, id string) (Detail, error) {
	var d Detail
	err := s.db.InReadTx(ctx, sc, func(tx *sqlstore.Tx) error {
		var err error
		if d.Notification, err = scanNotification(tx.QueryRowContext(ctx, s.q.notification, tenant, id)); err != nil {
			return err
		}
		if d.Attachments, err = s.readAttachments(ctx, tx, tenant, id); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, s.q.attempts, tenant, id)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var a Attempt
			var code sql.NullInt64
			if err := rows.Scan(&a.Attempt, &a.AttemptedAt, &code, &a.LatencyMS, &a.ErrorClass); err != nil {
				return err
			}
			a.AttemptedAt, a.StatusCode = a.AttemptedAt.UTC(), int(code.Int64)
			d.Attempts = append(d.Attempts, a)
		}
		return rows.Err()
	})
	return d, err
}

func (s *Store) readAttachments(ctx context.Context, tx *sqlstore.Tx, tenant, id string) ([]Attachment, error) {
	rows, err := tx.QueryContext(ctx, s.q.attachments, tenant, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Attachment
	for rows.Next() {
		var a Attachment
		if err := rows.Scan(&a.Name, &a.ContentType, &a.Size, &a.SHA256, &a.BlobName); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// ListFilter narrows a list of notifications; "" members do not filter.
type ListFilter struct {
	Status    Status
	Channel   Channel
	Recipient string
}

// Notifications returns up to limit of the tenant's notifications matching f whose id is below
// before ("" first page), newest first.
func (s *Store) Notifications(ctx context.Context, sc sqlstore.Scope, tenant string, f ListFilter, before string, limit int) ([]Notification, error) {
	if before == "" {
		before = maxUUID
	}
	var out []Notification
	err := s.db.InReadTx(ctx, sc, func(tx *sqlstore.Tx) error {
		rows, err := tx.QueryContext(ctx, s.q.listNotifications, tenant, string(f.Status), string(f.Channel), f.Recipient, before, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			n, err := scanNotification(rows)
			if err != nil {
				return err
			}
			out = append(out, n)
		}
		return rows.Err()
	})
	return out, err
}

// ClaimOne starts an attempt of the notification when it is due and no other transaction holds
// it: it becomes Sending with attempts+1, held until leaseUntil. ok is false when there was
// nothing to claim (delivered, failed, not due, or being attempted).
func (s *Store) ClaimOne(ctx context.Context, sc sqlstore.Scope, tenant, id string, now, leaseUntil time.Time) (n Notification, ok bool, err error) {
	err = s.db.InTx(ctx, sc, func(tx *sqlstore.Tx) error {
		n, err = scanNotification(tx.QueryRowContext(ctx, s.q.claimOne, tenant, id, now.UTC(), leaseUntil.UTC()))
		return err
	})
	if errors.Is(err, ErrNotFound) {
		return Notification{}, false, nil
	}
	return n, err == nil, err
}

// ClaimDue claims at most limit due notifications of every tenant (platform scope), at most
// perTenant of any one tenant, oldest due first, as ClaimOne claims, skipping rows another
// transaction holds: one tenant's backlog cannot fill a batch.
func (s *Store) ClaimDue(ctx context.Context, now, leaseUntil time.Time, limit, perTenant int) ([]Notification, error) {
	var out []Notification
	err := s.db.InTx(ctx, sqlstore.PlatformScope(), func(tx *sqlstore.Tx) error {
		out = out[:0]
		rows, err := tx.QueryContext(ctx, s.q.claimDue, now.UTC(), leaseUntil.UTC(), limit, perTenant)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			n, err := scanNotification(rows)
			if err != nil {
				return err
			}
			out = append(out, n)
		}
		return rows.Err()
	})
	return out, err
}

// DeliveryContext is what an attempt reads before it calls out: the attachments and, for a
// webhook, the endpoint (ErrEndpointNotFound when it was deleted).
func (s *Store) DeliveryContext(ctx context.Context, sc sqlstore.Scope, n Notification) (atts []Attachment, e Endpoint, err error) {
	err = s.db.InReadTx(ctx, sc, func(tx *sqlstore.Tx) error {
		if atts, err = s.readAttachments(ctx, tx, n.TenantID, n.ID); err != nil {
			return err
		}
		if n.Channel == ChannelWebhook {
			e, err = scanEndpoint(tx.QueryRowContext(ctx, s.q.endpoint, n.TenantID, n.Recipient))
		}
		return err
	})
	return atts, e, err
}

// Outcome is what an attempt records.
type Outcome struct {
	Attempt Attempt
	// Notification's new state: Status, NextAttemptAt, LastErrorClass, DeliveredAt, FailedAt.
	Status         Status
	NextAttemptAt  *time.Time
	DeliveredAt    *time.Time
	FailedAt       *time.Time
	LastErrorClass string
}

// RecordAttempt writes attempt n.Attempts's log row and, when the notification is still Sending
// on that attempt (no later claim took it over), its new state from decide, which gets the
// notification and, for a webhook whose endpoint still exists, the endpoint (nil otherwise) to
// change; the events decide returns go to the outbox. All in one transaction.
func (s *Store) RecordAttempt(ctx context.Context, sc sqlstore.Scope, n Notification, a Attempt, now time.Time,
	decide func(cur Notification, e *Endpoint) (Outcome, []events.Event, bool)) error {
	return s.db.InTx(ctx, sc, func(tx *sqlstore.Tx) error {
		if _, err := tx.ExecContext(ctx, s.q.insertAttempt, n.TenantID, n.ID, a.Attempt, a.AttemptedAt.UTC(),
			sql.NullInt64{Int64: int64(a.StatusCode), Valid: a.StatusCode != 0}, a.LatencyMS, sqlstore.NullString(a.ErrorClass)); err != nil {
			return err
		}
		cur, err := scanNotification(tx.QueryRowContext(ctx, s.q.lockNotification, n.TenantID, n.ID))
		if err != nil {
			return err
		}
		if cur.Status != StatusSending || cur.Attempts != a.Attempt {
			return nil // a later attempt owns the notification now
		}
		var ep *Endpoint
		if cur.Channel == ChannelWebhook {
			e, err := scanEndpoint(tx.QueryRowContext(ctx, s.q.lockEndpoint, cur.TenantID, cur.Recipient))
			switch {
			case err == nil:
				ep = &e
			case !errors.Is(err, ErrEndpointNotFound):
				return err
			}
		}
		before := Endpoint{}
		if ep != nil {
			before = *ep
		}
		o, evs, endpointChanged := decide(cur, ep)
		if _, err := tx.ExecContext(ctx, s.q.finishNotification, cur.TenantID, cur.ID, string(o.Status), sqlstore.NullUTC(o.NextAttemptAt),
			sqlstore.NullString(o.LastErrorClass), now.UTC(), sqlstore.NullUTC(o.DeliveredAt), sqlstore.NullUTC(o.FailedAt)); err != nil {
			return err
		}
		if ep != nil && endpointChanged {
			ep.Version = before.Version + 1
			ep.UpdatedAt = now.UTC()
			if err := s.writeEndpoint(ctx, tx, *ep); err != nil {
				return err
			}
		}
		return outbox.Emit(ctx, tx, evs...)
	})
}

// ---- the archive sweep (archive.go) ----

// archiveKey is a notification's position in the archive's keyset order (created_at, id).
type archiveKey struct {
	At     time.Time
	ID     string
	Status Status
}

// ArchiveUnits returns the tenants with a notification created before before (platform scope).
func (s *Store) ArchiveUnits(ctx context.Context, before time.Time) ([]string, error) {
	var out []string
	err := s.db.InReadTx(ctx, sqlstore.PlatformScope(), func(tx *sqlstore.Tx) error {
		out = out[:0]
		rows, err := tx.QueryContext(ctx, s.q.archiveUnits, before.UTC())
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var t string
			if err := rows.Scan(&t); err != nil {
				return err
			}
			out = append(out, t)
		}
		return rows.Err()
	})
	return out, err
}

// archiveNext returns the keys of the first limit notifications of tenant after the key after
// that were created before cutoff, in keyset order.
func (s *Store) archiveNext(ctx context.Context, tenant string, after archiveKey, cutoff time.Time, limit int) ([]archiveKey, error) {
	var out []archiveKey
	err := s.db.InReadTx(ctx, unitScope(tenant), func(tx *sqlstore.Tx) error {
		out = out[:0]
		rows, err := tx.QueryContext(ctx, s.q.archiveNext, tenant, after.At.UTC(), after.ID, cutoff.UTC(), limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var k archiveKey
			if err := rows.Scan(&k.At, &k.ID, &k.Status); err != nil {
				return err
			}
			k.At = k.At.UTC()
			out = append(out, k)
		}
		return rows.Err()
	})
	return out, err
}

// archiveRange returns the Delivered and Failed notifications of tenant from from to to
// (inclusive, keyset order) with their attachments and delivery logs.
func (s *Store) archiveRange(ctx context.Context, tenant string, from, to archiveKey) ([]Detail, error) {
	var out []Detail
	fa, ta := from.At.UTC(), to.At.UTC()
	err := s.db.InReadTx(ctx, unitScope(tenant), func(tx *sqlstore.Tx) error {
		out = out[:0]
		byID := map[string]int{}
		rows, err := tx.QueryContext(ctx, s.q.archiveRows, tenant, fa, from.ID, ta, to.ID)
		if err := eachRow(rows, err, func(r *sql.Rows) error {
			n, err := scanNotification(r)
			if err != nil {
				return err
			}
			byID[n.ID] = len(out)
			out = append(out, Detail{Notification: n, Attachments: []Attachment{}, Attempts: []Attempt{}})
			return nil
		}); err != nil {
			return err
		}
		rows, err = tx.QueryContext(ctx, s.q.archiveAttachments, tenant, fa, from.ID, ta, to.ID)
		if err := eachRow(rows, err, func(r *sql.Rows) error {
			var id string
			var a Attachment
			if err := r.Scan(&id, &a.Name, &a.ContentType, &a.Size, &a.SHA256, &a.BlobName); err != nil {
				return err
			}
			if i, ok := byID[id]; ok {
				out[i].Attachments = append(out[i].Attachments, a)
			}
			return nil
		}); err != nil {
			return err
		}
		rows, err = tx.QueryContext(ctx, s.q.archiveAttempts, tenant, fa, from.ID, ta, to.ID)
		return eachRow(rows, err, func(r *sql.Rows) error {
			var id string
			var a Attempt
			var code sql.NullInt64
			if err := r.Scan(&id, &a.Attempt, &a.AttemptedAt, &code, &a.LatencyMS, &a.ErrorClass); err != nil {
				return err
			}
			a.AttemptedAt, a.StatusCode = a.AttemptedAt.UTC(), int(code.Int64)
			if i, ok := byID[id]; ok {
				out[i].Attempts = append(out[i].Attempts, a)
			}
			return nil
		})
	})
	return out, err
}

// deleteArchiveRange deletes the range's notifications with their attachments' metadata and
// delivery logs in one transaction (tenant scope), with the event ev built when it deleted any
// notification, and returns how many notifications it deleted.
func (s *Store) deleteArchiveRange(ctx context.Context, tenant string, from, to archiveKey, ev func() (events.Event, error)) (int, error) {
	var n int64
	fa, ta := from.At.UTC(), to.At.UTC()
	err := s.db.InTx(ctx, unitScope(tenant), func(tx *sqlstore.Tx) error {
		if _, err := tx.ExecContext(ctx, s.q.deleteArchivedAttachments, tenant, fa, from.ID, ta, to.ID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q.deleteArchivedAttempts, tenant, fa, from.ID, ta, to.ID); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, s.q.deleteArchivedNotifications, tenant, fa, from.ID, ta, to.ID)
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		e, err := ev()
		if err != nil {
			return err
		}
		return outbox.Emit(ctx, tx, e)
	})
	return int(n), err
}

// eachRow calls f on each of rows (the result of a query that returned err) and closes them.
func eachRow(rows *sql.Rows, err error, f func(*sql.Rows) error) error {
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := f(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// unitScope is the tenant scope of a retention unit (a tenant id as ArchiveUnits listed it).
func unitScope(tenant string) sqlstore.Scope { return sqlstore.Scope{Tenant: tenant} }
