package integrations

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	"spine/shared/contracts"
	"spine/shared/events"
	"spine/shared/idempotency"
	"spine/shared/ids"
	"spine/shared/outbox"
	"spine/shared/secrets"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
	"spine/shared/text"
)

// Caller is who calls the API (tenancy.Caller).
type Caller = tenancy.Caller

// Vault is the part of *secrets.Vault the service uses: the only place a connection's secret
// value goes to and comes from.
type Vault interface {
	Set(ctx context.Context, name, value, contentType string, tags map[string]string) (secrets.Secret, error)
	GetVersion(ctx context.Context, name, version string) (secrets.Secret, error)
	SetEnabled(ctx context.Context, name, version string, enabled bool) error
	Delete(ctx context.Context, name string) error
	Recover(ctx context.Context, name string) error
}

// ServiceConfig tunes the service.
type ServiceConfig struct {
	// VaultURL is the vault's URL, recorded in every connection's secret reference.
	VaultURL string
	// AllowLoopback lets connectors reach loopback hosts (SPINE_EGRESS_ALLOW_LOOPBACK: local
	// stacks and tests only).
	AllowLoopback bool
	// Now is the clock; default sqlstore.Now.
	Now func() time.Time
}

// Service is the integrations service's rules: connections whose secrets live in Key Vault only,
// the connector registry, checks and syncs.
type Service struct {
	store *Store
	vault Vault
	reg   *Registry
	env   Env
	fence tenancy.Fence
	cfg   ServiceConfig
	log   *slog.Logger
}

// NewService wires a service. dir answers tenant states for the write fence.
func NewService(store *Store, vault Vault, reg *Registry, dir tenancy.Directory, cfg ServiceConfig, logger *slog.Logger) *Service {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = sqlstore.Now
	}
	return &Service{store: store, vault: vault, reg: reg, env: NewEnv(cfg.AllowLoopback), fence: tenancy.Fence{Dir: dir},
		cfg: cfg, log: logger}
}

// Registry is the service's connector types.
func (s *Service) Registry() *Registry { return s.reg }

// secretContentType marks the secrets the service writes in Key Vault.
const secretContentType = "application/vnd.spine.integration-secret"

func (s *Service) writable(ctx context.Context, c Caller, tenant tenancy.TenantID) error {
	if err := c.Reaches(tenant); err != nil {
		return err
	}
	return s.fence.CheckWrite(ctx, tenant)
}

func actorOf(c Caller) contracts.Actor {
	t := "user"
	if c.Platform {
		t = "admin"
	}
	return contracts.Actor{Type: t, ID: c.Subject}
}

// CreateInput is a new connection as a caller sends it. Secret is the only secret value, sent
// once and written to Key Vault.
type CreateInput struct {
	Type     string
	Name     string
	Settings json.RawMessage
	Secret   secretInput
}

// checkSettings runs every check a connection's settings pass: the secret guard first (a
// credential is refused as such whatever else is wrong), then the type's schema and rules.
func (s *Service) checkSettings(conn Connector, settings json.RawMessage) (json.RawMessage, error) {
	if len(bytes.TrimSpace(settings)) == 0 {
		return nil, &SettingsError{kind: ErrInvalidSettings, Path: "settings", Detail: "is required"}
	}
	if err := CheckSettings(settings); err != nil {
		return nil, err
	}
	if uc, ok := conn.(URLSettingsConnector); ok {
		if err := CheckURLSettings(settings, uc.URLSettings()); err != nil {
			return nil, err
		}
	}
	if err := conn.Schema().Validate(settings, "settings"); err != nil {
		return nil, err
	}
	if err := conn.Validate(settings, s.env); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, settings); err != nil {
		return nil, &SettingsError{kind: ErrInvalidSettings, Path: "settings", Detail: "is not JSON"}
	}
	return buf.Bytes(), nil
}

func checkName(name string) error {
	if n := len([]rune(name)); n < 1 || n > 200 {
		return invalidInput("name", "must be 1 to 200 characters")
	}
	if text.CheckLine(name) != nil {
		return invalidInput("name", "must be one line (no line breaks, tabs, U+2028 or U+2029)")
	}
	return nil
}

// Create writes the secret to Key Vault as integration-<tenant>-<id>, then the connection with
// only its reference, and IntegrationCreated. Key Vault failing is ErrVaultUnavailable with
// nothing stored; SQL failing after the vault write deletes the secret again (best effort).
func (s *Service) Create(ctx context.Context, c Caller, tenant tenancy.TenantID, in CreateInput) (Connection, error) {
	if err := s.writable(ctx, c, tenant); err != nil {
		return Connection{}, err
	}
	conn, err := s.reg.Get(in.Type)
	if err != nil {
		return Connection{}, err
	}
	if err := checkName(in.Name); err != nil {
		return Connection{}, err
	}
	settings, err := s.checkSettings(conn, in.Settings)
	if err != nil {
		return Connection{}, err
	}
	if err := in.Secret.check(); err != nil {
		return Connection{}, err
	}
	id := ids.New()
	name := secretName(tenant.String(), id)
	sec, err := s.vault.Set(ctx, name, in.Secret.value, secretContentType,
		map[string]string{"tenant": tenant.String(), "connection": id, "type": in.Type})
	if err != nil {
		return Connection{}, vaultError(err)
	}
	now := s.cfg.Now()
	out := Connection{ID: id, Type: in.Type, Name: in.Name, Settings: settings,
		Secret: SecretRef{Vault: s.cfg.VaultURL, Name: name, Version: sec.Version}, Status: StatusUntested,
		Version: 1, CreatedAt: now, UpdatedAt: now}
	err = s.store.Write(ctx, tenant, func(tx *Tx) error {
		if err := idempotency.Claim(ctx, tx.Tx); err != nil {
			return err
		}
		if err := tx.Insert(ctx, out); err != nil {
			return err
		}
		return s.emitChange(ctx, tx, tenant, contracts.IntegrationCreated, out, c)
	})
	if err != nil {
		// The row is not there: the secret must not outlive it. Best effort, detached from the
		// request's deadline; a failure leaves a soft-deleted-able orphan an operator can find by
		// its tags.
		if derr := s.vault.Delete(context.WithoutCancel(ctx), name); derr != nil {
			s.log.WarnContext(ctx, "integrations: the secret of a connection that was not created could not be deleted",
				"secret", name, "err", derr)
		}
		return Connection{}, err
	}
	return out, nil
}

func (s *Service) emitChange(ctx context.Context, tx *Tx, tenant tenancy.TenantID, typ string, c Connection, by Caller) error {
	ev, err := events.New(service, typ, c.ID, tenant.String(), contracts.IntegrationData{TenantID: tenant.String(),
		ConnectionID: c.ID, Type: c.Type, Status: string(c.Status), At: c.UpdatedAt, ActedBy: actorOf(by)}, events.MetaFrom(ctx))
	if err != nil {
		return err
	}
	return outbox.Emit(ctx, tx.Tx, ev)
}

// List returns up to limit of the tenant's live connections after the id after ("" first), by id.
func (s *Service) List(ctx context.Context, c Caller, tenant tenancy.TenantID, after string, limit int) ([]Connection, error) {
	if err := c.Reaches(tenant); err != nil {
		return nil, err
	}
	var out []Connection
	err := s.store.Read(ctx, tenant, func(tx *Tx) error {
		var err error
		out, err = tx.List(ctx, after, limit)
		return err
	})
	return out, err
}

// Get returns a live connection of the tenant, or ErrNotFound.
func (s *Service) Get(ctx context.Context, c Caller, tenant tenancy.TenantID, id string) (Connection, error) {
	if err := c.Reaches(tenant); err != nil {
		return Connection{}, err
	}
	if _, ok := ids.Parse(id); !ok {
		return Connection{}, ErrNotFound
	}
	var out Connection
	err := s.store.Read(ctx, tenant, func(tx *Tx) error {
		var err error
		out, err = tx.Connection(ctx, id)
		return err
	})
	return out, err
}

// PatchInput is a connection's change: each member nil stays as it is. Settings replace the
// settings whole (and make the connection Untested again); Enabled false disables it, true
// enables a disabled one (Untested).
type PatchInput struct {
	Name     *string
	Settings json.RawMessage
	Enabled  *bool
}

// Update changes a connection's name, settings or enabled state (IntegrationUpdated). ifMatch,
// when set, must be its version.
func (s *Service) Update(ctx context.Context, c Caller, tenant tenancy.TenantID, id string, in PatchInput, ifMatch *int64) (Connection, error) {
	if err := s.writable(ctx, c, tenant); err != nil {
		return Connection{}, err
	}
	if _, ok := ids.Parse(id); !ok {
		return Connection{}, ErrNotFound
	}
	if in.Name != nil {
		if err := checkName(*in.Name); err != nil {
			return Connection{}, err
		}
	}
	var out Connection
	err := s.store.Write(ctx, tenant, func(tx *Tx) error {
		cur, err := tx.Lock(ctx, id)
		if err != nil {
			return err
		}
		if ifMatch != nil && *ifMatch != cur.Version {
			return ErrVersionMismatch
		}
		next := cur
		if in.Name != nil {
			next.Name = *in.Name
		}
		if in.Settings != nil {
			conn, err := s.reg.Get(cur.Type)
			if err != nil {
				return err
			}
			if next.Settings, err = s.checkSettings(conn, in.Settings); err != nil {
				return err
			}
			if next.Status != StatusDisabled {
				next.Status, next.LastErrorClass = StatusUntested, ""
			}
		}
		if in.Enabled != nil {
			switch {
			case !*in.Enabled:
				next.Status = StatusDisabled
			case cur.Status == StatusDisabled:
				next.Status, next.LastErrorClass = StatusUntested, ""
			}
		}
		next.Version, next.UpdatedAt = cur.Version+1, s.cfg.Now()
		if err := tx.Update(ctx, next, nil); err != nil {
			return err
		}
		out = next
		return s.emitChange(ctx, tx, tenant, contracts.IntegrationUpdated, next, c)
	})
	return out, err
}

// Delete soft-deletes a connection (IntegrationDeleted) and its Key Vault secret (soft,
// recoverable for the vault's retention). The secret goes first: Key Vault failing leaves the
// connection as it was (ErrVaultUnavailable); SQL failing afterwards recovers the secret (best
// effort).
func (s *Service) Delete(ctx context.Context, c Caller, tenant tenancy.TenantID, id string) error {
	cur, err := s.liveForWrite(ctx, c, tenant, id)
	if err != nil {
		return err
	}
	deletedHere := true
	if err := s.vault.Delete(ctx, cur.Secret.Name); errors.Is(err, secrets.ErrNotFound) {
		deletedHere = false // gone already (an earlier attempt whose row update failed): finish the job
	} else if err != nil {
		return vaultError(err)
	}
	err = s.store.Write(ctx, tenant, func(tx *Tx) error {
		cur, err := tx.Lock(ctx, id)
		if err != nil {
			return err
		}
		now := s.cfg.Now()
		cur.Version, cur.UpdatedAt = cur.Version+1, now
		if err := tx.Update(ctx, cur, &now); err != nil {
			return err
		}
		return s.emitChange(ctx, tx, tenant, contracts.IntegrationDeleted, cur, c)
	})
	if err != nil && deletedHere && !errors.Is(err, ErrNotFound) {
		if rerr := s.vault.Recover(context.WithoutCancel(ctx), cur.Secret.Name); rerr != nil {
			s.log.WarnContext(ctx, "integrations: the secret of a connection whose deletion failed could not be recovered",
				"secret", cur.Secret.Name, "err", rerr)
		}
	}
	return err
}

// liveForWrite is the start of a write that calls out before its transaction: the caller may
// write the tenant, and the connection is live.
func (s *Service) liveForWrite(ctx context.Context, c Caller, tenant tenancy.TenantID, id string) (Connection, error) {
	if err := s.writable(ctx, c, tenant); err != nil {
		return Connection{}, err
	}
	return s.Get(ctx, c, tenant, id)
}

// RotateSecret writes a new version of the connection's secret, points the connection at it
// (IntegrationSecretRotated) and disables the version it replaced. Key Vault failing is
// ErrVaultUnavailable with nothing changed; SQL failing disables the new version again (best
// effort). A concurrent rotation is serialised on the row: each disables the version it replaced.
func (s *Service) RotateSecret(ctx context.Context, c Caller, tenant tenancy.TenantID, id string, secret secretInput) (Connection, error) {
	if err := secret.check(); err != nil {
		return Connection{}, err
	}
	cur, err := s.liveForWrite(ctx, c, tenant, id)
	if err != nil {
		return Connection{}, err
	}
	sec, err := s.vault.Set(ctx, cur.Secret.Name, secret.value, secretContentType,
		map[string]string{"tenant": tenant.String(), "connection": id, "type": cur.Type})
	if err != nil {
		return Connection{}, vaultError(err)
	}
	var out Connection
	var replaced string
	err = s.store.Write(ctx, tenant, func(tx *Tx) error {
		cur, err := tx.Lock(ctx, id)
		if err != nil {
			return err
		}
		replaced = cur.Secret.Version
		next := cur
		next.Secret.Version = sec.Version
		if next.Status != StatusDisabled {
			next.Status, next.LastErrorClass = StatusUntested, ""
		}
		next.Version, next.UpdatedAt = cur.Version+1, s.cfg.Now()
		if err := tx.Update(ctx, next, nil); err != nil {
			return err
		}
		out = next
		return s.emitChange(ctx, tx, tenant, contracts.IntegrationSecretRotated, next, c)
	})
	detached := context.WithoutCancel(ctx)
	if err != nil {
		if derr := s.vault.SetEnabled(detached, cur.Secret.Name, sec.Version, false); derr != nil {
			s.log.WarnContext(ctx, "integrations: an unused secret version could not be disabled", "secret", cur.Secret.Name,
				"version", sec.Version, "err", derr)
		}
		return Connection{}, err
	}
	if derr := s.vault.SetEnabled(detached, cur.Secret.Name, replaced, false); derr != nil {
		// The connection uses the new version already; the old one stays readable until an
		// operator disables it.
		s.log.WarnContext(ctx, "integrations: the replaced secret version could not be disabled", "secret", cur.Secret.Name,
			"version", replaced, "err", derr)
	}
	return out, nil
}

// readSecret reads the version of the secret a connection refers to.
func (s *Service) readSecret(ctx context.Context, c Connection) (secrets.Secret, error) {
	return s.vault.GetVersion(ctx, c.Secret.Name, c.Secret.Version)
}

// run reads the connection's secret and runs the check (sync false) or the sync. A secret that
// cannot be read is the outcome secret-unavailable.
func (s *Service) run(ctx context.Context, c Connection, sync bool) Outcome {
	conn, err := s.reg.Get(c.Type)
	if err != nil {
		return Outcome{ErrorClass: ClassOther}
	}
	sec, err := s.readSecret(ctx, c)
	if err != nil {
		s.log.WarnContext(ctx, "integrations: the connection's secret could not be read", "connection", c.ID, "err", err)
		return Outcome{ErrorClass: ClassSecretUnavailable}
	}
	if sync {
		return conn.Sync(ctx, c.Settings, sec, s.env)
	}
	return conn.Check(ctx, c.Settings, sec, s.env)
}

// Test runs the connection's check now (outside any transaction), records its outcome
// (Healthy or Failing, lastTestedAt, the error class) and emits IntegrationTested.
func (s *Service) Test(ctx context.Context, c Caller, tenant tenancy.TenantID, id string) (Connection, Outcome, error) {
	cur, err := s.liveForWrite(ctx, c, tenant, id)
	if err != nil {
		return Connection{}, Outcome{}, err
	}
	if cur.Status == StatusDisabled {
		return Connection{}, Outcome{}, ErrDisabled
	}
	o := s.run(ctx, cur, false)
	var out Connection
	err = s.store.Write(ctx, tenant, func(tx *Tx) error {
		next, err := tx.Lock(ctx, id)
		if err != nil {
			return err
		}
		if next.Status == StatusDisabled {
			return ErrDisabled
		}
		now := s.cfg.Now()
		next.LastTestedAt, next.LastErrorClass, next.Status = &now, o.ErrorClass, statusOf(o)
		next.Version, next.UpdatedAt = next.Version+1, now
		if err := tx.Update(ctx, next, nil); err != nil {
			return err
		}
		out = next
		ev, err := events.New(service, contracts.IntegrationTested, id, tenant.String(), contracts.IntegrationTestedData{
			TenantID: tenant.String(), ConnectionID: id, Type: next.Type, Status: string(next.Status), ErrorClass: o.ErrorClass,
			TestedAt: now}, events.MetaFrom(ctx))
		if err != nil {
			return err
		}
		return outbox.Emit(ctx, tx.Tx, ev)
	})
	return out, o, err
}

func statusOf(o Outcome) Status {
	if o.OK() {
		return StatusHealthy
	}
	return StatusFailing
}

// RequestSync emits IntegrationSyncRequested for the IntegrationSync worker; the connection must
// be live and enabled.
func (s *Service) RequestSync(ctx context.Context, c Caller, tenant tenancy.TenantID, id string) (Connection, error) {
	if err := s.writable(ctx, c, tenant); err != nil {
		return Connection{}, err
	}
	if _, ok := ids.Parse(id); !ok {
		return Connection{}, ErrNotFound
	}
	var out Connection
	err := s.store.Write(ctx, tenant, func(tx *Tx) error {
		cur, err := tx.Connection(ctx, id)
		if err != nil {
			return err
		}
		if cur.Status == StatusDisabled {
			return ErrDisabled
		}
		out = cur
		ev, err := events.New(service, contracts.IntegrationSyncRequested, id, tenant.String(), contracts.IntegrationSyncRequestedData{
			TenantID: tenant.String(), ConnectionID: id, Type: cur.Type, RequestedAt: s.cfg.Now(), RequestedBy: actorOf(c)},
			events.MetaFrom(ctx))
		if err != nil {
			return err
		}
		return outbox.Emit(ctx, tx.Tx, ev)
	})
	return out, err
}
