package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"spine/handlers/authz"
	"spine/shared/auth"
	"spine/shared/config"
	"spine/shared/secrets"
)

// tokenTimeout bounds `handler token` as a whole.
const tokenTimeout = 30 * time.Second

// errNotServing is the one line `handler token` prints when no server answers at the issuer.
var errNotServing = errors.New("no local server answers: run `make run` first (in another terminal)")

// tokenCmd is `handler token`: a real access token from the running server (make run), through a
// dev client's client_credentials grant at <SPINE_AUTH_ISSUER>/token, printed as one line.
//
//   - --platform-admin: the platform dev client spine-dev, which the server ensures at start-up
//     when SPINE_AUTHZ_DEV_CLIENT=true, its credentials in the vault only (authz-dev-client-secret).
//   - --tenant <id>: the tenant's dev client, created on first use through the admin API
//     (POST /api/clients?tenantId=<id> with a platform token holding client.manage), its
//     credentials kept in the vault as authz-dev-client-<id>; created again when it was deleted or
//     its secret rotated, or when it lacks a requested scope.
//
// The vault is the stack's (SPINE_KEYVAULT_URL, SPINE_KEYVAULT_CA_FILE). --subject and --ttl are
// still accepted but cannot be honoured: sub is the client id, the lifetime is the server's.
func tokenCmd(ctx context.Context, args []string, getenv config.Getenv, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	tenant := fs.String("tenant", "", "a token of this tenant (id), from its dev client (created on first use)")
	scopes := fs.String("scopes", "tenant.read,tenant.manage", "comma-separated scopes to request")
	admin := fs.Bool("platform-admin", false, "a platform-admin token, from the platform dev client spine-dev")
	fs.String("subject", "", "ignored (kept for old scripts): sub is the dev client's id, as in every client_credentials token")
	fs.Duration("ttl", 0, "ignored (kept for old scripts): the lifetime is the server's (SPINE_AUTHZ_ACCESS_TOKEN_TTL)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "subject" || f.Name == "ttl" {
			fmt.Fprintf(stderr, "handler token: --%s is ignored: %s\n", f.Name, f.Usage[strings.Index(f.Usage, ": ")+2:])
		}
	})
	if *admin == (*tenant != "") {
		return errors.New("--tenant <id> or --platform-admin: exactly one is required")
	}
	var sc []string
	for _, s := range strings.Split(*scopes, ",") {
		if s = strings.TrimSpace(s); s != "" {
			sc = append(sc, s)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, tokenTimeout)
	defer cancel()
	m, err := newMinter(ctx, getenv)
	if err != nil {
		return err
	}
	var tok string
	if *admin {
		tok, err = m.platformToken(ctx, sc)
	} else {
		tok, err = m.tenantToken(ctx, *tenant, sc)
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}

// devVault is what the minter needs of the vault.
type devVault interface {
	Get(ctx context.Context, name string) (secrets.Secret, error)
	Set(ctx context.Context, name, value, contentType string, tags map[string]string) (secrets.Secret, error)
}

// minter gets tokens from the running server through the dev clients.
type minter struct {
	issuer string // SPINE_AUTH_ISSUER: <base>/api/connect
	api    string // <base>/api
	vault  devVault
	http   *http.Client
}

// newMinter checks the settings and that the server answers at the issuer (its discovery
// document), so "nothing runs" is one line.
func newMinter(ctx context.Context, getenv config.Getenv) (*minter, error) {
	issuer := strings.TrimSuffix(getenv("SPINE_AUTH_ISSUER"), "/")
	if issuer == "" {
		return nil, errors.New("SPINE_AUTH_ISSUER: required (make token sets it from make run)")
	}
	api, ok := strings.CutSuffix(issuer, "/connect")
	if !ok {
		return nil, fmt.Errorf("SPINE_AUTH_ISSUER %q: must be this server's <base URL>/api/connect", issuer)
	}
	m := &minter{issuer: issuer, api: api, http: &http.Client{Timeout: 10 * time.Second}}
	if err := m.serving(ctx); err != nil {
		return nil, err
	}
	vaultURL := getenv("SPINE_KEYVAULT_URL")
	if vaultURL == "" {
		return nil, errors.New("SPINE_KEYVAULT_URL: required (the local stack's env has it)")
	}
	v, err := secrets.Open(secrets.Config{VaultURL: vaultURL, CAFile: getenv("SPINE_KEYVAULT_CA_FILE"), MaxRetries: 1})
	if err != nil {
		return nil, err
	}
	m.vault = v
	return m, nil
}

// serving asks the discovery document: a server that does not answer is errNotServing.
func (m *minter) serving(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.issuer+auth.DiscoveryPath, nil)
	if err != nil {
		return fmt.Errorf("SPINE_AUTH_ISSUER %q: %w", m.issuer, err)
	}
	resp, err := m.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", m.issuer, errNotServing)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s%s answers %d: is the authorization server (authz) enabled?", m.issuer, auth.DiscoveryPath, resp.StatusCode)
	}
	return nil
}

// platformToken is a token of the platform dev client.
func (m *minter) platformToken(ctx context.Context, scopes []string) (string, error) {
	c, found, err := authz.ReadDevCredentials(ctx, m.vault, authz.DevClientSecretName)
	if err != nil {
		return "", err
	}
	if !found {
		return "", fmt.Errorf("the vault has no %s: the server creates the platform dev client at start-up when SPINE_AUTHZ_DEV_CLIENT=true (make run sets it)", authz.DevClientSecretName)
	}
	return m.clientCredentials(ctx, c, scopes)
}

// tenantToken is a token of tenant's dev client, created (again) when needed.
func (m *minter) tenantToken(ctx context.Context, tenant string, scopes []string) (string, error) {
	name, err := authz.DevTenantSecretName(tenant)
	if err != nil {
		return "", fmt.Errorf("--tenant %q: %w", tenant, err)
	}
	c, found, err := authz.ReadDevCredentials(ctx, m.vault, name)
	if err != nil {
		return "", err
	}
	if found {
		tok, err := m.clientCredentials(ctx, c, scopes)
		var re *oauth2.RetrieveError
		switch {
		case err == nil:
			return tok, nil
		case !errors.As(err, &re) || (re.ErrorCode != "invalid_client" && re.ErrorCode != "invalid_scope"):
			return "", err
		}
		// Deleted, its secret rotated, or without a scope asked for now: a new one replaces it.
	}
	old := c
	c, err = m.createTenantClient(ctx, tenant, scopes)
	if err != nil {
		return "", err
	}
	if _, err := m.vault.Set(ctx, name, c.Encode(), authz.DevCredentialsContentType, map[string]string{"tenant": strings.ToLower(tenant)}); err != nil {
		return "", fmt.Errorf("keeping the tenant's dev client in the vault (%s): %w", name, err)
	}
	if found {
		m.deleteClient(ctx, tenant, old.ClientID) // the one it replaces, if it still exists
	}
	return m.clientCredentials(ctx, c, scopes)
}

// deleteClient deletes a tenant's replaced dev client, best effort: it may be gone already, and a
// leftover client holds nothing but a secret nobody has any more.
func (m *minter) deleteClient(ctx context.Context, tenant, id string) {
	admin, err := m.platformToken(ctx, []string{authz.ScopeClientManage})
	if err != nil {
		return
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, m.api+"/clients/"+url.PathEscape(id)+"?tenantId="+url.QueryEscape(tenant), nil)
	if err != nil {
		return
	}
	req.Header.Set("Authorization", "Bearer "+admin)
	if resp, err := m.http.Do(req); err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// createTenantClient creates a confidential client_credentials client of tenant through the admin
// API, allowed every scope a tenant client may hold and those requested (a scope a tenant client
// may not hold is the admin API's 400, said in one line).
func (m *minter) createTenantClient(ctx context.Context, tenant string, scopes []string) (authz.DevCredentials, error) {
	admin, err := m.platformToken(ctx, []string{authz.ScopeClientManage})
	if err != nil {
		return authz.DevCredentials{}, err
	}
	allowed := authz.TenantDevClientScopes()
	for _, s := range scopes {
		if !slices.Contains(allowed, s) {
			allowed = append(allowed, s)
		}
	}
	body, _ := json.Marshal(map[string]any{
		"name": authz.DevTenantClientName, "clientType": "confidential",
		"grantTypes": []string{"client_credentials"}, "scopes": allowed,
	})
	u := m.api + "/clients?tenantId=" + url.QueryEscape(tenant)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return authz.DevCredentials{}, err
	}
	req.Header.Set("Authorization", "Bearer "+admin)
	req.Header.Set("Content-Type", "application/json")
	resp, err := m.http.Do(req)
	if err != nil {
		return authz.DevCredentials{}, fmt.Errorf("POST %s: %w", u, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusCreated {
		return authz.DevCredentials{}, fmt.Errorf("creating the tenant's dev client: POST %s answered %d %s", u, resp.StatusCode, problemText(out))
	}
	var created struct {
		ID     string `json:"id"`
		Secret string `json:"clientSecret"`
	}
	if err := json.Unmarshal(out, &created); err != nil || created.ID == "" || created.Secret == "" {
		return authz.DevCredentials{}, fmt.Errorf("creating the tenant's dev client: POST %s answered no id and secret", u)
	}
	return authz.DevCredentials{ClientID: created.ID, ClientSecret: created.Secret}, nil
}

// clientCredentials runs the client_credentials grant with golang.org/x/oauth2.
func (m *minter) clientCredentials(ctx context.Context, c authz.DevCredentials, scopes []string) (string, error) {
	cc := clientcredentials.Config{ClientID: c.ClientID, ClientSecret: c.ClientSecret,
		TokenURL: m.issuer + "/token", Scopes: scopes, AuthStyle: oauth2.AuthStyleInHeader}
	tok, err := cc.Token(context.WithValue(ctx, oauth2.HTTPClient, m.http))
	if err != nil {
		return "", fmt.Errorf("client_credentials at %s/token: %w", m.issuer, err)
	}
	return tok.AccessToken, nil
}

// problemText is a problem+json answer's code and detail, for one line.
func problemText(body []byte) string {
	var p struct{ Code, Detail string }
	if json.Unmarshal(body, &p) == nil && p.Code != "" {
		return p.Code + ": " + p.Detail
	}
	if len(body) > 200 {
		body = body[:200]
	}
	return string(body)
}
