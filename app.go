package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/redis/go-redis/v9"

	"spine/handlers/tenants"
	"spine/shared/auth"
	"spine/shared/blob"
	"spine/shared/cache"
	"spine/shared/config"
	"spine/shared/functions"
	"spine/shared/httpx"
	"spine/shared/problem"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
)

// app is the wired binary: stores, services, the echo instance and the function registry.
type app struct {
	cfg      config.Config
	log      *slog.Logger
	echo     *echo.Echo
	registry *functions.Registry
	closers  []func()

	// Directory is the tenants service's answer to "what state is this tenant in?", handed to
	// every service that fences writes.
	directory tenancy.Directory
}

// declaredRegistry is the function registry as declared by every service, without connecting to
// anything: what `handler functions` writes and what the host will invoke.
func declaredRegistry() (*functions.Registry, error) {
	return buildRegistry(tenants.NewAPI(nil))
}

func buildRegistry(t *tenants.API) (*functions.Registry, error) {
	reg := &functions.Registry{}
	if err := reg.Add(functions.Function{
		Name: "Health",
		HTTP: &functions.HTTPTrigger{Route: "health", Methods: []string{"get"}, AuthLevel: functions.AuthAnonymous},
	}); err != nil {
		return nil, err
	}
	if err := reg.Add(t.Functions()...); err != nil {
		return nil, err
	}
	return reg, nil
}

func newApp(ctx context.Context, cfg config.Config, logger *slog.Logger) (a *app, err error) {
	a = &app{cfg: cfg, log: logger}
	defer func() {
		if err != nil {
			a.Close()
		}
	}()

	verifier, err := auth.NewVerifier(ctx, auth.Config{Issuer: cfg.AuthIssuer, Audience: cfg.AuthAudience,
		JWKSURL: cfg.AuthJWKSURL, JWKSFile: cfg.AuthJWKSFile})
	if err != nil {
		return nil, err
	}
	a.closers = append(a.closers, verifier.Close)

	var c *cache.Cache
	if cfg.RedisURL != "" {
		opt, err := redis.ParseURL(cfg.RedisURL)
		if err != nil {
			return nil, errors.New("SPINE_REDIS_URL: not a valid Redis URL")
		}
		// Short timeouts: Redis is a cache, and a slow cache must not make reads slow.
		opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout = 250*time.Millisecond, 200*time.Millisecond, 200*time.Millisecond
		opt.MaxRetries = 0
		rdb := redis.NewClient(opt)
		c = cache.New(rdb, cache.Config{}, logger)
		a.closers = append(a.closers, func() { c.Close(); _ = rdb.Close() })
	}

	blobs, err := blob.Open(cfg.StorageConnectionString, cfg.StorageAccountURL)
	if err != nil {
		return nil, err
	}
	if cfg.StorageConnectionString != "" {
		// Local stacks (Azurite) get their containers here; in Azure, Pulumi creates them.
		if err := blobs.EnsureContainer(ctx, tenants.ManifestContainer); err != nil {
			logger.Warn("blob: cannot create container; provisioning's storage step will fail until storage is reachable",
				"container", tenants.ManifestContainer, "error", err)
		}
	}

	tdb, err := openDB(ctx, cfg, "tenants")
	if err != nil {
		return nil, err
	}
	a.closers = append(a.closers, func() { _ = tdb.Close() })
	tsvc, err := tenants.NewService(storeFor(tdb), c, []tenants.StepRunner{
		tenants.EditionStep{Editions: cfg.TenantEditions},
		tenants.StorageStep{Blobs: blobs},
	}, tenants.ServiceConfig{CacheTTL: cfg.CacheTTL, RetryAfter: cfg.ProvisioningRetryAfter}, logger)
	if err != nil {
		return nil, err
	}
	a.directory = tsvc
	tapi := tenants.NewAPI(tsvc)

	if a.registry, err = buildRegistry(tapi); err != nil {
		return nil, err
	}

	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	ph := &problem.Handler{Logger: logger, Mappers: []problem.Mapper{tenants.MapError, auth.ProblemFor}}
	e.HTTPErrorHandler = ph.ServeError
	e.Use(middleware.Recover())
	functions.Mount(e, a.registry, logger)

	api := e.Group("/api", httpx.Trace(), httpx.BodyLimit(cfg.MaxBodyBytes))
	api.GET("/health", func(c echo.Context) error {
		return c.JSON(http.StatusOK, map[string]any{"status": "ok", "services": cfg.Enabled})
	})
	secured := api.Group("", auth.Middleware(verifier), httpx.Actor())
	tapi.Routes(secured)
	a.echo = e
	return a, nil
}

// storeFor picks the tenants store for the database's engine.
func storeFor(db *sqlstore.DB) tenants.Store {
	if db.Dialect == sqlstore.SQLServer {
		return tenants.NewSQLServerStore(db)
	}
	return tenants.NewPostgresStore(db)
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
	db, err := sqlstore.Open(ctx, d, dbc.URL, sqlstore.PoolConfig{})
	if err != nil {
		return nil, fmt.Errorf("%s database: %w", svc, err)
	}
	return db, nil
}

// Serve listens until ctx is done, then drains in-flight requests (and, standalone, timers).
func (a *app) Serve(ctx context.Context) error {
	ln, err := net.Listen("tcp", net.JoinHostPort("", strconv.Itoa(a.cfg.Port)))
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: a.echo, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(ln) }()
	a.log.Info("serving", "addr", ln.Addr().String(), "standalone", a.cfg.Standalone, "functions", len(a.registry.Functions()))

	schedDone := make(chan struct{})
	sctx, cancelSched := context.WithCancel(ctx)
	defer cancelSched()
	if a.cfg.Standalone {
		go func() {
			defer close(schedDone)
			if err := functions.NewScheduler(a.registry, a.echo, a.log).Run(sctx); err != nil && !errors.Is(err, context.Canceled) {
				errc <- err
			}
		}()
	} else {
		close(schedDone)
	}

	select {
	case <-ctx.Done():
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	}
	cancelSched()
	<-schedDone
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	a.log.Info("shutting down")
	return srv.Shutdown(shutdownCtx)
}

// Close releases every resource the app opened, in reverse order.
func (a *app) Close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
	a.closers = nil
}
