package notifications

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/mail"
	"regexp"
	"strings"
	"time"

	"github.com/google/uuid"

	"spine/shared/blob"
	"spine/shared/contracts"
	"spine/shared/egress"
	"spine/shared/events"
	"spine/shared/ids"
	spinemail "spine/shared/mail"
	"spine/shared/secrets"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
	"spine/shared/text"
)

// The Blob containers (created by infra; by New on local stacks).
const (
	BodiesContainer      = "notification-bodies"
	AttachmentsContainer = "notification-attachments"
)

// Bounds of a notification request.
const (
	// MaxAttachmentBytes bounds the decoded attachments of one notification together (the
	// request's body is also bounded by SPINE_MAX_BODY_BYTES at the edge).
	MaxAttachmentBytes = 10 << 20
	// MaxAttachments bounds how many a notification has.
	MaxAttachments = 20
	// MaxBodyBytes bounds a body (inline or in Blob).
	MaxBodyBytes = 4 << 20
)

// Blobs is the part of *blob.Store the service uses.
type Blobs interface {
	PutStreamCreateOnly(ctx context.Context, container, name string, r io.Reader, contentType string) (blob.Written, error)
	// PutCreateOnly writes the archive's blobs (retention.PutArtifact).
	PutCreateOnly(ctx context.Context, container, name string, data []byte, contentType string) error
	Open(ctx context.Context, container, name string) (io.ReadCloser, blob.Properties, error)
	Get(ctx context.Context, container, name string) ([]byte, error)
	Delete(ctx context.Context, container, name string) error
	// SetTier and List serve the archive (archive.go).
	SetTier(ctx context.Context, container, name string, tier blob.Tier) error
	List(ctx context.Context, container, prefix string) ([]string, error)
}

// Vault is the part of *secrets.Vault the service uses: the webhook secrets live there only.
type Vault interface {
	Set(ctx context.Context, name, value, contentType string, tags map[string]string) (secrets.Secret, error)
	GetVersion(ctx context.Context, name, version string) (secrets.Secret, error)
	SetEnabled(ctx context.Context, name, version string, enabled bool) error
	Delete(ctx context.Context, name string) error
	Recover(ctx context.Context, name string) error
}

// ServiceConfig is the service's settings (shared/config Notifications) and seams.
type ServiceConfig struct {
	InlineBodyMax        int64
	RetryScale           float64
	EndpointDisableAfter time.Duration
	// AllowLoopback is SPINE_EGRESS_ALLOW_LOOPBACK: webhook URLs on loopback (local runs, tests).
	AllowLoopback bool
	// VaultName is what a secret reference's vault member holds: the vault's URL.
	VaultName string
	// MailFrom is the From of e-mail notifications.
	MailFrom string
	// Now is the clock (default sqlstore.Now).
	Now func() time.Time
}

// Service is the notifications service's rules over its store, Blob, Key Vault and senders.
type Service struct {
	store *Store
	blobs Blobs
	vault Vault
	mail  spinemail.Sender
	http  *http.Client
	cfg   ServiceConfig
	log   *slog.Logger
	fence *tenancy.Fence
}

// NewService returns the service. httpClient nil builds the delivery client (shared/egress: public
// addresses only, checked on the dialled address; loopback when cfg.AllowLoopback).
func NewService(store *Store, blobs Blobs, vault Vault, sender spinemail.Sender, dir tenancy.Directory, httpClient *http.Client,
	cfg ServiceConfig, logger *slog.Logger) *Service {
	if cfg.Now == nil {
		cfg.Now = sqlstore.Now
	}
	if cfg.InlineBodyMax <= 0 {
		cfg.InlineBodyMax = 8 << 10
	}
	if cfg.RetryScale <= 0 {
		cfg.RetryScale = 1
	}
	if cfg.EndpointDisableAfter <= 0 {
		cfg.EndpointDisableAfter = 120 * time.Hour
	}
	if cfg.MailFrom == "" {
		cfg.MailFrom = "Spine <no-reply@spine.local>"
	}
	if httpClient == nil {
		httpClient = egress.NewClient(egress.Config{AllowLoopback: cfg.AllowLoopback, Timeout: deliveryTimeout})
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var fence *tenancy.Fence
	if dir != nil {
		fence = &tenancy.Fence{Dir: dir}
	}
	return &Service{store: store, blobs: blobs, vault: vault, mail: sender, http: httpClient, cfg: cfg, log: logger, fence: fence}
}

// checkWritable is the write fence: a tenant whose state refuses writes takes none.
func (s *Service) checkWritable(ctx context.Context, tenant tenancy.TenantID) error {
	if s.fence == nil {
		return nil
	}
	return s.fence.CheckWrite(ctx, tenant)
}

// AttachmentInput is one attachment of a request, decoded.
type AttachmentInput struct {
	Name        string
	ContentType string
	Data        []byte
}

// SendInput is a notification request.
type SendInput struct {
	Channel     Channel
	Recipient   string
	EventType   string
	Subject     string
	Body        string
	Attachments []AttachmentInput
}

var eventTypeRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$`)

// validate checks in and normalizes it (the e-mail recipient to its address, ids to canonical form).
func (in *SendInput) validate() error {
	switch in.Channel {
	case ChannelWebhook, ChannelInApp:
		id, err := uuid.Parse(in.Recipient)
		if err != nil {
			return invalid("recipient: a %s notification's recipient is a %s id", in.Channel, map[Channel]string{ChannelWebhook: "webhook endpoint", ChannelInApp: "user"}[in.Channel])
		}
		in.Recipient = id.String()
	case ChannelEmail:
		a, err := mail.ParseAddress(in.Recipient)
		if err != nil || len(a.Address) > 320 || strings.ContainsAny(a.Address, "\r\n") {
			return invalid("recipient: an email notification's recipient is one e-mail address")
		}
		in.Recipient = a.Address
	default:
		return invalid("channel: one of webhook, email, inApp")
	}
	if in.EventType != "" && !eventTypeRE.MatchString(in.EventType) {
		return invalid("eventType: 1 to 100 of A-Z a-z 0-9 . _ : -")
	}
	if len([]rune(in.Subject)) > 998 || (in.Subject != "" && text.CheckLine(in.Subject) != nil) {
		return invalid("subject: one line of at most 998 characters")
	}
	if in.Channel == ChannelEmail && in.Subject == "" {
		return invalid("subject: required for email")
	}
	if len(in.Body) > MaxBodyBytes {
		return fmt.Errorf("%w: the body is larger than %d bytes", ErrBodyTooLarge, MaxBodyBytes)
	}
	if len(in.Attachments) > MaxAttachments {
		return fmt.Errorf("%w: more than %d attachments", ErrAttachmentTooLarge, MaxAttachments)
	}
	seen := map[string]bool{}
	var total int
	for i := range in.Attachments {
		a := &in.Attachments[i]
		if !attachmentNameRE.MatchString(a.Name) || seen[a.Name] {
			return ErrInvalidAttachment
		}
		seen[a.Name] = true
		if a.ContentType == "" {
			a.ContentType = "application/octet-stream"
		}
		if mt, _, err := mime.ParseMediaType(a.ContentType); err != nil || len(a.ContentType) > 200 || !strings.Contains(mt, "/") {
			return invalid("attachments[%d].contentType: a media type such as application/pdf", i)
		}
		total += len(a.Data)
	}
	if total > MaxAttachmentBytes {
		return fmt.Errorf("%w: the attachments together are larger than %d bytes", ErrAttachmentTooLarge, MaxAttachmentBytes)
	}
	return nil
}

// attachmentBlobName is <tenantId>/notifications/<yyyy>/<mm>/<dd>/<id>/<name>: blob.Name's
// convention with the notification's id as a folder of its attachments (name validated).
func attachmentBlobName(tenant string, at time.Time, id, name string) string {
	return strings.TrimSuffix(blob.Name(tenant, "notifications", at, id, "d"), ".d") + "/" + name
}

// Send accepts a notification: its large body and attachments go to Blob first (create-only;
// if one fails nothing is acknowledged and what was written is deleted), then the row, the
// attachments' metadata and NotificationRequested commit together. The request never delivers.
func (s *Service) Send(ctx context.Context, tenant tenancy.TenantID, in SendInput) (Detail, error) {
	if err := in.validate(); err != nil {
		return Detail{}, err
	}
	if err := s.checkWritable(ctx, tenant); err != nil {
		return Detail{}, err
	}
	sc, t := sqlstore.TenantScope(tenant), tenant.String()
	checkEndpoint := func(e Endpoint) error {
		if !e.Enabled {
			return ErrEndpointDisabled
		}
		if !e.Accepts(in.EventType) {
			return ErrEventTypeNotAccepted
		}
		return nil
	}
	if in.Channel == ChannelWebhook {
		// Before any blob is written: the common refusals cost nothing.
		e, err := s.store.Endpoint(ctx, sc, t, in.Recipient)
		if err != nil {
			return Detail{}, err
		}
		if err := checkEndpoint(e); err != nil {
			return Detail{}, err
		}
	}
	now := s.cfg.Now().UTC()
	id := ids.New()
	sum := sha256.Sum256([]byte(in.Body))
	n := Notification{TenantID: t, ID: id, Channel: in.Channel, Recipient: in.Recipient, EventType: in.EventType, Subject: in.Subject,
		BodySize: int64(len(in.Body)), BodySHA256: hex.EncodeToString(sum[:]), Status: StatusPending, NextAttemptAt: &now,
		CreatedAt: now, UpdatedAt: now}
	var written []struct{ container, name string }
	cleanup := func() {
		for _, w := range written {
			if err := s.blobs.Delete(context.WithoutCancel(ctx), w.container, w.name); err != nil {
				s.log.WarnContext(ctx, "notifications: cannot delete the blob of a refused notification", "container", w.container, "blob", w.name, "error", err)
			}
		}
	}
	if int64(len(in.Body)) > s.cfg.InlineBodyMax {
		n.BodyBlob = blob.Name(t, "notifications", now, id, "body")
		w, err := s.blobs.PutStreamCreateOnly(ctx, BodiesContainer, n.BodyBlob, strings.NewReader(in.Body), "text/plain; charset=utf-8")
		if err != nil {
			return Detail{}, fmt.Errorf("%w: body: %w", ErrUnavailable, err)
		}
		written = append(written, struct{ container, name string }{BodiesContainer, n.BodyBlob})
		if w.Size != n.BodySize || hex.EncodeToString(w.SHA256[:]) != n.BodySHA256 {
			cleanup()
			return Detail{}, fmt.Errorf("%w: the body blob does not match what was sent", ErrUnavailable)
		}
	} else {
		n.Body = in.Body
	}
	atts := make([]Attachment, 0, len(in.Attachments))
	for _, a := range in.Attachments {
		name := attachmentBlobName(t, now, id, a.Name)
		w, err := s.blobs.PutStreamCreateOnly(ctx, AttachmentsContainer, name, bytes.NewReader(a.Data), a.ContentType)
		if err != nil {
			cleanup()
			return Detail{}, fmt.Errorf("%w: attachment: %w", ErrUnavailable, err)
		}
		written = append(written, struct{ container, name string }{AttachmentsContainer, name})
		atts = append(atts, Attachment{Name: a.Name, ContentType: a.ContentType, Size: w.Size, SHA256: hex.EncodeToString(w.SHA256[:]), BlobName: name})
	}
	data := contracts.NotificationRequestedData{TenantID: t, NotificationID: id, Channel: string(in.Channel)}
	if in.Channel == ChannelWebhook {
		data.EndpointID = in.Recipient
	}
	ev, err := events.New(service, contracts.NotificationRequested, id, t, data, events.MetaFrom(ctx))
	if err != nil {
		cleanup()
		return Detail{}, err
	}
	if err := s.store.CreateNotification(ctx, sc, n, atts, []events.Event{ev}, checkEndpoint); err != nil {
		cleanup()
		return Detail{}, err
	}
	return Detail{Notification: n, Attachments: atts}, nil
}

// Notification returns one notification with its attachments and delivery log.
func (s *Service) Notification(ctx context.Context, tenant tenancy.TenantID, id string) (Detail, error) {
	if _, err := uuid.Parse(id); err != nil {
		return Detail{}, ErrNotFound
	}
	return s.store.Notification(ctx, sqlstore.TenantScope(tenant), tenant.String(), canonical(id))
}

// NotificationOrArchived returns the notification from SQL or, once archived (90 days hot), from
// the archive (ArchivedNotification: slower, it reads a blob); archived says which. ErrNotFound
// when neither has it for the tenant.
func (s *Service) NotificationOrArchived(ctx context.Context, tenant tenancy.TenantID, id string) (d Detail, archived bool, err error) {
	d, err = s.Notification(ctx, tenant, id)
	if !errors.Is(err, ErrNotFound) {
		return d, false, err
	}
	if _, ok := uuidV7Time(id); !ok {
		return Detail{}, false, ErrNotFound
	}
	d, err = s.ArchivedNotification(ctx, tenant.String(), id)
	return d, err == nil, err
}

// Body returns a notification's body: inline, or read from Blob.
func (s *Service) Body(ctx context.Context, n Notification) (string, error) {
	if n.BodyBlob == "" {
		return n.Body, nil
	}
	b, err := s.blobs.Get(ctx, BodiesContainer, n.BodyBlob)
	if err != nil {
		return "", fmt.Errorf("%w: body: %w", ErrUnavailable, err)
	}
	return string(b), nil
}

// OpenAttachment streams an attachment's content (the caller closes it) with its metadata.
func (s *Service) OpenAttachment(ctx context.Context, tenant tenancy.TenantID, id, name string) (io.ReadCloser, Attachment, error) {
	if !attachmentNameRE.MatchString(name) {
		return nil, Attachment{}, ErrAttachmentNotFound
	}
	d, archived, err := s.NotificationOrArchived(ctx, tenant, id)
	if err != nil {
		return nil, Attachment{}, err
	}
	for _, a := range d.Attachments {
		if a.Name == name && archived {
			return nil, Attachment{}, ErrArchived
		}
		if a.Name == name {
			rc, _, err := s.blobs.Open(ctx, AttachmentsContainer, a.BlobName)
			if err != nil {
				return nil, Attachment{}, fmt.Errorf("%w: attachment: %w", ErrUnavailable, err)
			}
			return rc, a, nil
		}
	}
	return nil, Attachment{}, ErrAttachmentNotFound
}

// Notifications lists a tenant's notifications, newest first (a user's in-app notifications:
// channel inApp, recipient the user id).
func (s *Service) Notifications(ctx context.Context, tenant tenancy.TenantID, f ListFilter, before string, limit int) ([]Notification, error) {
	switch f.Status {
	case "", StatusPending, StatusSending, StatusDelivered, StatusFailed:
	default:
		return nil, invalid("status: one of Pending, Sending, Delivered, Failed")
	}
	switch f.Channel {
	case "", ChannelWebhook, ChannelEmail, ChannelInApp:
	default:
		return nil, invalid("channel: one of webhook, email, inApp")
	}
	if len(f.Recipient) > 320 {
		return nil, invalid("recipient: at most 320 characters")
	}
	if id, err := uuid.Parse(f.Recipient); err == nil {
		f.Recipient = id.String()
	}
	return s.store.Notifications(ctx, sqlstore.TenantScope(tenant), tenant.String(), f, before, limit)
}

func canonical(id string) string {
	u, err := uuid.Parse(id)
	if err != nil {
		return id
	}
	return u.String()
}

// ---- webhook endpoints ----

// EndpointInput is what creating or patching an endpoint sets (nil: unchanged on patch).
type EndpointInput struct {
	URL         *string
	Description *string
	EventTypes  *[]string // a nil slice inside clears the filter
	ClearTypes  bool
	Enabled     *bool
}

func (s *Service) secretName(tenant, id string) string { return "webhook-" + tenant + "-" + id }

func checkEventTypes(types []string) error {
	if len(types) > 50 {
		return invalid("eventTypes: at most 50")
	}
	for _, t := range types {
		if !eventTypeRE.MatchString(t) {
			return invalid("eventTypes: each 1 to 100 of A-Z a-z 0-9 . _ : -")
		}
	}
	return nil
}

// CreateEndpoint creates an enabled endpoint with a fresh signing secret, written to Key Vault
// first (webhook-<tenant>-<id>); the row holds only its reference. The secret is returned for the
// caller to show once.
func (s *Service) CreateEndpoint(ctx context.Context, tenant tenancy.TenantID, in EndpointInput) (Endpoint, string, error) {
	if in.URL == nil {
		return Endpoint{}, "", invalid("url: required")
	}
	if err := checkURL(*in.URL, s.cfg.AllowLoopback); err != nil {
		return Endpoint{}, "", err
	}
	e := Endpoint{TenantID: tenant.String(), ID: ids.New(), URL: *in.URL, Enabled: true, Version: 1}
	if in.Description != nil {
		if len([]rune(*in.Description)) > 500 {
			return Endpoint{}, "", invalid("description: at most 500 characters")
		}
		e.Description = *in.Description
	}
	if in.EventTypes != nil && !in.ClearTypes {
		if err := checkEventTypes(*in.EventTypes); err != nil {
			return Endpoint{}, "", err
		}
		e.EventTypes = append([]string{}, *in.EventTypes...)
	}
	if in.Enabled != nil {
		e.Enabled = *in.Enabled
	}
	if err := s.checkWritable(ctx, tenant); err != nil {
		return Endpoint{}, "", err
	}
	secret, err := newSecret()
	if err != nil {
		return Endpoint{}, "", err
	}
	name := s.secretName(e.TenantID, e.ID)
	v, err := s.vault.Set(ctx, name, secret, "text/plain", map[string]string{"tenant": e.TenantID, "endpoint": e.ID})
	if err != nil {
		return Endpoint{}, "", fmt.Errorf("%w: key vault: %w", ErrUnavailable, err)
	}
	e.Secret = SecretRef{Vault: s.cfg.VaultName, Name: name, Version: v.Version}
	now := s.cfg.Now().UTC()
	e.CreatedAt, e.UpdatedAt = now, now
	if err := s.store.CreateEndpoint(ctx, sqlstore.TenantScope(tenant), e); err != nil {
		// The row did not commit: soft-delete the secret nobody references.
		if derr := s.vault.Delete(context.WithoutCancel(ctx), name); derr != nil {
			s.log.WarnContext(ctx, "notifications: cannot delete the secret of an endpoint not created", "secret", name, "error", derr)
		}
		return Endpoint{}, "", err
	}
	return e, secret, nil
}

// Endpoint returns one endpoint.
func (s *Service) Endpoint(ctx context.Context, tenant tenancy.TenantID, id string) (Endpoint, error) {
	if _, err := uuid.Parse(id); err != nil {
		return Endpoint{}, ErrEndpointNotFound
	}
	return s.store.Endpoint(ctx, sqlstore.TenantScope(tenant), tenant.String(), canonical(id))
}

// Endpoints lists a tenant's endpoints in id order.
func (s *Service) Endpoints(ctx context.Context, tenant tenancy.TenantID, after string, limit int) ([]Endpoint, error) {
	return s.store.Endpoints(ctx, sqlstore.TenantScope(tenant), tenant.String(), after, limit)
}

// PatchEndpoint changes url, description, eventTypes or enabled. Enabling clears the disabled
// reason and the failure run; disabling records reason "manual". ifMatch, when set, must equal
// the version.
func (s *Service) PatchEndpoint(ctx context.Context, tenant tenancy.TenantID, id string, in EndpointInput, ifMatch *int64) (Endpoint, error) {
	if _, err := uuid.Parse(id); err != nil {
		return Endpoint{}, ErrEndpointNotFound
	}
	if in.URL != nil {
		if err := checkURL(*in.URL, s.cfg.AllowLoopback); err != nil {
			return Endpoint{}, err
		}
	}
	if in.Description != nil && len([]rune(*in.Description)) > 500 {
		return Endpoint{}, invalid("description: at most 500 characters")
	}
	if in.EventTypes != nil {
		if err := checkEventTypes(*in.EventTypes); err != nil {
			return Endpoint{}, err
		}
	}
	if err := s.checkWritable(ctx, tenant); err != nil {
		return Endpoint{}, err
	}
	now := s.cfg.Now().UTC()
	return s.store.UpdateEndpoint(ctx, sqlstore.TenantScope(tenant), tenant.String(), canonical(id), now, func(e *Endpoint) ([]events.Event, error) {
		if ifMatch != nil && *ifMatch != e.Version {
			return nil, ErrVersionMismatch
		}
		if in.URL != nil {
			e.URL = *in.URL
		}
		if in.Description != nil {
			e.Description = *in.Description
		}
		switch {
		case in.ClearTypes:
			e.EventTypes = nil
		case in.EventTypes != nil:
			e.EventTypes = append([]string{}, *in.EventTypes...)
		}
		if in.Enabled != nil && *in.Enabled != e.Enabled {
			e.Enabled = *in.Enabled
			if e.Enabled {
				e.DisabledReason, e.DisabledAt, e.FailingSince = "", nil, nil
			} else {
				e.DisabledReason, e.DisabledAt = "manual", &now
			}
		}
		return nil, nil
	})
}

// DeleteEndpoint deletes the endpoint and soft-deletes its secret in Key Vault (recoverable for
// the vault's retention). Notifications still due to it fail (endpoint-gone).
func (s *Service) DeleteEndpoint(ctx context.Context, tenant tenancy.TenantID, id string, ifMatch *int64) error {
	if _, err := uuid.Parse(id); err != nil {
		return ErrEndpointNotFound
	}
	cur, err := s.Endpoint(ctx, tenant, id)
	if err != nil {
		return err
	}
	if err := s.checkWritable(ctx, tenant); err != nil {
		return err
	}
	if ifMatch != nil && *ifMatch != cur.Version {
		return ErrVersionMismatch
	}
	// The vault first, as integrations do: a Key Vault failure (503) leaves the endpoint as it
	// was, so no row-less secret is ever left behind; a SQL failure afterwards recovers the secret.
	vaultDeleted := true
	if err := s.vault.Delete(ctx, cur.Secret.Name); err != nil {
		if !errors.Is(err, secrets.ErrNotFound) {
			return fmt.Errorf("%w: key vault: %w", ErrUnavailable, err)
		}
		vaultDeleted = false
	}
	if _, err := s.store.DeleteEndpoint(ctx, sqlstore.TenantScope(tenant), tenant.String(), canonical(id), ifMatch); err != nil {
		if vaultDeleted {
			if rerr := s.vault.Recover(context.WithoutCancel(ctx), cur.Secret.Name); rerr != nil {
				s.log.WarnContext(ctx, "notifications: cannot recover the secret of an endpoint whose delete failed", "secret", cur.Secret.Name, "error", rerr)
			}
		}
		return err
	}
	return nil
}

// RotateSecret writes a new secret version for the endpoint, points the row at it, then disables
// the previous version: deliveries are signed with the new secret only (one v1 signature) from
// the commit on. The new secret is returned for the caller to show once.
func (s *Service) RotateSecret(ctx context.Context, tenant tenancy.TenantID, id string) (Endpoint, string, error) {
	cur, err := s.Endpoint(ctx, tenant, id)
	if err != nil {
		return Endpoint{}, "", err
	}
	if err := s.checkWritable(ctx, tenant); err != nil {
		return Endpoint{}, "", err
	}
	secret, err := newSecret()
	if err != nil {
		return Endpoint{}, "", err
	}
	v, err := s.vault.Set(ctx, cur.Secret.Name, secret, "text/plain", map[string]string{"tenant": cur.TenantID, "endpoint": cur.ID})
	if err != nil {
		return Endpoint{}, "", fmt.Errorf("%w: key vault: %w", ErrUnavailable, err)
	}
	var old string
	e, err := s.store.UpdateEndpoint(ctx, sqlstore.TenantScope(tenant), cur.TenantID, cur.ID, s.cfg.Now(), func(e *Endpoint) ([]events.Event, error) {
		old = e.Secret.Version
		e.Secret.Version = v.Version
		return nil, nil
	})
	if err != nil {
		if derr := s.vault.SetEnabled(context.WithoutCancel(ctx), cur.Secret.Name, v.Version, false); derr != nil {
			s.log.WarnContext(ctx, "notifications: cannot disable an unused secret version", "secret", cur.Secret.Name, "error", derr)
		}
		return Endpoint{}, "", err
	}
	if old != "" && old != v.Version {
		if err := s.vault.SetEnabled(ctx, cur.Secret.Name, old, false); err != nil {
			s.log.WarnContext(ctx, "notifications: cannot disable the previous secret version", "secret", cur.Secret.Name, "error", err)
		}
	}
	return e, secret, nil
}
