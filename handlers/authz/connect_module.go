package authz

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/labstack/echo/v4"

	"spine/shared/auth"
	"spine/shared/functions"
	"spine/shared/kit"
	"spine/shared/secrets"
)

// The protocol side of the module: what New adds to the client admin API — the vault, its signing
// key ring and crypto key, the OpenID provider mounted under /api/connect, and the key ring's
// upkeep (a refresh every KeyRefreshInterval on every instance; the AuthzKeyRotation timer).

const (
	// KeyRotationSchedule is AuthzKeyRotation's schedule: daily at 03:00.
	KeyRotationSchedule = "0 0 3 * * *"
	// DefaultKeyRotation is how old the current signing key gets before AuthzKeyRotation replaces
	// it (SPINE_AUTHZ_KEY_ROTATION).
	DefaultKeyRotation = 30 * 24 * time.Hour
	// KeyRefreshInterval is how often every instance re-reads the key ring's versions, so a key
	// another instance rotated in is published (and verified) everywhere within it.
	KeyRefreshInterval = 5 * time.Minute
)

// connect is the protocol's part of a running module.
type connect struct {
	provider    *Provider
	ring        *secrets.KeyRing
	keyRotation time.Duration
	log         *slog.Logger
}

// newConnect opens the vault (SPINE_KEYVAULT_URL; the local fake with SPINE_KEYVAULT_CA_FILE),
// loads the signing key ring (creating its first version when the vault has none) and the
// provider's crypto key (created once), ensures the platform dev client when
// SPINE_AUTHZ_DEV_CLIENT is on (the local stack), and builds the provider over store. The key ring is
// refreshed every KeyRefreshInterval until ctx ends.
func newConnect(ctx context.Context, d kit.Deps, store Store) (*connect, error) {
	vault := d.Secrets
	if vault == nil { // tests that build Deps by hand name the vault in Config only
		var err error
		if vault, err = secrets.Open(secrets.Config{VaultURL: d.Config.KeyVaultURL, CAFile: d.Config.KeyVaultCAFile}); err != nil {
			return nil, fmt.Errorf("SPINE_KEYVAULT_URL: %w", err)
		}
	}
	ring, err := secrets.NewKeyRing(ctx, vault, secrets.KeyRingOptions{Logger: d.Log})
	if err != nil {
		return nil, fmt.Errorf("the signing key ring (Key Vault %s): %w", secrets.SigningKeyName, err)
	}
	crypto, err := vault.EnsureRandom(ctx, secrets.CryptoKeyName, 32)
	if err != nil {
		return nil, fmt.Errorf("the code encryption key (Key Vault %s): %w", secrets.CryptoKeyName, err)
	}
	if d.Config.AuthzDevClient {
		if _, err := EnsureDevClient(ctx, store, vault, d.Log); err != nil {
			return nil, err
		}
	}
	cfg := ProviderConfig{Issuer: d.Config.AuthIssuer, Audience: d.Config.AuthAudience, AccessTokenTTL: d.Config.AuthzAccessTokenTTL}
	copy(cfg.CryptoKey[:], crypto)
	p, err := NewProvider(cfg, ProviderDeps{Store: store, Keys: ring, Users: d.Users, Permissions: d.Permissions, Directory: d.Directory, Redis: d.Cache.Redis(), Log: d.Log})
	if err != nil {
		return nil, err
	}
	rotation := d.Config.AuthzKeyRotation
	if rotation == 0 {
		rotation = DefaultKeyRotation
	}
	c := &connect{provider: p, ring: ring, keyRotation: rotation, log: d.Log}
	go c.refreshKeys(ctx)
	return c, nil
}

// refreshKeys re-reads the key ring every KeyRefreshInterval until ctx ends; a failure keeps the
// keys in memory (logged) and is tried again at the next tick.
func (c *connect) refreshKeys(ctx context.Context) {
	t := time.NewTicker(KeyRefreshInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			if err := c.ring.Refresh(rctx); err != nil {
				c.log.WarnContext(rctx, "authz: refreshing the signing key ring failed; the keys in memory stay", "err", err)
			}
			cancel()
		}
	}
}

// connectFunctions are the protocol's Azure Functions: AuthzConnect and AuthzKeyRotation.
func (a *API) connectFunctions() []functions.Function {
	return []functions.Function{
		ConnectFunction(),
		{Name: "AuthzKeyRotation", Timer: &functions.TimerTrigger{Schedule: KeyRotationSchedule}, Handler: a.rotateKey},
	}
}

// rotateKey is the AuthzKeyRotation timer: a new signing key version in the vault when the
// current one is older than the rotation age; the previous key stays published until the next
// rotation, so tokens it signed keep verifying until they expire.
func (a *API) rotateKey(ctx context.Context, _ *functions.Invocation) (*functions.Result, error) {
	if a.connect == nil {
		return nil, fmt.Errorf("authz: no key ring in this instance")
	}
	k, rotated, err := a.connect.ring.RotateIfOlder(ctx, a.connect.keyRotation)
	if err != nil {
		return nil, err
	}
	if !rotated {
		return &functions.Result{Quiet: true}, nil
	}
	return &functions.Result{Logs: []string{"authz: signing key rotated; kid " + k.ID + ", version " + k.Version}}, nil
}

// TokenKeys implements kit.KeysProvider: the API's token check reads the key ring's published keys
// in process (no JWKS fetch from itself).
func (a *API) TokenKeys() auth.KeySource {
	if a.connect == nil {
		return nil
	}
	return newRingKeys(a.connect.ring, a.connect.log)
}

// PublicRoutes implements kit.PublicRouter: the OpenID provider under /api/connect, on the
// anonymous /api group (every endpoint checks its own credential: client authentication, a
// bearer token, the sign-in form).
func (a *API) PublicRoutes(g *echo.Group) {
	if a.connect != nil {
		a.connect.provider.Mount(g)
	}
}
