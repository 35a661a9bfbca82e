package config

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"spine/shared/bus"
	"spine/shared/cache"
	"spine/shared/contracts"
	"spine/shared/entitlements"
	"spine/shared/events"
	"spine/shared/flags"
	"spine/shared/outbox"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
	"spine/shared/text"
)

// ServiceConfig tunes the service; zero fields take the documented defaults.
type ServiceConfig struct {
	// SetTTL is the Redis TTL of a tenant's compiled flag set (default 60s): the bound on how long
	// a catalog change of an edition's defaults (no event) or a lost invalidation can go unseen.
	SetTTL time.Duration
	// GenerationTTL is the Redis TTL of the platform definitions' generation (default 10s).
	GenerationTTL time.Duration
	// SetLoadTimeout bounds loading a tenant's flag set on a miss — the generation, the
	// entitlements question and the set's SQL (default 2s): a database that does not answer makes
	// OFREP answer its 500 within it instead of hanging. The load is shared by concurrent requests
	// and outlives the one that started it, so the request deadline of the /api edge
	// (SPINE_REQUEST_TIMEOUT), which bounds every other config request, does not reach it.
	SetLoadTimeout time.Duration
	// Now is the clock (default sqlstore.Now).
	Now func() time.Time
}

// Service is the configuration service's rules: flag definitions (platform), overrides and
// settings (tenant), and the evaluation path (FlagSet), which reads no SQL while its copies live.
type Service struct {
	store *Store
	cache *cache.Cache
	ents  entitlements.Source
	fence tenancy.Fence
	cfg   ServiceConfig
	log   *slog.Logger
	codec setCodec
	// degraded holds sets compiled without edition defaults, by set key (see degradedSet); an
	// insert drops the expired entries, so it holds at most the set keys degraded within the last
	// degradedTTL.
	degraded sync.Map
	// billingConsumer is ConfigOnBillingEvent's group consumer (newBillingConsumer).
	billingConsumer *bus.GroupConsumer
}

// NewService wires a service. ents answers the tenant's edition defaults (nil: none); dir the
// write fence.
func NewService(store *Store, c *cache.Cache, ents entitlements.Source, dir tenancy.Directory, cfg ServiceConfig, logger *slog.Logger) *Service {
	if cfg.SetTTL == 0 {
		cfg.SetTTL = 60 * time.Second
	}
	if cfg.GenerationTTL == 0 {
		cfg.GenerationTTL = 10 * time.Second
	}
	if cfg.SetLoadTimeout == 0 {
		cfg.SetLoadTimeout = 2 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = sqlstore.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{store: store, cache: c, ents: ents, fence: tenancy.Fence{Dir: dir}, cfg: cfg, log: logger, codec: setCodec{log: logger}}
	s.billingConsumer = s.newBillingConsumer()
	return s
}

// bound limits ctx to d for one request's store work. done, deferred with the request's error,
// ends the bound and turns a failure caused by the bound running out (not the caller going away)
// into sqlstore.ErrUnavailable: the database did not answer in time. Every statement of the work
// must run under the returned context (database/sql cannot roll a transaction back while one of
// its statements is still waiting on another context).
func bound(ctx context.Context, d time.Duration) (context.Context, func(*error)) {
	bctx, cancel := context.WithTimeout(ctx, d)
	return bctx, func(err *error) {
		if *err != nil && ctx.Err() == nil && errors.Is(bctx.Err(), context.DeadlineExceeded) {
			*err = fmt.Errorf("%w: config: no answer within %v: %w", sqlstore.ErrUnavailable, d, *err)
		}
		cancel()
	}
}

// actor is who a write is recorded as: the request's actor, or the caller's subject.
func actor(ctx context.Context, c tenancy.Caller) string {
	if a := events.MetaFrom(ctx).Actor; a != "" {
		return a
	}
	return c.Subject
}

func actorOf(ctx context.Context, c tenancy.Caller) contracts.Actor {
	t := "user"
	if c.Platform {
		t = "admin"
	}
	return contracts.Actor{Type: t, ID: c.Subject}
}

// ---- flag definitions ----

// ListFlags returns every flag definition (any authenticated caller: they are platform-level).
func (s *Service) ListFlags(ctx context.Context) (out []FlagDefinition, err error) {
	err = s.store.Read(ctx, sqlstore.Scope{}, tenancy.TenantID{}, func(tx *Tx) error {
		var err error
		out, err = tx.Definitions(ctx)
		return err
	})
	return out, err
}

// GetFlag returns a flag definition, or ErrFlagNotFound.
func (s *Service) GetFlag(ctx context.Context, key string) (out FlagDefinition, err error) {
	err = s.store.Read(ctx, sqlstore.Scope{}, tenancy.TenantID{}, func(tx *Tx) error {
		var err error
		out, err = tx.Definition(ctx, key)
		return err
	})
	return out, err
}

// PutFlag creates or replaces a flag definition (platform admins only); tenantOverridable says
// whether tenants may write their own overrides of it (FlagDefinition.TenantOverridable). ifMatch,
// when set, must be the current version (ErrVersionMismatch, also when the flag does not exist).
// created says whether it was new. Every tenant's compiled set is retired after the commit.
func (s *Service) PutFlag(ctx context.Context, cl tenancy.Caller, def flags.Definition, tenantOverridable bool, ifMatch *int64) (out FlagDefinition, created bool, err error) {
	if err := cl.RequirePlatform(); err != nil {
		return out, false, err
	}
	var fe *flags.FieldError
	if err := flags.CheckBounds(def); errors.As(err, &fe) {
		return out, false, &InputError{fe.Field, fe.Detail}
	}
	for _, name := range slices.Sorted(maps.Keys(def.Variants)) {
		if n := utf8.RuneCountInString(name); n < 1 || n > MaxVariantName || text.CheckLine(name) != nil {
			return out, false, &InputError{"variants", fmt.Sprintf("names must be 1-%d characters on one line", MaxVariantName)}
		}
		if err := CheckValue("variants."+name, def.Variants[name]); err != nil {
			return out, false, err
		}
	}
	if utf8.RuneCountInString(def.Description) > MaxDescription {
		return out, false, &InputError{"description", fmt.Sprintf("must be at most %d characters", MaxDescription)}
	}
	if err := def.Validate(); err != nil {
		return out, false, fmt.Errorf("%w: %w", ErrInvalidFlag, err)
	}
	err = s.writeRacing(ctx, sqlstore.PlatformScope(), tenancy.TenantID{}, func(tx *Tx) error {
		cur, err := tx.LockDefinition(ctx, def.Key)
		created = errors.Is(err, ErrFlagNotFound)
		if err != nil && !created {
			return err
		}
		if ifMatch != nil && (created || cur.Version != *ifMatch) {
			return ErrVersionMismatch // If-Match names a version; an absent flag has none (RFC 9110 §13.1.1)
		}
		out = FlagDefinition{Definition: def, TenantOverridable: tenantOverridable, Version: cur.Version + 1,
			UpdatedAt: s.cfg.Now().UTC(), UpdatedBy: actor(ctx, cl)}
		if created {
			err = tx.InsertDefinition(ctx, out)
		} else {
			err = tx.UpdateDefinition(ctx, out)
		}
		if err != nil {
			return err
		}
		return s.platformChanged(ctx, cl, tx, contracts.FeatureFlagChangedData{FlagKey: def.Key, Change: contracts.FlagDefinitionPut,
			Disabled: def.Disabled, Version: out.Version, ChangedAt: out.UpdatedAt})
	})
	return out, created, err
}

// maxWriteRaces bounds how many times writeRacing runs a write that lost a race.
const maxWriteRaces = 3

// writeRacing is store.Write run again, up to maxWriteRaces times in all, when it failed with
// one of the errors retryOn lists (by default a unique violation). A write that found no row and
// inserted one loses to a concurrent writer that inserted it first; it is not an error to report
// (a PUT without If-Match is create-or-replace whatever the race): the next attempt finds the
// winner's row, locks it and replaces it (or answers 412 when If-Match named another version).
func (s *Service) writeRacing(ctx context.Context, sc sqlstore.Scope, tenant tenancy.TenantID, fn func(*Tx) error, retryOn ...error) error {
	if len(retryOn) == 0 {
		retryOn = []error{sqlstore.ErrUniqueViolation}
	}
	var err error
	for range maxWriteRaces {
		if err = s.store.Write(ctx, sc, tenant, fn); err == nil || ctx.Err() != nil {
			return err
		}
		if !slices.ContainsFunc(retryOn, func(e error) bool { return errors.Is(err, e) }) {
			return err
		}
	}
	return err
}

// DeleteFlag deletes a flag definition and every tenant's override of it (platform admins only).
func (s *Service) DeleteFlag(ctx context.Context, cl tenancy.Caller, key string, ifMatch *int64) (err error) {
	if err := cl.RequirePlatform(); err != nil {
		return err
	}
	return s.store.Write(ctx, sqlstore.PlatformScope(), tenancy.TenantID{}, func(tx *Tx) error {
		cur, err := tx.LockDefinition(ctx, key)
		if err != nil {
			return err
		}
		if ifMatch != nil && cur.Version != *ifMatch {
			return ErrVersionMismatch
		}
		if err := tx.DeleteDefinition(ctx, key); err != nil {
			return err
		}
		return s.platformChanged(ctx, cl, tx, contracts.FeatureFlagChangedData{FlagKey: key, Change: contracts.FlagDefinitionDeleted,
			Version: cur.Version + 1, ChangedAt: s.cfg.Now().UTC()})
	})
}

// platformChanged bumps the generation, emits the platform-level event and, after the commit,
// invalidates the generation key: every tenant then reads its set under the new generation.
func (s *Service) platformChanged(ctx context.Context, cl tenancy.Caller, tx *Tx, d contracts.FeatureFlagChangedData) error {
	if _, err := tx.BumpGeneration(ctx); err != nil {
		return err
	}
	d.ChangedBy = actorOf(ctx, cl)
	ev, err := events.New(service, contracts.FeatureFlagChanged, "flag:"+d.FlagKey, "", d, events.MetaFrom(ctx))
	if err != nil {
		return err
	}
	if err := outbox.Emit(ctx, tx.Tx, ev); err != nil {
		return err
	}
	tx.AfterCommit(func() { s.cache.Invalidate(context.WithoutCancel(ctx), generationKey) })
	return nil
}

// ---- overrides ----

// Overrides returns the tenant's overrides.
func (s *Service) Overrides(ctx context.Context, cl tenancy.Caller, tenant tenancy.TenantID) (out []FlagOverride, err error) {
	if err := cl.Reaches(tenant); err != nil {
		return nil, err
	}
	err = s.store.Read(ctx, sqlstore.TenantScope(tenant), tenant, func(tx *Tx) error {
		var err error
		out, err = tx.Overrides(ctx)
		return err
	})
	return out, err
}

// PutOverride creates or replaces the tenant's override of a flag (a platform admin naming the
// tenant, or the tenant's own callers when the flag is TenantOverridable: ErrOverrideNotAllowed
// otherwise); created says which. The variant must be one of the definition's (ErrInvalidFlag).
// ifMatch, when set, must be the override's current version (ErrVersionMismatch, also when the
// tenant has none). An override a platform admin wrote is the platform's: a tenant's caller may
// not replace it (ErrOverrideSetByPlatform). An override pins a variant or disables the flag (or both): neither is an
// *InputError naming "variant".
func (s *Service) PutOverride(ctx context.Context, cl tenancy.Caller, tenant tenancy.TenantID, key string, ov flags.Override, ifMatch *int64) (out FlagOverride, created bool, err error) {
	if ov.Variant == "" && !ov.Disabled {
		return out, false, &InputError{"variant", `is required unless "disabled" is true: an override pins a variant or disables the flag`}
	}
	if n := utf8.RuneCountInString(ov.Variant); n > MaxVariantName {
		return out, false, &InputError{"variant", fmt.Sprintf("must be a variant name of 1-%d characters", MaxVariantName)}
	}
	if err := s.writable(ctx, cl, tenant); err != nil {
		return out, false, err
	}
	err = s.writeRacing(ctx, sqlstore.TenantScope(tenant), tenant, func(tx *Tx) error {
		def, err := tx.Definition(ctx, key)
		if err != nil {
			return err
		}
		if !cl.Platform && !def.TenantOverridable {
			return ErrOverrideNotAllowed
		}
		if ov.Variant != "" {
			if _, ok := def.Variants[ov.Variant]; !ok {
				return fmt.Errorf("%w: %w", ErrInvalidFlag, &flags.FieldError{Key: key, Field: "variant", Detail: fmt.Sprintf("names no variant of the flag (%q)", ov.Variant)})
			}
		}
		cur, err := tx.LockOverride(ctx, key)
		created = errors.Is(err, ErrOverrideNotFound)
		if err != nil && !created {
			return err
		}
		if !created && cur.SetByPlatform && !cl.Platform {
			return ErrOverrideSetByPlatform
		}
		if ifMatch != nil && (created || cur.Version != *ifMatch) {
			return ErrVersionMismatch
		}
		out = FlagOverride{FlagKey: key, Override: ov, SetByPlatform: cl.Platform, Version: cur.Version + 1,
			UpdatedAt: s.cfg.Now().UTC(), UpdatedBy: actor(ctx, cl)}
		if created {
			err = tx.InsertOverride(ctx, out)
		} else {
			err = tx.UpdateOverride(ctx, out)
		}
		if err != nil {
			return err
		}
		return s.tenantChanged(ctx, cl, tx, tenant, contracts.FeatureFlagChangedData{TenantID: tenant.String(), FlagKey: key,
			Change: contracts.FlagOverridePut, Disabled: ov.Disabled, Variant: ov.Variant, Version: out.Version, ChangedAt: out.UpdatedAt})
	}, sqlstore.ErrUniqueViolation, sqlstore.ErrForeignKey) // a foreign key violation: the flag was deleted since it was read; the next attempt answers ErrFlagNotFound
	return out, created, err
}

// DeleteOverride removes the tenant's override of a flag, or ErrOverrideNotFound; the same callers
// as PutOverride may (ErrOverrideNotAllowed), and only a platform admin one a platform admin wrote
// (ErrOverrideSetByPlatform). ifMatch, when set, must be its current version
// (ErrVersionMismatch).
func (s *Service) DeleteOverride(ctx context.Context, cl tenancy.Caller, tenant tenancy.TenantID, key string, ifMatch *int64) (err error) {
	if err := s.writable(ctx, cl, tenant); err != nil {
		return err
	}
	return s.store.Write(ctx, sqlstore.TenantScope(tenant), tenant, func(tx *Tx) error {
		def, err := tx.Definition(ctx, key)
		if errors.Is(err, ErrFlagNotFound) {
			return ErrOverrideNotFound // no definition, no override (the foreign key removed them together)
		}
		if err != nil {
			return err
		}
		if !cl.Platform && !def.TenantOverridable {
			return ErrOverrideNotAllowed
		}
		cur, err := tx.LockOverride(ctx, key)
		if err != nil {
			return err
		}
		if cur.SetByPlatform && !cl.Platform {
			return ErrOverrideSetByPlatform
		}
		if ifMatch != nil && cur.Version != *ifMatch {
			return ErrVersionMismatch
		}
		if err := tx.DeleteOverride(ctx, key); err != nil {
			return err
		}
		return s.tenantChanged(ctx, cl, tx, tenant, contracts.FeatureFlagChangedData{TenantID: tenant.String(), FlagKey: key,
			Change: contracts.FlagOverrideDeleted, Version: cur.Version + 1, ChangedAt: s.cfg.Now().UTC()})
	})
}

// tenantChanged emits the tenant's event and, after the commit, invalidates the tenant's set
// under the current generation (read in the transaction).
func (s *Service) tenantChanged(ctx context.Context, cl tenancy.Caller, tx *Tx, tenant tenancy.TenantID, d contracts.FeatureFlagChangedData) error {
	gen, err := tx.Generation(ctx)
	if err != nil {
		return err
	}
	d.ChangedBy = actorOf(ctx, cl)
	ev, err := events.New(service, contracts.FeatureFlagChanged, "flag:"+d.FlagKey, tenant.String(), d, events.MetaFrom(ctx))
	if err != nil {
		return err
	}
	if err := outbox.Emit(ctx, tx.Tx, ev); err != nil {
		return err
	}
	tx.AfterCommit(func() { s.cache.Invalidate(context.WithoutCancel(ctx), setKey(tenant, gen)) })
	return nil
}

// writable: the caller reaches the tenant and the tenant accepts writes.
func (s *Service) writable(ctx context.Context, cl tenancy.Caller, tenant tenancy.TenantID) error {
	if err := cl.Reaches(tenant); err != nil {
		return err
	}
	return s.fence.CheckWrite(ctx, tenant)
}

// ---- settings ----

// SettingValue is a setting as a tenant sees it: its value, or the platform default when the
// tenant set none or its value lapsed (Default true: a value the tenant wrote while the setting
// was tenant-writable is not read back while it is not); Version is the stored value's (0: none),
// what If-Match names. TenantWritable is the definition's.
type SettingValue struct {
	Key            string
	Type           flags.Type
	Value          json.RawMessage
	Default        bool
	TenantWritable bool
	Version        int64
}

// GetSetting returns the tenant's value of a setting, or its platform default.
func (s *Service) GetSetting(ctx context.Context, cl tenancy.Caller, tenant tenancy.TenantID, key string) (out SettingValue, err error) {
	if err := cl.Reaches(tenant); err != nil {
		return out, err
	}
	err = s.store.Read(ctx, sqlstore.TenantScope(tenant), tenant, func(tx *Tx) error {
		d, err := tx.SettingDefinition(ctx, key)
		if err != nil {
			return err
		}
		out = SettingValue{Key: key, Type: d.Type, Value: d.Default, Default: true, TenantWritable: d.TenantWritable}
		v, err := tx.Setting(ctx, key)
		if errors.Is(err, ErrSettingNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		out.Version = v.Version
		if v.SetByPlatform || d.TenantWritable {
			out.Value, out.Default = v.Value, false
		}
		return nil
	})
	return out, err
}

// PutSetting sets the tenant's value of a defined setting (a platform admin naming the tenant, or
// the tenant's own callers when the setting is TenantWritable: ErrSettingNotWritable otherwise);
// the value must be of its type (ErrInvalidSetting); created says whether the tenant had no value
// before. A value a platform admin wrote is the
// platform's: a tenant's caller may not replace it (ErrSettingSetByPlatform). ifMatch, when set, must be the tenant value's
// version.
func (s *Service) PutSetting(ctx context.Context, cl tenancy.Caller, tenant tenancy.TenantID, key string, value json.RawMessage, ifMatch *int64) (out SettingValue, created bool, err error) {
	if err := s.writable(ctx, cl, tenant); err != nil {
		return out, false, err
	}
	if err := CheckValue("value", value); err != nil {
		return out, false, err
	}
	// A definition whose type changed after it was read here fails the value's foreign key: the
	// write runs again and checks the value against the new type.
	err = s.writeRacing(ctx, sqlstore.TenantScope(tenant), tenant, func(tx *Tx) error {
		d, err := tx.SettingDefinition(ctx, key)
		if err != nil {
			return err
		}
		if !cl.Platform && !d.TenantWritable {
			return ErrSettingNotWritable
		}
		if !flags.OfType(d.Type, value) {
			return invalidSetting("value", fmt.Sprintf("must be a %s value (the setting's type)", d.Type))
		}
		cur, err := tx.LockSetting(ctx, key)
		created = errors.Is(err, ErrSettingNotFound)
		if err != nil && !created {
			return err
		}
		if cur.SetByPlatform && !cl.Platform {
			return ErrSettingSetByPlatform
		}
		if ifMatch != nil && cur.Version != *ifMatch {
			return ErrVersionMismatch
		}
		now := s.cfg.Now().UTC()
		if err := tx.UpsertSetting(ctx, Setting{Key: key, Value: value, SetByPlatform: cl.Platform, Version: cur.Version + 1,
			UpdatedAt: now, UpdatedBy: actor(ctx, cl)}, d.Type); err != nil {
			return err
		}
		out = SettingValue{Key: key, Type: d.Type, Value: value, TenantWritable: d.TenantWritable, Version: cur.Version + 1}
		return s.emitSetting(ctx, cl, tx, contracts.SettingChangedData{TenantID: tenant.String(), SettingKey: key, Type: string(d.Type),
			Value: value, Version: out.Version, ChangedAt: now})
	}, sqlstore.ErrUniqueViolation, sqlstore.ErrForeignKey)
	return out, created, err
}

// PutSettingDefinition defines a setting or changes its platform default and whether tenants may
// write their own value (platform admins only). Its type may change only while no tenant holds a
// value (ErrSettingTypeInUse). created says whether the setting was new.
func (s *Service) PutSettingDefinition(ctx context.Context, cl tenancy.Caller, key string, typ flags.Type, def json.RawMessage, tenantWritable bool, ifMatch *int64) (out SettingDefinition, created bool, err error) {
	if err := cl.RequirePlatform(); err != nil {
		return out, false, err
	}
	if !flags.ValidKey(key) {
		return out, false, fmt.Errorf("%w: key must be 1-128 characters of [A-Za-z0-9._-]", ErrInvalidSetting)
	}
	switch typ {
	case flags.Boolean, flags.String, flags.Number, flags.Object:
	default:
		return out, false, invalidSetting("type", "must be one of boolean, string, number, object")
	}
	if !flags.OfType(typ, def) {
		return out, false, invalidSetting("value", fmt.Sprintf("must be a %s value (the setting's type)", typ))
	}
	if err := CheckValue("value", def); err != nil {
		return out, false, err
	}
	err = s.store.Write(ctx, sqlstore.PlatformScope(), tenancy.TenantID{}, func(tx *Tx) error {
		cur, err := tx.LockSettingDefinition(ctx, key)
		created = errors.Is(err, ErrSettingNotFound)
		if err != nil && !created {
			return err
		}
		if ifMatch != nil && cur.Version != *ifMatch {
			return ErrVersionMismatch
		}
		out = SettingDefinition{Key: key, Type: typ, Default: def, TenantWritable: tenantWritable, Version: cur.Version + 1,
			UpdatedAt: s.cfg.Now().UTC(), UpdatedBy: actor(ctx, cl)}
		if err := tx.UpsertSettingDefinition(ctx, out); err != nil {
			return err
		}
		return s.emitSetting(ctx, cl, tx, contracts.SettingChangedData{SettingKey: key, Type: string(typ), Value: def,
			Version: out.Version, ChangedAt: out.UpdatedAt})
	})
	return out, created, err
}

func (s *Service) emitSetting(ctx context.Context, cl tenancy.Caller, tx *Tx, d contracts.SettingChangedData) error {
	d.ChangedBy = actorOf(ctx, cl)
	ev, err := events.New(service, contracts.SettingChanged, "setting:"+d.SettingKey, d.TenantID, d, events.MetaFrom(ctx))
	if err != nil {
		return err
	}
	return outbox.Emit(ctx, tx.Tx, ev)
}

// ---- evaluation ----

// generationKey is the platform definitions' generation in Redis and the local copies.
var generationKey = cache.PlatformKey(service, "flags", "generation")

// setKey is a tenant's compiled flag set under generation gen: {t:<tenant>}:config:flags:v<gen>.
func setKey(tenant tenancy.TenantID, gen int64) string {
	return cache.TenantKey(tenant.String(), service, "flags", "v"+strconv.FormatInt(gen, 10))
}

// FlagSet returns the tenant's compiled flag set: the generation and the set from the local
// copies (no I/O), else Redis, else SQL (and the tenant's edition defaults from the
// entitlements source). See the README for the staleness bound.
func (s *Service) FlagSet(ctx context.Context, tenant tenancy.TenantID) (*CompiledSet, error) {
	// The loads run detached from the request (every waiter shares one), so each carries its own
	// bound: SetLoadTimeout.
	gen, err := cache.GetOrLoadLocal(ctx, s.cache, generationKey, s.cfg.GenerationTTL, cache.JSON[int64]{}, func(ctx context.Context) (g int64, err error) {
		ctx, done := bound(ctx, s.cfg.SetLoadTimeout)
		defer done(&err)
		err = s.store.Read(ctx, sqlstore.Scope{}, tenancy.TenantID{}, func(tx *Tx) error {
			var err error
			g, err = tx.Generation(ctx)
			return err
		})
		return g, err
	})
	if err != nil {
		return nil, err
	}
	key := setKey(tenant, gen)
	if d, ok := s.degraded.Load(key); ok && s.cfg.Now().Before(d.(degradedSet).until) {
		return d.(degradedSet).cs, nil
	}
	cs, err := cache.GetOrLoadLocal(ctx, s.cache, key, s.cfg.SetTTL, s.codec, func(ctx context.Context) (cs *CompiledSet, err error) {
		ctx, done := bound(ctx, s.cfg.SetLoadTimeout)
		defer done(&err)
		return s.loadSet(ctx, tenant)
	})
	var d degradedSet
	if errors.As(err, &d) {
		// The entitlements source failed: the set without edition defaults, kept in this process
		// for degradedTTL only (never in Redis or the shared local copies).
		s.log.Warn("config: evaluating without edition defaults", "tenant", tenant.String(), "error", d.cause)
		now := s.cfg.Now()
		s.degraded.Range(func(k, v any) bool {
			if !now.Before(v.(degradedSet).until) {
				s.degraded.Delete(k) // a fresh entry stored for k meanwhile is only recomputed
			}
			return true
		})
		d.until = now.Add(degradedTTL)
		s.degraded.Store(key, d)
		return d.cs, nil
	}
	return cs, err
}

// degradedTTL is how long a set compiled without its edition defaults (the entitlements source
// failed) is reused before the source is asked again.
const degradedTTL = time.Second

// degradedSet is loadSet's answer when the entitlements source failed: a set compiled without
// edition defaults, returned as an error so the cache does not keep it.
type degradedSet struct {
	cs    *CompiledSet
	cause error
	until time.Time
}

func (d degradedSet) Error() string { return "config: entitlements unavailable: " + d.cause.Error() }

// loadSet reads a tenant's snapshot from SQL and the entitlements source, and compiles it.
func (s *Service) loadSet(ctx context.Context, tenant tenancy.TenantID) (*CompiledSet, error) {
	var snap flags.Snapshot
	var entsErr error
	if s.ents != nil {
		e, err := s.ents.Of(ctx, tenant)
		switch {
		case err == nil:
			snap.Edition, snap.EditionDefaults = e.Edition, boundedDefaults(e.FeatureDefaults, s.log)
		case errors.Is(err, entitlements.ErrUnknownTenant):
			// no subscription (yet): the definitions' defaults
		default:
			entsErr = err
		}
	}
	err := s.store.Read(ctx, sqlstore.TenantScope(tenant), tenant, func(tx *Tx) error {
		defs, err := tx.Definitions(ctx)
		if err != nil {
			return err
		}
		ovs, err := tx.Overrides(ctx)
		if err != nil {
			return err
		}
		snap.Definitions = make([]flags.Definition, len(defs))
		for i, d := range defs {
			snap.Definitions[i] = d.Definition
		}
		snap.Overrides = make(map[string]flags.Override, len(ovs))
		overridable := make(map[string]bool, len(defs))
		for _, d := range defs {
			overridable[d.Key] = d.TenantOverridable
		}
		for _, o := range ovs {
			// An override the tenant wrote while the flag was tenant-overridable lapses when it no
			// longer is (kept in SQL, so making the flag overridable again restores it); a
			// platform admin's applies either way.
			if o.SetByPlatform || overridable[o.FlagKey] {
				snap.Overrides[o.FlagKey] = o.Override
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	raw, err := json.Marshal(snap)
	if err != nil {
		return nil, err
	}
	cs, err := compileSet(raw, snap, s.log)
	if err == nil && entsErr != nil {
		return nil, degradedSet{cs: cs, cause: entsErr}
	}
	return cs, err
}

// boundedDefaults is defaults without the values that break the bounds a stored value keeps
// (CheckValue: MaxValueDepth levels, MaxValueBytes): an edition default is passed on to OFREP
// clients and kept in every tenant's compiled set in Redis as a variant is, so it obeys a
// variant's bounds. A default left out is logged; the flag evaluates as without it.
func boundedDefaults(defaults map[string]json.RawMessage, log *slog.Logger) map[string]json.RawMessage {
	out, cloned := defaults, false
	for _, k := range slices.Sorted(maps.Keys(defaults)) {
		if err := CheckValue("featureDefaults."+k, defaults[k]); err != nil {
			if !cloned {
				out, cloned = maps.Clone(defaults), true // never change the source's map
			}
			delete(out, k)
			log.Warn("config: edition default left out", "flag", k, "why", err.Error())
		}
	}
	return out
}
