package notifications

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"spine/shared/blob"
	"spine/shared/events"
	"spine/shared/retention"
)

// The notification archive: NotificationArchive, daily, keeps 90 days of notifications hot (in
// SQL) and moves older ones to the notification-archive container, one create-only gzip'd JSON
// Lines blob per tenant, month and range:
//
//	<tenantId>/notifications/<yyyy>/<mm>/<firstId>_<lastId>.jsonl.gz
//
// each line a notification as stored (its row, its body inline or its body blob's name, its
// attachments' metadata and its whole delivery log). Then the range's body and attachment blobs
// go to the archive access tier and its rows are deleted, in one transaction with the
// RetentionApplied event. GET /api/notifications/{id} of an archived notification reads it back
// from its blob (ArchivedNotification).
//
// Only Delivered and Failed notifications are archived: a range ends before the first one still
// Pending or Sending, and its tenant waits for the retry timer to finish it (at most the Svix
// schedule, 27.7 h × SPINE_NOTIFICATIONS_RETRY_SCALE, far inside 90 days). So a sweep never races
// an attempt, and a range's rows no longer change: its export is the same bytes on every rerun.
const (
	// ArchiveSweep is the sweep's name and its timer function's.
	ArchiveSweep = "NotificationArchive"
	// ArchiveSchedule is its timer: daily at 02:00 UTC.
	ArchiveSchedule = "0 0 2 * * *"
	// ArchiveRetention is how long a notification stays hot (the storage map's 90 days; an edition
	// may change it under the retention kind "notifications", a tenant only lengthen it).
	ArchiveRetention = 90 * 24 * time.Hour
	// ArchiveContainer is the archive's container (infra: notification-archive, tiered to cold).
	ArchiveContainer = "notification-archive"
	// retentionKind and dataScope name the sweep's data for editions and legal holds.
	retentionKind = "notifications"
	dataScope     = "notifications"
)

// ErrArchived: the notification was archived; its body and attachment blobs are in the archive
// access tier and are not served (they need rehydration, an operator's task).
var ErrArchived = errors.New("notifications: the notification is archived")

// ErrArchiveUnreadable: an archive blob of the notification's month is not the gzip'd JSON Lines
// the sweep wrote (damaged or replaced); the notification cannot be answered from it.
var ErrArchiveUnreadable = errors.New("notifications: an archive blob is unreadable")

// errRangeGone: an export found neither the range's rows nor its blob.
var errRangeGone = errors.New("notifications: the archive range has no rows and no blob")

// ArchiveSweep returns the NotificationArchive sweep over the service, registered under name
// (ArchiveSweep in the binary; tests register their own names).
func (s *Service) ArchiveSweep(name string) retention.Sweep {
	return retention.Sweep{
		Name: name, Service: service, Schedule: ArchiveSchedule, Action: retention.ActionArchive,
		DataScope: dataScope, RetentionKind: retentionKind, Retention: ArchiveRetention,
		Units: func(ctx context.Context, before time.Time) ([]string, error) {
			if before.IsZero() {
				before = farFuture // an edition may shorten the retention: every tenant with rows
			}
			return s.store.ArchiveUnits(ctx, before)
		},
		Target: &archiveTarget{s: s},
	}
}

var farFuture = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

// archiveStart is the key before every notification.
var archiveStart = archiveKey{At: time.Unix(0, 0).UTC(), ID: "00000000-0000-0000-0000-000000000000"}

// keyLayout is a key's time: fixed width, so keys order as their times do.
const keyLayout = "2006-01-02T15:04:05.000000000Z"

// encodeKey is a range bound as the ledger keeps it: "<created_at>_<id>".
func encodeKey(k archiveKey) string { return k.At.UTC().Format(keyLayout) + "_" + k.ID }

func decodeKey(s string) (archiveKey, error) {
	at, id, ok := strings.Cut(s, "_")
	if !ok {
		return archiveKey{}, fmt.Errorf("notifications: archive key %q", s)
	}
	t, err := time.Parse(keyLayout, at)
	if err != nil {
		return archiveKey{}, fmt.Errorf("notifications: archive key %q: %w", s, err)
	}
	if _, err := uuid.Parse(id); err != nil {
		return archiveKey{}, fmt.Errorf("notifications: archive key %q: %w", s, err)
	}
	return archiveKey{At: t.UTC(), ID: id}, nil
}

func monthOf(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}

// archivePrefix is the folder of tenant's archive blobs of month.
func archivePrefix(tenant string, month time.Time) string {
	return fmt.Sprintf("%s/notifications/%04d/%02d/", tenant, month.Year(), int(month.Month()))
}

// archiveBlobName is the range's blob: the month of its first row, its first and last ids.
func archiveBlobName(tenant string, from, to archiveKey) string {
	return archivePrefix(tenant, monthOf(from.At)) + from.ID + "_" + to.ID + ".jsonl.gz"
}

// archiveTarget is the sweep's retention.Target over the service's store and Blob.
type archiveTarget struct{ s *Service }

// Next implements retention.Target: the next Delivered/Failed notifications of the tenant after
// after, created before cutoff, at most limit, within one UTC calendar month (the month of the
// first), ending before the first still Pending or Sending.
func (t *archiveTarget) Next(ctx context.Context, unit, after string, cutoff time.Time, limit int) (retention.Range, bool, error) {
	k := archiveStart
	if after != "" {
		var err error
		if k, err = decodeKey(after); err != nil {
			return retention.Range{}, false, err
		}
	}
	keys, err := t.s.store.archiveNext(ctx, unit, k, cutoff, limit)
	if err != nil {
		return retention.Range{}, false, err
	}
	var n int
	for n < len(keys) && keys[n].Status != StatusPending && keys[n].Status != StatusSending &&
		monthOf(keys[n].At).Equal(monthOf(keys[0].At)) {
		n++
	}
	if n == 0 {
		return retention.Range{}, false, nil
	}
	first, last := keys[0], keys[n-1]
	// Cut at a month's end with due rows after it: the tenant's next month goes on in this run.
	more := n < len(keys) && keys[n].Status != StatusPending && keys[n].Status != StatusSending
	return retention.Range{From: encodeKey(first), To: encodeKey(last), Count: n, FirstAt: first.At, LastAt: last.At,
		Label: first.At.Format("2006-01") + " " + first.ID + ".." + last.ID, More: more}, true, nil
}

func rangeKeys(r retention.Range) (from, to archiveKey, err error) {
	if from, err = decodeKey(r.From); err != nil {
		return from, to, err
	}
	to, err = decodeKey(r.To)
	return from, to, err
}

// Export implements retention.Target: the range as one gzip'd JSON Lines blob, create-only. A
// blob that exists already (a rerun after a crash) is accepted when it holds the same lines as
// the range produces now (its SHA-256, or that of its decompressed lines: a newer compressor may
// write other bytes for the same lines), else retention.ErrArtifactMismatch.
func (t *archiveTarget) Export(ctx context.Context, unit string, r retention.Range, _ retention.Evidence) (*retention.Artifact, error) {
	from, to, err := rangeKeys(r)
	if err != nil {
		return nil, err
	}
	ds, err := t.s.store.archiveRange(ctx, unit, from, to)
	if err != nil {
		return nil, err
	}
	name := archiveBlobName(unit, from, to)
	lines, err := archiveLines(ds)
	if err != nil {
		return nil, err
	}
	gz, err := gzipBytes(lines)
	if err != nil {
		return nil, err
	}
	if len(ds) == 0 {
		// The rows are gone (deleted by the attempt that wrote the blob): the blob is the record.
		have, err := t.s.blobs.Get(ctx, ArchiveContainer, name)
		switch {
		case errors.Is(err, blob.ErrNotFound):
			return nil, fmt.Errorf("%w: %s", errRangeGone, name)
		case err != nil:
			return nil, fmt.Errorf("%w: archive: %w", ErrUnavailable, err)
		}
		return retention.ArtifactOf(ArchiveContainer, name, have), nil
	}
	a, err := retention.PutArtifact(ctx, t.s.blobs, ArchiveContainer, name, gz, "application/gzip", func(have []byte) bool {
		if bytes.Equal(have, gz) {
			return true
		}
		got, err := gunzip(have)
		return err == nil && bytes.Equal(got, lines)
	})
	if err != nil && !errors.Is(err, retention.ErrArtifactMismatch) {
		return nil, fmt.Errorf("%w: archive: %w", ErrUnavailable, err)
	}
	return a, err
}

// Apply implements retention.Target: the range's body and attachment blobs go to the archive
// tier (idempotent: a blob already there, or gone, is fine), then the range's rows are deleted
// with the RetentionApplied event, in one transaction.
func (t *archiveTarget) Apply(ctx context.Context, unit string, r retention.Range, ev retention.Evidence) (int, error) {
	from, to, err := rangeKeys(r)
	if err != nil {
		return 0, err
	}
	ds, err := t.s.store.archiveRange(ctx, unit, from, to)
	if err != nil {
		return 0, err
	}
	tier := func(container, name string) error {
		if err := t.s.blobs.SetTier(ctx, container, name, blob.TierArchive); err != nil && !errors.Is(err, blob.ErrNotFound) {
			return fmt.Errorf("%w: archive tier: %w", ErrUnavailable, err)
		}
		return nil
	}
	for _, d := range ds {
		if d.BodyBlob != "" {
			if err := tier(BodiesContainer, d.BodyBlob); err != nil {
				return 0, err
			}
		}
		for _, a := range d.Attachments {
			if err := tier(AttachmentsContainer, a.BlobName); err != nil {
				return 0, err
			}
		}
	}
	return t.s.store.deleteArchiveRange(ctx, unit, from, to, func() (events.Event, error) { return retention.EvidenceEvent(ev) })
}

// archivedNotification is one line of an archive blob: a notification as it was stored. Member
// order is fixed (the struct's), times are UTC: the same rows give the same bytes.
type archivedNotification struct {
	TenantID  string `json:"tenantId"`
	ID        string `json:"id"`
	Channel   string `json:"channel"`
	Recipient string `json:"recipient"`
	EventType string `json:"eventType"`
	Subject   string `json:"subject"`
	// Body is the inline body (null when it is in Blob); BodyBlob the blob's name in
	// notification-bodies (null when inline).
	Body           *string              `json:"body"`
	BodyBlob       *string              `json:"bodyBlob"`
	BodySize       int64                `json:"bodySize"`
	BodySHA256     string               `json:"bodySha256"`
	Status         string               `json:"status"`
	Attempts       int                  `json:"attempts"`
	NextAttemptAt  *time.Time           `json:"nextAttemptAt"`
	LastErrorClass string               `json:"lastErrorClass"`
	CreatedAt      time.Time            `json:"createdAt"`
	UpdatedAt      time.Time            `json:"updatedAt"`
	DeliveredAt    *time.Time           `json:"deliveredAt"`
	FailedAt       *time.Time           `json:"failedAt"`
	Attachments    []archivedAttachment `json:"attachments"`
	DeliveryLog    []archivedAttempt    `json:"deliveryLog"`
}

type archivedAttachment struct {
	Name        string `json:"name"`
	ContentType string `json:"contentType"`
	Size        int64  `json:"size"`
	SHA256      string `json:"sha256"`
	BlobName    string `json:"blobName"`
}

type archivedAttempt struct {
	Attempt     int       `json:"attempt"`
	AttemptedAt time.Time `json:"attemptedAt"`
	StatusCode  int       `json:"statusCode"` // 0: no HTTP/SMTP answer
	LatencyMS   int       `json:"latencyMs"`
	ErrorClass  string    `json:"errorClass"`
}

func toArchived(d Detail) archivedNotification {
	n := d.Notification
	a := archivedNotification{TenantID: n.TenantID, ID: n.ID, Channel: string(n.Channel), Recipient: n.Recipient, EventType: n.EventType,
		Subject: n.Subject, BodySize: n.BodySize, BodySHA256: n.BodySHA256, Status: string(n.Status), Attempts: n.Attempts,
		NextAttemptAt: n.NextAttemptAt, LastErrorClass: n.LastErrorClass, CreatedAt: n.CreatedAt, UpdatedAt: n.UpdatedAt,
		DeliveredAt: n.DeliveredAt, FailedAt: n.FailedAt, Attachments: []archivedAttachment{}, DeliveryLog: []archivedAttempt{}}
	if n.BodyBlob != "" {
		a.BodyBlob = &n.BodyBlob
	} else {
		a.Body = &n.Body
	}
	for _, at := range d.Attachments {
		a.Attachments = append(a.Attachments, archivedAttachment(at))
	}
	for _, at := range d.Attempts {
		a.DeliveryLog = append(a.DeliveryLog, archivedAttempt(at))
	}
	return a
}

func (a archivedNotification) detail() Detail {
	d := Detail{Notification: Notification{TenantID: a.TenantID, ID: a.ID, Channel: Channel(a.Channel), Recipient: a.Recipient,
		EventType: a.EventType, Subject: a.Subject, BodySize: a.BodySize, BodySHA256: a.BodySHA256, Status: Status(a.Status),
		Attempts: a.Attempts, NextAttemptAt: a.NextAttemptAt, LastErrorClass: a.LastErrorClass, CreatedAt: a.CreatedAt,
		UpdatedAt: a.UpdatedAt, DeliveredAt: a.DeliveredAt, FailedAt: a.FailedAt}}
	if a.BodyBlob != nil {
		d.BodyBlob = *a.BodyBlob
	} else if a.Body != nil {
		d.Body = *a.Body
	}
	for _, at := range a.Attachments {
		d.Attachments = append(d.Attachments, Attachment(at))
	}
	for _, at := range a.DeliveryLog {
		d.Attempts = append(d.Attempts, Attempt(at))
	}
	return d
}

// archiveLines is the range's JSON Lines, one notification a line in keyset order.
func archiveLines(ds []Detail) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	for _, d := range ds {
		if err := enc.Encode(toArchived(d)); err != nil {
			return nil, err
		}
	}
	return buf.Bytes(), nil
}

// gzipBytes compresses data with a fixed header (no name, no modification time): the same data
// gives the same bytes.
func gzipBytes(data []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(data); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func gunzip(data []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	return io.ReadAll(zr)
}

// ---- reading the archive ----

// uuidV7Time is the creation time a UUIDv7 carries (its first 48 bits, Unix milliseconds); ok is
// false for another version.
func uuidV7Time(id string) (time.Time, bool) {
	u, err := uuid.Parse(id)
	if err != nil || u.Version() != 7 {
		return time.Time{}, false
	}
	var b [8]byte
	copy(b[2:], u[:6])
	return time.UnixMilli(int64(binary.BigEndian.Uint64(b[:]))).UTC(), true
}

// archiveMonths are the months whose blobs may hold notification id: the month of the time in
// its UUIDv7, and the neighbouring month when that time is within a minute of a month's edge (the
// id and created_at are stamped by the same clock, a moment apart).
func archiveMonths(id string) []time.Time {
	t, ok := uuidV7Time(id)
	if !ok {
		return nil
	}
	var out []time.Time
	for _, m := range []time.Time{monthOf(t), monthOf(t.Add(-time.Minute)), monthOf(t.Add(time.Minute))} {
		if !slices.ContainsFunc(out, m.Equal) {
			out = append(out, m)
		}
	}
	return out
}

// ArchivedNotification reads notification id of tenant from the archive, or ErrNotFound. No SQL
// index points at it: the id (a UUIDv7) gives the month, the month's blobs of the tenant are
// listed, and the blob whose first..last ids hold the id is read first. Keyset order is
// created_at, then id, and ids are stamped a moment apart from created_at: when the candidates do
// not hold it, the other blobs of the month whose first..last times, a minute wider on each side,
// hold the id's time are read — not every blob of the month, which would let any GET of an
// unknown id make the service read a whole month of a tenant's archive. Only the tenant's own
// folder is listed, so another tenant's id is not found.
func (s *Service) ArchivedNotification(ctx context.Context, tenant, id string) (Detail, error) {
	id = canonical(id)
	at, _ := uuidV7Time(id)
	for _, m := range archiveMonths(id) {
		names, err := s.blobs.List(ctx, ArchiveContainer, archivePrefix(tenant, m))
		if err != nil {
			return Detail{}, fmt.Errorf("%w: archive: %w", ErrUnavailable, err)
		}
		var first, rest []string
		for _, name := range names {
			lo, hi, ok := strings.Cut(strings.TrimSuffix(name[strings.LastIndexByte(name, '/')+1:], ".jsonl.gz"), "_")
			switch {
			case ok && lo <= id && id <= hi:
				first = append(first, name)
			case ok && !mayHold(lo, hi, at):
				// Its rows were created more than a minute away from the id's time.
			default:
				rest = append(rest, name)
			}
		}
		for _, name := range append(first, rest...) {
			d, ok, err := s.findInArchive(ctx, name, tenant, id)
			if err != nil || ok {
				return d, err
			}
		}
	}
	return Detail{}, ErrNotFound
}

// mayHold reports whether a range blob whose first and last ids are lo and hi may hold a
// notification whose id carries the time at: the ids' times, a minute wider on each side (ids and
// created_at are stamped a moment apart, as archiveMonths assumes), hold at. A bound that is no
// UUIDv7 tells nothing: true.
func mayHold(lo, hi string, at time.Time) bool {
	from, ok1 := uuidV7Time(lo)
	to, ok2 := uuidV7Time(hi)
	if !ok1 || !ok2 {
		return true
	}
	return !at.Before(from.Add(-time.Minute)) && !at.After(to.Add(time.Minute))
}

func (s *Service) findInArchive(ctx context.Context, name, tenant, id string) (Detail, bool, error) {
	rc, _, err := s.blobs.Open(ctx, ArchiveContainer, name)
	if errors.Is(err, blob.ErrNotFound) {
		return Detail{}, false, nil
	}
	if err != nil {
		return Detail{}, false, fmt.Errorf("%w: archive: %w", ErrUnavailable, err)
	}
	defer rc.Close()
	zr, err := gzip.NewReader(bufio.NewReader(rc))
	if err != nil {
		return Detail{}, false, fmt.Errorf("%w: %s: %w", ErrArchiveUnreadable, name, err)
	}
	defer zr.Close()
	dec := json.NewDecoder(zr)
	// Only the id is decoded for every line; the whole line once it matches.
	var line json.RawMessage
	for {
		if err := dec.Decode(&line); errors.Is(err, io.EOF) {
			return Detail{}, false, nil
		} else if err != nil {
			return Detail{}, false, fmt.Errorf("%w: %s: %w", ErrArchiveUnreadable, name, err)
		}
		var head struct {
			TenantID string `json:"tenantId"`
			ID       string `json:"id"`
		}
		if err := json.Unmarshal(line, &head); err != nil {
			return Detail{}, false, fmt.Errorf("%w: %s: %w", ErrArchiveUnreadable, name, err)
		}
		if head.ID != id || head.TenantID != tenant {
			continue
		}
		var a archivedNotification
		if err := json.Unmarshal(line, &a); err != nil {
			return Detail{}, false, fmt.Errorf("%w: %s: %w", ErrArchiveUnreadable, name, err)
		}
		return a.detail(), true, nil
	}
}
