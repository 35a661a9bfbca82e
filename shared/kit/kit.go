// Package kit is the seam between an owning service and the binary. A service exports one Module
// value; app.go holds the one list of modules, and everything per service derives from it: the
// service list and its settings, the databases (one per module, migrated from
// migrations/<name>/<dialect>/ after the platform schema), the outbox drainers and Service Bus
// topics (one per module, named after it), the function registry and function.json files, the
// event catalog (`handler events`), the API routes and the problem mappers. Tests check that the
// local stack, the settings sample, the e2e databases and infra's service list agree with it.
//
// Adding a service is: its folder handlers/<name> (exporting Module), its migrations, and one
// line in app.go's module list. See handlers/README.md.
package kit

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"slices"

	"github.com/labstack/echo/v4"

	"spine/shared/auth"
	"spine/shared/authn"
	"spine/shared/authz"
	"spine/shared/blob"
	"spine/shared/cache"
	"spine/shared/config"
	"spine/shared/contracts"
	"spine/shared/entitlements"
	"spine/shared/functions"
	"spine/shared/problem"
	"spine/shared/retention"
	"spine/shared/secrets"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
)

// Module describes one owning service to the binary.
type Module struct {
	// Name is the service's name: its package under handlers/, its database and settings
	// (SPINE_<NAME>_DB_*), its migrations folder, its outbox's Service Bus topic and the service
	// attribute of its telemetry. Lowercase letters and digits.
	Name string
	// Publishes are the event types the service writes to its outbox (its topic is Name), from
	// its contract in shared/contracts.
	Publishes []string
	// Declare is the zero value of the service's type. Its Functions declare what the Functions
	// host invokes without connecting to anything (function.json, `handler events`); it never
	// serves, so its handlers are never called.
	Declare Service
	// New builds the running service over its dependencies. It is called once at start-up, in the
	// order of the module list.
	New func(ctx context.Context, d Deps) (Service, error)
}

// Service is a running owning service, as the binary serves it.
type Service interface {
	// Routes mounts the service's HTTP API on g: the /api group, which has already
	// authenticated the bearer token and recorded the actor. Anonymous routes, if any, come
	// through PublicRouter.
	Routes(g *echo.Group)
	// Functions declares the service's Azure Functions: its catch-all HTTP function(s), timers and
	// Service Bus consumers. It must work on the zero value (Module.Declare). c lists every
	// module's topic and events, for consumers of all topics (the audit trail).
	Functions(c Catalog) []functions.Function
	// MapError maps the service's own errors to problems, or returns nil for errors it does not
	// know (the shared mappers then try theirs). Called once per failed request, at the edge.
	MapError(err error) *problem.Problem
}

// Deps is what the binary hands a service's New: the service's own stores, and the questions
// other services answer, as interfaces declared in shared/.
type Deps struct {
	// DB is the service's own database (the runtime role), already open.
	DB *sqlstore.DB
	// Cache is the shared Redis cache; nil when no Redis is configured (reads go to SQL).
	Cache *cache.Cache
	// Blobs is the storage account's blob client.
	Blobs *blob.Store
	// Secrets is the deployment's Key Vault (SPINE_KEYVAULT_URL; the local stack's fake); nil when
	// none is configured, which config refuses for the services of config.KeyVaultServices. The
	// only place a service keeps a secret value: rows hold a reference (vault, name, version).
	Secrets *secrets.Vault
	// Log is the process logger.
	Log *slog.Logger
	// Config is every setting of the binary, the service's own included.
	Config config.Config
	// Directory answers "what state is this tenant in?" (the tenants service), for the write
	// fence. It forwards to the service that provides it, so it may be used once every module is
	// built, not inside New.
	Directory tenancy.Directory
	// Permissions answers authorization checks (the identity service), forwarded like Directory;
	// while no module provides it, every check fails with an error.
	Permissions authz.Permissions
	// Users answers the sign-in question (the identity service), forwarded like Directory; while
	// no module provides it, every sign-in fails with an error.
	Users authn.Users
	// Entitlements answers what a tenant's edition grants (the billing service), forwarded like
	// Directory. It is nil when no enabled module is an EntitlementsProvider (known from each
	// Module.Declare before any is built): a service then works without editions (no limits, no
	// edition defaults, SPINE_TENANT_EDITIONS as the catalog).
	Entitlements entitlements.Source
	// Catalog lists every module's topic and events.
	Catalog Catalog
	// Retention is the retention engine (shared/retention): a service registers its sweeps with it
	// in New (Engine.Register) and declares their timers in Functions (Engine.Function, which
	// works on a nil engine for Declare). Always set by the binary.
	Retention *retention.Engine
}

// Topic is one publishing service's Service Bus topic and the event types it carries.
type Topic struct {
	Name      string
	Publishes []string
}

// Catalog is every module's topic, in the module list's order.
type Catalog []Topic

// CatalogOf returns the catalog of modules. Every topic also carries the platform's own event
// types (contracts.PlatformEvents: the retention engine's RetentionApplied, written by each
// service in its own transactions), after the module's.
func CatalogOf(modules []Module) Catalog {
	c := make(Catalog, len(modules))
	for i, m := range modules {
		pub := slices.Clone(m.Publishes)
		for _, t := range contracts.PlatformEvents {
			if !slices.Contains(pub, t) {
				pub = append(pub, t)
			}
		}
		c[i] = Topic{Name: m.Name, Publishes: pub}
	}
	return c
}

// Names returns the modules' names, in order.
func Names(modules []Module) []string {
	out := make([]string, len(modules))
	for i, m := range modules {
		out[i] = m.Name
	}
	return out
}

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9]{1,30}$`)

// Check validates a module list: names well formed and unique, every module with Declare and
// New, event types unique across the catalog.
func Check(modules []Module) error {
	names := map[string]bool{}
	types := map[string]string{}
	for _, m := range modules {
		if !nameRE.MatchString(m.Name) {
			return fmt.Errorf("kit: module name %q must be 2–31 lowercase letters and digits", m.Name)
		}
		if m.Name == "platform" {
			return fmt.Errorf("kit: module name %q is the platform schema's (its version table)", m.Name)
		}
		if names[m.Name] {
			return fmt.Errorf("kit: module %q is listed twice", m.Name)
		}
		names[m.Name] = true
		if m.Declare == nil || m.New == nil {
			return fmt.Errorf("kit: module %q needs Declare and New", m.Name)
		}
		for _, t := range m.Publishes {
			if slices.Contains(contracts.PlatformEvents, t) {
				return fmt.Errorf("kit: module %q lists the platform event %s (every topic carries it)", m.Name, t)
			}
			if other, dup := types[t]; dup {
				return fmt.Errorf("kit: event type %s is published by both %s and %s", t, other, m.Name)
			}
			types[t] = m.Name
		}
	}
	return nil
}

// PublicRouter is implemented by a service that also serves anonymous routes (no bearer token),
// such as identity's invitation acceptance, where a credential in the request itself is checked by
// the service. The binary mounts them on the anonymous /api group, which has the edge (trace
// context, query text check, body limit) but no authentication; everything else a service serves
// goes through Routes. Keep such routes few and let each check its own credential.
type PublicRouter interface {
	PublicRoutes(g *echo.Group)
}

// RootAliaser is implemented by a service that speaks a standard protocol whose clients join a
// fixed path to a base URL (OFREP: <base>/ofrep/v1/evaluate/flags/{key}). Each prefix it returns
// ("/ofrep/") is also answered at the root by the same /api route, so a client configured with
// the bare host works when it reaches the handler directly (`make run`). Behind the Functions
// host every route sits under its routePrefix "api", so there the base URL is <host>/api.
type RootAliaser interface {
	RootAliases() []string
}

// PermissionsProvider is implemented by the service that answers authz.Permissions (identity):
// the binary hands what it returns to every service as Deps.Permissions.
type PermissionsProvider interface {
	Permissions() authz.Permissions
}

// UsersProvider is implemented by the service that answers authn.Users (identity): the binary
// hands what it returns to every service as Deps.Users.
type UsersProvider interface {
	Users() authn.Users
}

// EntitlementsProvider is implemented by the service that answers entitlements.Source (billing):
// the binary hands what it returns to every service as Deps.Entitlements.
type EntitlementsProvider interface {
	Entitlements() entitlements.Source
}

// DirectoryProvider is implemented by the service that answers tenancy.Directory (tenants): the
// binary hands what it returns to every service as Deps.Directory.
type DirectoryProvider interface {
	Directory() tenancy.Directory
}

// KeysProvider is implemented by the service that issues the access tokens (authz): when it runs
// in the binary, the API verifies bearer tokens with the keys it returns (its signing key ring's
// published keys, read in process on every signature check), so a rotation is seen at once and
// the API never fetches its own JWKS over HTTP. Without it, the keys come from SPINE_AUTH_JWKS_FILE,
// SPINE_AUTH_JWKS_URL or the issuer's discovery document.
type KeysProvider interface {
	TokenKeys() auth.KeySource
}
