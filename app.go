package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/redis/go-redis/v9"

	"spine/handlers/audit"
	authzserver "spine/handlers/authz"
	"spine/handlers/billing"
	configsvc "spine/handlers/config"
	"spine/handlers/identity"
	"spine/handlers/integrations"
	"spine/handlers/notifications"
	"spine/handlers/reporting"
	"spine/handlers/tenants"
	"spine/shared/auth"
	"spine/shared/authn"
	"spine/shared/authz"
	"spine/shared/blob"
	"spine/shared/bus"
	"spine/shared/cache"
	"spine/shared/config"
	"spine/shared/entitlements"
	"spine/shared/functions"
	"spine/shared/httpx"
	"spine/shared/kit"
	"spine/shared/outbox"
	"spine/shared/problem"
	"spine/shared/ratelimit"
	"spine/shared/retention"
	"spine/shared/secrets"
	"spine/shared/sqlstore"
	"spine/shared/telemetry"
	"spine/shared/tenancy"
)

// app is the wired binary: stores, services, the echo instance, the function registry and the
// event backbone (one outbox drainer per service database, and the broker they publish to).
type app struct {
	cfg      config.Config
	log      *slog.Logger
	echo     *echo.Echo
	registry *functions.Registry
	closers  []func()

	drainers map[string]*outbox.Drainer // by topic (= publishing service)
	local    *bus.Local                 // the in-process transport, when no Service Bus is configured

	telemetry *telemetry.Provider // see app_telemetry.go

	retention *retention.Engine // the retention engine: every service's sweeps, the ledger, /api/ops
}

// OutboxDrainSchedule is the safety-net timer of the outbox: commits kick the drainers at once.
const OutboxDrainSchedule = "*/10 * * * * *"

// modules is the one list of owning services, in start-up order. Everything per service derives
// from it (see shared/kit). tenants comes first: it answers the tenant directory.
var modules = []kit.Module{
	tenants.Module,
	identity.Module,
	authzserver.Module,
	audit.Module,
	billing.Module,
	configsvc.Module,
	notifications.Module,
	integrations.Module,
	reporting.Module,
}

// moduleNames are the services the binary can serve (SPINE_SERVICES picks among them).
func moduleNames() []string { return kit.Names(modules) }

// declaredRegistry is the function registry as declared by every module, without connecting to
// anything: what `handler functions` writes and what the host will invoke.
func declaredRegistry() (*functions.Registry, error) {
	decl := make([]kit.Service, len(modules))
	for i, m := range modules {
		decl[i] = m.Declare
	}
	return (&app{}).buildRegistry(decl)
}

// buildRegistry declares the platform's own functions and those of svcs.
func (a *app) buildRegistry(svcs []kit.Service) (*functions.Registry, error) {
	reg := &functions.Registry{}
	if err := reg.Add(
		functions.Function{Name: "Health",
			HTTP: &functions.HTTPTrigger{Route: "health", Methods: []string{"get"}, AuthLevel: functions.AuthAnonymous}},
		functions.Function{Name: "Ready",
			HTTP: &functions.HTTPTrigger{Route: "health/ready", Methods: []string{"get"}, AuthLevel: functions.AuthAnonymous}},
		functions.Function{Name: "Ops",
			HTTP: &functions.HTTPTrigger{Route: "ops/{*rest}", Methods: []string{"get", "post", "put", "delete"}, AuthLevel: functions.AuthAnonymous}},
		functions.Function{Name: "OutboxDrain", Timer: &functions.TimerTrigger{Schedule: OutboxDrainSchedule}, Handler: a.drainAll},
		// The platform's own sweeps (shared/retention): every service database's idempotency
		// records and inbox ids, and the maintenance ledger's history.
		a.retention.Function(retention.IdempotencyPrune, retention.IdempotencySchedule),
		a.retention.Function(retention.InboxPrune, retention.InboxSchedule),
		a.retention.Function(retention.LedgerRetention, retention.LedgerRetentionSchedule),
	); err != nil {
		return nil, err
	}
	catalog := kit.CatalogOf(modules)
	for _, s := range svcs {
		if err := reg.Add(s.Functions(catalog)...); err != nil {
			return nil, err
		}
	}
	return reg, nil
}

// drainAll is the OutboxDrain timer: every service's outbox, each for at most 20 seconds. It
// reports only outboxes where something happened; a tick that found nothing is Quiet (its
// invocation line is logged at Debug), since the commits' kicks usually drain first.
func (a *app) drainAll(ctx context.Context, _ *functions.Invocation) (*functions.Result, error) {
	res := &functions.Result{Quiet: true}
	var errs []error
	for _, topic := range a.topics() {
		r, err := a.drainers[topic].Drain(ctx, 20*time.Second)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", topic, err))
		}
		if r.Published+r.Failed+r.Parked+r.Blocked > 0 {
			res.Quiet = false
			res.Logs = append(res.Logs, fmt.Sprintf("outbox %s: published %d, failed %d, parked %d, blocked %d",
				topic, r.Published, r.Failed, r.Parked, r.Blocked))
		}
	}
	return res, errors.Join(errs...)
}

func (a *app) topics() []string {
	out := make([]string, 0, len(a.drainers))
	for t := range a.drainers {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// newApp opens every store and wires the services. On error it has closed whatever it opened, and
// the error names the setting or the dependency that failed.
func newApp(ctx context.Context, cfg config.Config, logger *slog.Logger) (*app, error) {
	a := &app{cfg: cfg, log: logger, drainers: map[string]*outbox.Drainer{}}
	if err := a.wire(ctx); err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

// wire is newApp's body: everything it opens is added to a.closers as soon as it is open.
func (a *app) wire(ctx context.Context) (err error) {
	cfg, logger := a.cfg, a.log
	if err := a.setupTelemetry(ctx); err != nil {
		return err
	}

	// The token check: in process when the authorization server is a module here (its keys are
	// handed over once it is built; until then every token is refused), else — or also, for
	// tests' dev key — SPINE_AUTH_JWKS_FILE / _URL, else discovery from the issuer.
	var tokenKeys *lateKeys
	for _, m := range modules {
		if _, ok := m.Declare.(kit.KeysProvider); ok && slices.Contains(cfg.Enabled, m.Name) {
			tokenKeys = &lateKeys{}
		}
	}
	authCfg := auth.Config{Issuer: cfg.AuthIssuer, Audience: cfg.AuthAudience, JWKSURL: cfg.AuthJWKSURL, JWKSFile: cfg.AuthJWKSFile}
	if tokenKeys != nil {
		authCfg.Keys = tokenKeys
	}
	verifier, err := auth.NewVerifier(ctx, authCfg)
	if err != nil {
		return err
	}
	a.closers = append(a.closers, verifier.Close)

	c, err := a.openCache()
	if err != nil {
		return err
	}
	blobs, err := blob.Open(cfg.StorageConnectionString, cfg.StorageAccountURL)
	if err != nil {
		return fmt.Errorf("SPINE_STORAGE_CONNECTION_STRING / SPINE_STORAGE_ACCOUNT_URL: %w", err)
	}

	var vault *secrets.Vault
	if cfg.KeyVaultURL != "" {
		if vault, err = secrets.Open(secrets.Config{VaultURL: cfg.KeyVaultURL, CAFile: cfg.KeyVaultCAFile}); err != nil {
			return fmt.Errorf("SPINE_KEYVAULT_URL: %w", err)
		}
	}

	dbs := map[string]*sqlstore.DB{}
	for _, svc := range cfg.Enabled {
		db, err := openDB(ctx, cfg, svc)
		if err != nil {
			return err
		}
		a.closers = append(a.closers, func() { _ = db.Close() })
		dbs[svc] = db
	}

	// Every enabled module, in the list's order; the tenant directory forwards to whichever
	// module provides it, so the order of the list does not decide who may ask.
	dir, perms, users, ents := &lateDirectory{}, &latePermissions{}, &lateUsers{}, &lateEntitlements{}
	deps := kit.Deps{Cache: c, Blobs: blobs, Secrets: vault, Log: logger, Config: cfg, Directory: dir, Permissions: perms,
		Users: users, Catalog: kit.CatalogOf(modules)}
	if entitlementsEnabled(modules, dbs) {
		deps.Entitlements = ents
	}
	if err := a.openRetention(ctx, dir, deps.Entitlements); err != nil {
		return err
	}
	deps.Retention = a.retention
	var svcs []kit.Service
	mappers := []problem.Mapper{retention.MapError}
	for _, m := range modules {
		db, enabled := dbs[m.Name]
		if !enabled {
			continue
		}
		d := deps
		d.DB = db
		if vault != nil {
			d.Secrets = vault.For(m.Name)
		}
		svc, err := m.New(ctx, d)
		if err != nil {
			return fmt.Errorf("%s: %w", m.Name, err)
		}
		if p, ok := svc.(kit.DirectoryProvider); ok {
			dir.set(p.Directory())
		}
		if p, ok := svc.(kit.PermissionsProvider); ok {
			perms.set(p.Permissions())
		}
		if p, ok := svc.(kit.UsersProvider); ok {
			users.set(p.Users())
		}
		if p, ok := svc.(kit.EntitlementsProvider); ok {
			ents.set(p.Entitlements())
		}
		if p, ok := svc.(kit.KeysProvider); ok && tokenKeys != nil {
			tokenKeys.set(p.TokenKeys())
		}
		svcs = append(svcs, svc)
		mappers = append(mappers, svc.MapError)
	}
	if !dir.wired() {
		return errors.New("SPINE_SERVICES: tenants must be enabled (every service asks it for tenant states)")
	}
	for _, s := range append(retention.RecordSweeps(dbs), retention.LedgerSweep(a.retention.Ledger())) {
		if err := a.retention.Register(s); err != nil {
			return err
		}
	}
	if a.registry, err = a.buildRegistry(svcs); err != nil {
		return err
	}

	pub, err := a.publisher()
	if err != nil {
		return err
	}
	for svc, db := range dbs {
		d, err := outbox.NewDrainer(db, svc, pub, outbox.DrainerConfig{}, logger)
		if err != nil {
			return err
		}
		a.drainers[svc] = d
	}

	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	api, secured := httpx.NewAPI(e, httpx.APIConfig{Verifier: verifier, MaxBodyBytes: cfg.MaxBodyBytes, Mappers: mappers, Logger: logger,
		RequestTimeout: cfg.RequestTimeout})
	if err := a.mountRateLimits(secured, ents, c); err != nil {
		return err
	}
	a.instrumentEcho(e)
	var invocationGuard []echo.MiddlewareFunc
	if !cfg.HostFronted {
		invocationGuard = append(invocationGuard, functions.LoopbackOnly())
	}
	functions.Mount(e, a.registry, logger, invocationGuard...)
	a.mountHealth(api, dbs, c, blobs, vault)
	var aliases []string
	for _, svc := range svcs {
		if p, ok := svc.(kit.RootAliaser); ok {
			aliases = append(aliases, p.RootAliases()...)
		}
	}
	if len(aliases) > 0 {
		e.Pre(rootAliases(aliases))
	}
	for _, svc := range svcs {
		svc.Routes(secured)
		if p, ok := svc.(kit.PublicRouter); ok {
			p.PublicRoutes(api)
		}
	}
	admin := &outbox.Admin{Drainers: a.drainers}
	if a.local != nil {
		admin.DeadLetters = func() any { return a.local.DeadLetters() }
	}
	ops := auth.Operators(secured)
	admin.Routes(ops)
	a.retention.Routes(ops)
	a.echo = e
	return nil
}

// openRetention opens the maintenance ledger (Table Storage: the connection string's TableEndpoint
// on local stacks, where its tables are created; the table service with the managed identity in
// Azure, where infra created them) and the retention engine over it.
func (a *app) openRetention(ctx context.Context, dir tenancy.Directory, ents entitlements.Source) error {
	cfg := a.cfg
	ledger, err := retention.OpenLedger(cfg.StorageConnectionString, cfg.TableAccountURL)
	if err != nil {
		return fmt.Errorf("SPINE_STORAGE_CONNECTION_STRING / SPINE_TABLE_ACCOUNT_URL: %w", err)
	}
	if cfg.StorageConnectionString != "" {
		tctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		err := ledger.EnsureTables(tctx)
		cancel()
		if err != nil {
			// Not fatal: the API serves without the ledger; each sweep run and /api/ops call
			// fails (503 ledger-unavailable) until Table Storage answers.
			a.log.WarnContext(ctx, "maintenance ledger: tables not created", "err", err)
		}
	}
	rc := retention.Config{Ledger: ledger, Directory: dir, Entitlements: ents, Scale: cfg.RetentionScale, MaxRows: cfg.RetentionMaxRows,
		MaxDuration: cfg.RetentionMaxDuration, Log: a.log}
	if point := cfg.RetentionCrashAt; point != "" {
		// Crash-injection tests only: the process dies at that step of the first batch, as a
		// killed instance would (no deferred cleanup, no response).
		a.log.Warn("SPINE_TEST_RETENTION_CRASH_AT is set: the process exits at a sweep's "+point, "point", point)
		rc.Fault = func(p string) {
			if p == point {
				os.Exit(86)
			}
		}
	}
	a.retention, err = retention.New(rc)
	return err
}

// entitlementsEnabled reports whether an enabled module answers entitlements, from the modules'
// declared types (the answer is needed before the provider is built).
func entitlementsEnabled(modules []kit.Module, enabled map[string]*sqlstore.DB) bool {
	for _, m := range modules {
		if _, on := enabled[m.Name]; on {
			if _, ok := m.Declare.(kit.EntitlementsProvider); ok {
				return true
			}
		}
	}
	return false
}

// rootAliases answers each prefix at the root with the /api route of the same path
// (kit.RootAliaser), before routing, so the /api group's authentication and limits apply.
func rootAliases(prefixes []string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			for _, p := range prefixes {
				if strings.HasPrefix(r.URL.Path, p) {
					r.URL.Path = "/api" + r.URL.Path
					if r.URL.RawPath != "" {
						r.URL.RawPath = "/api" + r.URL.RawPath
					}
					break
				}
			}
			return next(c)
		}
	}
}

// mountRateLimits puts the per-tenant and per-route rate limits (shared/ratelimit) on the
// authenticated group, after authentication, from the entitlements of each tenant's edition: only
// when a module answers entitlements (billing); without one there are no limits to enforce. The
// cells live in Redis when it is configured, else in memory per instance.
func (a *app) mountRateLimits(secured *echo.Group, ents *lateEntitlements, c *cache.Cache) error {
	if !ents.wired() {
		return nil
	}
	var rdb redis.UniversalClient
	if c != nil {
		rdb = c.Redis()
	}
	lim, err := ratelimit.New(ratelimit.Config{Redis: rdb, Source: ents, Shadow: a.cfg.RateLimitShadow, Logger: a.log})
	if err != nil {
		return fmt.Errorf("rate limits: %w", err)
	}
	secured.Use(lim.Middleware())
	return nil
}

// wired reports whether a module answers entitlements.
func (l *lateEntitlements) wired() bool { return l.e.Load() != nil }

// openCache connects Redis when configured; nil means every read goes to SQL.
func (a *app) openCache() (*cache.Cache, error) {
	if a.cfg.RedisURL == "" {
		return nil, nil
	}
	opt, err := cache.ClientOptions(a.cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("SPINE_REDIS_URL: %w", err)
	}
	redis.SetLogger(redisLog{a.log}) // go-redis logs each failed dial; the cache logs the outage once
	rdb := redis.NewClient(opt)
	a.instrumentRedis(rdb)
	// Local copies for the hottest reads (cache.GetOrLoadLocal: the tenant read and the tenant
	// directory), dropped on every instance by the invalidation channel; 5 s bounds a copy whose
	// invalidation could not be published.
	c := cache.New(rdb, cache.Config{Local: 5 * time.Second}, a.log)
	a.closers = append(a.closers, func() { c.Close(); _ = rdb.Close() })
	return c, nil
}

// redisLog sends go-redis's internal messages to slog at debug level.
type redisLog struct{ l *slog.Logger }

// Printf implements go-redis's logger.
func (r redisLog) Printf(ctx context.Context, format string, v ...any) {
	r.l.DebugContext(ctx, "redis: "+fmt.Sprintf(format, v...))
}

// publisher is Service Bus when configured, else the in-process transport to our own functions.
func (a *app) publisher() (outbox.Publisher, error) {
	if a.cfg.ServiceBusConnectionString != "" || a.cfg.ServiceBusNamespace != "" {
		sb, err := bus.NewServiceBus(a.cfg.ServiceBusConnectionString, a.cfg.ServiceBusNamespace)
		if err != nil {
			return nil, err
		}
		a.closers = append(a.closers, func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = sb.Close(ctx)
		})
		return sb, nil
	}
	a.local = bus.NewLocal(a.registry, bus.LocalConfig{}, a.log)
	a.log.Info("events: no Service Bus configured; using the in-process transport", "topology", a.local.String())
	return a.local, nil
}

func openDB(ctx context.Context, cfg config.Config, svc string) (*sqlstore.DB, error) {
	dbc, ok := cfg.DB[svc]
	if !ok {
		return nil, fmt.Errorf("service %s is not enabled (SPINE_SERVICES)", svc)
	}
	d, err := sqlstore.ParseDialect(dbc.Dialect)
	if err != nil {
		return nil, err
	}
	db, err := sqlstore.Open(ctx, svc, d, dbc.URL, sqlstore.PoolConfig{})
	if err != nil {
		return nil, fmt.Errorf("SPINE_%s_DB_URL: the %s database cannot be reached: %w", strings.ToUpper(svc), svc, err)
	}
	return db, nil
}

// Serve listens until ctx is done, then drains in-flight requests and stops the background work
// (outbox drainers, the local transport and, standalone, the timers).
func (a *app) Serve(ctx context.Context) error {
	ln, err := net.Listen("tcp", net.JoinHostPort("", strconv.Itoa(a.cfg.Port)))
	if err != nil {
		return err
	}
	stopMetrics, err := a.serveMetrics()
	if err != nil {
		_ = ln.Close()
		return err
	}
	defer stopMetrics()
	// ReadTimeout bounds a slow body too (the request deadline does not cover reading it).
	srv := &http.Server{Handler: a.handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: a.cfg.RequestTimeout,
		IdleTimeout: 120 * time.Second}
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(ln) }()
	a.log.Info("serving", "addr", ln.Addr().String(), "standalone", a.cfg.Standalone, "functions", len(a.registry.Functions()))

	if a.cfg.PprofAddr != "" {
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		ps := &http.Server{Addr: a.cfg.PprofAddr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = ps.ListenAndServe() }()
		defer ps.Close()
		a.log.Info("pprof", "addr", a.cfg.PprofAddr)
	}

	// Two lifetimes for the background work, so a stop loses nothing acknowledged: the drainers and
	// the timers (bg) stop first; the in-process transport (transport) delivers what it accepted
	// before it stops (the outbox rows of those messages are already gone).
	bg, stopBG := context.WithCancel(context.Background())
	transport, stopTransport := context.WithCancel(context.Background())
	defer stopTransport()
	var wg sync.WaitGroup
	if a.local != nil {
		a.local.Start(transport, a.echo)
	}
	for _, d := range a.drainers {
		wg.Add(1)
		go func() { defer wg.Done(); d.Run(bg) }()
	}
	if a.cfg.Standalone {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := functions.NewScheduler(a.registry, a.echo, a.log).Run(bg); err != nil {
				errc <- err
			}
		}()
	}

	var serveErr error
	select {
	case <-ctx.Done():
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			serveErr = err
		}
	}
	a.log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && serveErr == nil {
		serveErr = err
	}
	stopBG()
	wg.Wait()
	if a.local != nil {
		// Every message the transport accepted is delivered (or dead-lettered) before it stops;
		// what the consumers emit meanwhile stays in their outboxes for the next start.
		idle, cancelIdle := context.WithTimeout(context.Background(), localDrainTimeout)
		if err := a.local.Idle(idle); err != nil {
			a.log.Error("events: the in-process transport stopped with undelivered messages (their outbox rows are gone)",
				"undelivered", a.local.Pending(), "waited", localDrainTimeout.String())
		}
		cancelIdle()
		stopTransport()
		a.local.Wait()
	}
	return serveErr
}

// localDrainTimeout bounds how long a stop waits for the in-process transport to deliver what it
// accepted.
const localDrainTimeout = 20 * time.Second

// Close releases every resource the app opened, in reverse order.
func (a *app) Close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
	a.closers = nil
}

// lateDirectory is the tenant directory handed to every module: it forwards to the module that
// provides it (tenants), which may be built after the modules that hold it.
type lateDirectory struct{ d atomic.Pointer[dirBox] }

type dirBox struct{ tenancy.Directory }

func (l *lateDirectory) set(d tenancy.Directory) { l.d.Store(&dirBox{d}) }

func (l *lateDirectory) wired() bool { return l.d.Load() != nil }

// TenantStatus implements tenancy.Directory.
func (l *lateDirectory) TenantStatus(ctx context.Context, id tenancy.TenantID) (tenancy.Status, error) {
	b := l.d.Load()
	if b == nil {
		return "", errors.New("tenancy: the tenant directory is not wired (tenants is not enabled)")
	}
	return b.TenantStatus(ctx, id)
}

// lateKeys is the verifier's in-process key source: it forwards to the authorization server's
// (kit.KeysProvider), which is built after the verifier.
type lateKeys struct{ k atomic.Pointer[keysBox] }

type keysBox struct{ auth.KeySource }

func (l *lateKeys) set(k auth.KeySource) { l.k.Store(&keysBox{k}) }

var errNoTokenKeys = errors.New("auth: the authorization server's keys are not wired yet")

// VerificationKeys implements auth.KeySource.
func (l *lateKeys) VerificationKeys(ctx context.Context) ([]auth.PublicKey, error) {
	b := l.k.Load()
	if b == nil || b.KeySource == nil {
		return nil, errNoTokenKeys
	}
	return b.VerificationKeys(ctx)
}

// latePermissions is the authorization check handed to every module: it forwards to the module
// that provides it (identity), like lateDirectory.
type latePermissions struct{ p atomic.Pointer[permsBox] }

type permsBox struct{ authz.Permissions }

func (l *latePermissions) set(p authz.Permissions) { l.p.Store(&permsBox{p}) }

var errNoPermissions = errors.New("authz: no service answers permission checks (identity is not enabled)")

// Allowed implements authz.Permissions.
func (l *latePermissions) Allowed(ctx context.Context, tenant tenancy.TenantID, user, permission string) (bool, error) {
	b := l.p.Load()
	if b == nil {
		return false, errNoPermissions
	}
	return b.Allowed(ctx, tenant, user, permission)
}

// Effective implements authz.Permissions.
func (l *latePermissions) Effective(ctx context.Context, tenant tenancy.TenantID, user string) ([]string, error) {
	b := l.p.Load()
	if b == nil {
		return nil, errNoPermissions
	}
	return b.Effective(ctx, tenant, user)
}

// lateEntitlements is the entitlements question handed to every module: it forwards to the module
// that provides it (billing), like lateDirectory.
type lateEntitlements struct{ e atomic.Pointer[entsBox] }

type entsBox struct{ entitlements.Source }

func (l *lateEntitlements) set(e entitlements.Source) { l.e.Store(&entsBox{e}) }

var errNoEntitlements = errors.New("entitlements: no service answers entitlements (billing is not enabled)")

// Of implements entitlements.Source.
func (l *lateEntitlements) Of(ctx context.Context, tenant tenancy.TenantID) (entitlements.Entitlements, error) {
	b := l.e.Load()
	if b == nil {
		return entitlements.Entitlements{}, errNoEntitlements
	}
	return b.Of(ctx, tenant)
}

// Edition implements entitlements.Source.
func (l *lateEntitlements) Edition(ctx context.Context, code string) (entitlements.Entitlements, error) {
	b := l.e.Load()
	if b == nil {
		return entitlements.Entitlements{}, errNoEntitlements
	}
	return b.Edition(ctx, code)
}

// lateUsers is the sign-in question handed to every module: it forwards to the module that
// provides it (identity), like lateDirectory.
type lateUsers struct{ u atomic.Pointer[usersBox] }

type usersBox struct{ authn.Users }

func (l *lateUsers) set(u authn.Users) { l.u.Store(&usersBox{u}) }

var errNoUsers = errors.New("authn: no service answers sign-in (identity is not enabled)")

// Authenticate implements authn.Users.
func (l *lateUsers) Authenticate(ctx context.Context, tenant tenancy.TenantID, email, password string) (string, error) {
	b := l.u.Load()
	if b == nil {
		return "", errNoUsers
	}
	return b.Authenticate(ctx, tenant, email, password)
}

// Profile implements authn.Users.
func (l *lateUsers) Profile(ctx context.Context, tenant tenancy.TenantID, userID string) (authn.Profile, error) {
	b := l.u.Load()
	if b == nil {
		return authn.Profile{}, errNoUsers
	}
	return b.Profile(ctx, tenant, userID)
}
