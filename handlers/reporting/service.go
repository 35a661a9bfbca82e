package reporting

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"spine/shared/blob"
	"spine/shared/contracts"
	"spine/shared/entitlements"
	"spine/shared/events"
	"spine/shared/idempotency"
	"spine/shared/ids"
	"spine/shared/outbox"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
	input "spine/shared/text"
)

// Signer signs read-only URLs of one blob (blob.Store.ReadURL): a shared-key SAS against
// Azurite, a user-delegation SAS with the managed identity.
type Signer interface {
	ReadURL(ctx context.Context, container, name string, o blob.SASOptions) (string, error)
}

// Artifacts is what the worker asks of Blob storage (blob.Store): a streamed create-only upload,
// and deleting what an abandoned attempt may have left.
type Artifacts interface {
	PutStreamCreateOnly(ctx context.Context, container, name string, r io.Reader, contentType string) (blob.Written, error)
	Delete(ctx context.Context, container, name string) error
}

// ServiceConfig tunes the service; zero fields take the documented defaults.
type ServiceConfig struct {
	// ArtifactTTL is how long an artifact is kept (SPINE_REPORTING_ARTIFACT_TTL, default one year);
	// a tenant's edition may override it (entitlements Retention["reportArtifacts"]).
	ArtifactTTL time.Duration
	// SASTTL is a download URL's lifetime (SPINE_REPORTING_SAS_TTL, default 5 minutes, at most 1 hour).
	SASTTL time.Duration
	// Lease is how long a worker's claim of a run holds without renewal (default 2 minutes; the
	// worker renews it every Lease/3 while it streams). A lapsed lease may be claimed again.
	Lease time.Duration
	// Now is the clock (default sqlstore.Now).
	Now func() time.Time
}

func (c ServiceConfig) withDefaults() ServiceConfig {
	if c.ArtifactTTL <= 0 {
		c.ArtifactTTL = DefaultArtifactTTL
	}
	if c.SASTTL <= 0 {
		c.SASTTL = blob.DefaultSASTTL
	}
	if c.Lease <= 0 {
		c.Lease = 2 * time.Minute
	}
	if c.Now == nil {
		c.Now = sqlstore.Now
	}
	return c
}

// DefaultArtifactTTL is an artifact's default lifetime: one year.
const DefaultArtifactTTL = 365 * 24 * time.Hour

// RetentionKind is the entitlements Retention key of report artifacts.
const RetentionKind = "reportArtifacts"

// Service holds the reporting rules over the store, Blob storage and the tenants' editions.
type Service struct {
	store     *Store
	blobs     Artifacts
	signer    Signer
	ents      entitlements.Source // nil: no editions (the default TTL for everyone)
	fence     tenancy.Fence
	cfg       ServiceConfig
	log       *slog.Logger
	readModel *readModelConsumer
}

// NewService returns the service. ents may be nil.
func NewService(store *Store, blobs Artifacts, signer Signer, ents entitlements.Source, dir tenancy.Directory, cfg ServiceConfig, log *slog.Logger) *Service {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Service{store: store, blobs: blobs, signer: signer, ents: ents, fence: tenancy.Fence{Dir: dir}, cfg: cfg.withDefaults(), log: log}
	s.readModel = s.newReadModelConsumer()
	return s
}

// writable checks the caller reaches tenant and the tenant accepts writes (the write fence).
func (s *Service) writable(ctx context.Context, c tenancy.Caller, tenant tenancy.TenantID) error {
	if err := c.Reaches(tenant); err != nil {
		return err
	}
	return s.fence.CheckWrite(ctx, tenant)
}

// ReportInput is a new definition as the API gives it (parameters as decoded JSON).
type ReportInput struct {
	Name       string
	Source     string
	Parameters map[string]any
	Format     string
}

// maxSubject is the bound of the created_by and requested_by columns (characters; the migration
// is merged and never edited).
const maxSubject = 200

// storedSubject is a caller's token subject as created_by and requested_by hold it: as it is
// when it fits (at most maxSubject bytes, so at most maxSubject characters on either engine,
// UTF-16 code units on SQL Server included; valid UTF-8 without NUL, which neither engine's text
// holds; not empty), else "sha256:<hex of the subject>" — the same subject always the same value,
// as shared/idempotency keys an over-long caller. A subject is the issuer's to choose; an odd one
// must not fail the request.
func storedSubject(sub string) string {
	if sub != "" && len(sub) <= maxSubject && utf8.ValidString(sub) && !strings.ContainsRune(sub, 0) {
		return sub
	}
	sum := sha256.Sum256([]byte(sub))
	return "sha256:" + hex.EncodeToString(sum[:])
}

func checkName(name string) error {
	if n := utf8.RuneCountInString(name); n < 1 || n > 200 {
		return invalid(ErrInvalidReport, "name", "must be 1 to 200 characters")
	}
	if input.CheckLine(name) != nil {
		return invalid(ErrInvalidReport, "name", "must be one line (no line breaks, tabs, U+2028 or U+2029)")
	}
	return nil
}

func checkFormat(f string) (Format, error) {
	if !Format(f).Valid() {
		return "", invalid(ErrInvalidReport, "format", "must be csv, json or xlsx")
	}
	return Format(f), nil
}

// CreateReport creates a definition: name, a built-in source, its default parameters (typed and
// bounded; required ones may be left to the run) and the output format.
func (s *Service) CreateReport(ctx context.Context, c tenancy.Caller, tenant tenancy.TenantID, in ReportInput) (Report, error) {
	if err := s.writable(ctx, c, tenant); err != nil {
		return Report{}, err
	}
	if err := checkName(in.Name); err != nil {
		return Report{}, err
	}
	src, err := lookupSource(in.Source)
	if err != nil {
		return Report{}, err
	}
	params, err := parseParameters(src, in.Parameters)
	if err != nil {
		return Report{}, err
	}
	if err := boundsIfComplete(src, params); err != nil {
		return Report{}, err
	}
	format, err := checkFormat(in.Format)
	if err != nil {
		return Report{}, err
	}
	now := s.cfg.Now()
	r := Report{ID: ids.New(), Name: in.Name, Source: src.Key, Parameters: params, Format: format, CreatedBy: storedSubject(c.Subject),
		Version: 1, CreatedAt: now, UpdatedAt: now}
	err = s.store.Write(ctx, tenant, func(tx *Tx) error {
		if err := idempotency.Claim(ctx, tx.Tx); err != nil {
			return err
		}
		return tx.InsertReport(ctx, r)
	})
	return r, err
}

// boundsIfComplete checks the cross-parameter bounds of the parameters given so far.
func boundsIfComplete(src *Source, p map[string]string) error {
	err := completeParameters(src, p)
	var ie *InputError
	if errors.As(err, &ie) && p[ie.Field[len("parameters."):]] == "" {
		return nil // only a missing required parameter: the run may give it
	}
	return err
}

// Reports lists the tenant's definitions after id after, by id.
func (s *Service) Reports(ctx context.Context, tenant tenancy.TenantID, after string, limit int) ([]Report, error) {
	var out []Report
	err := s.store.Read(ctx, tenant, func(tx *Tx) (err error) { out, err = tx.Reports(ctx, after, limit); return err })
	return out, err
}

// Report returns a definition, or ErrReportNotFound.
func (s *Service) Report(ctx context.Context, tenant tenancy.TenantID, id string) (Report, error) {
	var out Report
	err := s.store.Read(ctx, tenant, func(tx *Tx) (err error) { out, err = tx.Report(ctx, id); return err })
	return out, err
}

// ReportPatch is a merge patch of a definition (nil: unchanged). The source is fixed.
type ReportPatch struct {
	Name       *string
	Parameters map[string]any // nil: unchanged; replaces the whole set otherwise
	Format     *string
}

// UpdateReport applies patch (ifMatch, when set, must be the current version).
func (s *Service) UpdateReport(ctx context.Context, c tenancy.Caller, tenant tenancy.TenantID, id string, p ReportPatch, ifMatch *int64) (Report, error) {
	if err := s.writable(ctx, c, tenant); err != nil {
		return Report{}, err
	}
	var out Report
	err := s.store.Write(ctx, tenant, func(tx *Tx) error {
		r, err := tx.LockReport(ctx, id)
		if err != nil {
			return err
		}
		if ifMatch != nil && *ifMatch != r.Version {
			return ErrVersionMismatch
		}
		if p.Name != nil {
			if err := checkName(*p.Name); err != nil {
				return err
			}
			r.Name = *p.Name
		}
		if p.Parameters != nil {
			src, err := lookupSource(r.Source)
			if err != nil {
				return err
			}
			if r.Parameters, err = parseParameters(src, p.Parameters); err != nil {
				return err
			}
			if err := boundsIfComplete(src, r.Parameters); err != nil {
				return err
			}
		}
		if p.Format != nil {
			if r.Format, err = checkFormat(*p.Format); err != nil {
				return err
			}
		}
		r.Version++
		r.UpdatedAt = s.cfg.Now()
		out = r
		return tx.UpdateReport(ctx, r)
	})
	return out, err
}

// DeleteReport deletes a definition softly: it is not found again, its runs stay readable.
func (s *Service) DeleteReport(ctx context.Context, c tenancy.Caller, tenant tenancy.TenantID, id string) error {
	if err := s.writable(ctx, c, tenant); err != nil {
		return err
	}
	return s.store.Write(ctx, tenant, func(tx *Tx) error { return tx.DeleteReport(ctx, id, s.cfg.Now()) })
}

// GenerateReport queues a run of the report with its parameters overridden by params (the merged
// set must be complete and within bounds) and emits ReportRequested, which the ReportGeneration
// worker consumes.
func (s *Service) GenerateReport(ctx context.Context, c tenancy.Caller, tenant tenancy.TenantID, reportID string, params map[string]any) (Run, error) {
	if err := s.writable(ctx, c, tenant); err != nil {
		return Run{}, err
	}
	var out Run
	err := s.store.Write(ctx, tenant, func(tx *Tx) error {
		r, err := tx.Report(ctx, reportID)
		if err != nil {
			return err
		}
		src, err := lookupSource(r.Source)
		if err != nil {
			return err
		}
		over, err := parseParameters(src, params)
		if err != nil {
			return err
		}
		merged := mergeParameters(r.Parameters, over)
		if err := completeParameters(src, merged); err != nil {
			return err
		}
		if err := idempotency.Claim(ctx, tx.Tx); err != nil {
			return err
		}
		run := Run{ID: ids.New(), ReportID: r.ID, Status: RunQueued, Source: r.Source, Format: r.Format, Parameters: merged,
			RequestedBy: storedSubject(c.Subject), CreatedAt: s.cfg.Now()}
		if err := tx.InsertRun(ctx, run); err != nil {
			return err
		}
		ev, err := events.New(service, contracts.ReportRequested, run.ID, tenant.String(), contracts.ReportRequestedData{
			TenantID: tenant.String(), ReportID: r.ID, RunID: run.ID, Source: run.Source, Format: string(run.Format),
			Parameters: []byte(parametersJSON(merged)), RequestedBy: run.RequestedBy, RequestedAt: run.CreatedAt,
		}, events.MetaFrom(ctx))
		if err != nil {
			return err
		}
		out = run
		return outbox.Emit(ctx, tx.Tx, ev)
	})
	return out, err
}

// Runs lists a report's runs older than run before, newest first (ErrReportNotFound for a report
// the tenant does not have, or deleted).
func (s *Service) Runs(ctx context.Context, tenant tenancy.TenantID, reportID, before string, limit int) ([]Run, error) {
	var out []Run
	err := s.store.Read(ctx, tenant, func(tx *Tx) error {
		if _, err := tx.Report(ctx, reportID); err != nil {
			return err
		}
		var err error
		out, err = tx.Runs(ctx, reportID, before, limit)
		return err
	})
	return out, err
}

// Run returns a run, or ErrRunNotFound.
func (s *Service) Run(ctx context.Context, tenant tenancy.TenantID, id string) (Run, error) {
	var out Run
	err := s.store.Read(ctx, tenant, func(tx *Tx) (err error) { out, err = tx.Run(ctx, id); return err })
	return out, err
}

// DownloadURL returns a short-lived read-only URL of exactly the run's artifact: ErrNotReady
// before the run Succeeded, ErrExpired past its expiry (and once the lifecycle sweep marked it
// Expired).
func (s *Service) DownloadURL(ctx context.Context, tenant tenancy.TenantID, id string) (string, error) {
	run, err := s.Run(ctx, tenant, id)
	if err != nil {
		return "", err
	}
	if run.Status == RunExpired {
		return "", ErrExpired // the lifecycle sweep deleted the artifact
	}
	if run.Status != RunSucceeded {
		return "", ErrNotReady
	}
	if run.ExpiresAt == nil || !s.cfg.Now().Before(*run.ExpiresAt) {
		return "", ErrExpired
	}
	return s.signer.ReadURL(ctx, Container, run.BlobName, blob.SASOptions{TTL: s.cfg.SASTTL,
		ContentDisposition: fmt.Sprintf(`attachment; filename="report-%s.%s"`, run.ID, run.Format.Ext()),
		ContentType:        run.Format.ContentType()})
}

// artifactTTL is the tenant's artifact lifetime: its edition's Retention["reportArtifacts"] when
// the edition sets one, the configured default otherwise (and when no edition answers).
func (s *Service) artifactTTL(ctx context.Context, tenant tenancy.TenantID) time.Duration {
	if s.ents == nil {
		return s.cfg.ArtifactTTL
	}
	e, err := s.ents.Of(ctx, tenant)
	if err != nil {
		if !errors.Is(err, entitlements.ErrUnknownTenant) {
			s.log.WarnContext(ctx, "reporting: edition unavailable; default artifact TTL", "tenantId", tenant.String())
		}
		return s.cfg.ArtifactTTL
	}
	if d, ok := e.Retention[RetentionKind]; ok && d > 0 {
		return d
	}
	return s.cfg.ArtifactTTL
}
