package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"spine/shared/auth"
)

// The authorization server's cases.
const (
	caseTokenIssue = "POST /api/connect/token (client_credentials)"
	caseIntrospect = "POST /api/connect/introspect"
)

// hydraAnchor is where the two cases' goals come from (issue 11): Ory Hydra's figures on 2 CPUs
// with its in-memory store, introspection 7,934 req/s at p99 38.5 ms and client_credentials
// issuance 411 req/s.
const hydraAnchor = "Ory Hydra (2 CPU, in-memory)"

// benchScope is the one scope the bench's client asks for.
const benchScope = "tenant.read"

// authzClient is the one confidential client both cases use.
type authzClient struct {
	id, secret string
}

// basic is its HTTP Basic credentials (RFC 6749 §2.3.1: each part form-urlencoded first).
func (c authzClient) basic() string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(c.id)+":"+url.QueryEscape(c.secret)))
}

// authzCases measures token issuance and introspection for one confidential client of the first
// seeded tenant, created through the client admin API. Skipped (with the reason) when the handler
// does not serve the authorization server.
func (b *bench) authzCases(ctx context.Context) error {
	status, out, err := b.do(ctx, http.MethodGet, "/api/health", "", nil)
	if err != nil || status != http.StatusOK {
		return fmt.Errorf("GET /api/health: %d %v", status, err)
	}
	var h struct{ Services []string }
	_ = json.Unmarshal(out, &h)
	if !slices.Contains(h.Services, "authz") {
		why := "the handler does not serve the authorization server (GET /api/health lists " + strings.Join(h.Services, ", ") + ")"
		b.res.add(row{Case: caseTokenIssue, Kind: kindCase, Skipped: why})
		b.res.add(row{Case: caseIntrospect, Kind: kindCase, Skipped: why})
		return nil
	}
	client, err := b.createClient(ctx, b.tenantIDs[0])
	if err != nil {
		return err
	}
	if err := b.caseTokenIssue(ctx, client); err != nil {
		return err
	}
	return b.caseIntrospect(ctx, client)
}

// createClient creates a confidential client_credentials client of tenant, allowed benchScope.
func (b *bench) createClient(ctx context.Context, tenant string) (authzClient, error) {
	admin, err := b.signer.Mint(auth.TokenClaims{Issuer: b.issuer, Audience: audience, Subject: "bench-admin",
		PlatformAdmin: true, Scopes: []string{"client.manage"}}, 2*time.Hour)
	if err != nil {
		return authzClient{}, err
	}
	body, _ := json.Marshal(map[string]any{"name": "bench", "clientType": "confidential",
		"grantTypes": []string{"client_credentials"}, "scopes": []string{benchScope}})
	status, out, err := b.do(ctx, http.MethodPost, "/api/clients?tenantId="+tenant, admin, body)
	if err != nil || status != http.StatusCreated {
		return authzClient{}, fmt.Errorf("POST /api/clients: %d %v %s", status, err, truncate(out, 300))
	}
	var c struct {
		ID     string `json:"id"`
		Secret string `json:"clientSecret"`
	}
	if err := json.Unmarshal(out, &c); err != nil || c.ID == "" || c.Secret == "" {
		return authzClient{}, fmt.Errorf("POST /api/clients: no id and secret in the answer")
	}
	return authzClient{id: c.ID, secret: c.Secret}, nil
}

// tokenForm is the client_credentials request body.
var tokenForm = url.Values{"grant_type": {"client_credentials"}, "scope": {benchScope}}.Encode()

// postForm sends one form POST with the client's Basic credentials.
func (b *bench) postForm(ctx context.Context, path string, c authzClient, form string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.baseURL()+path, strings.NewReader(form))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", c.basic())
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := b.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, out, err
}

// accessToken gets one access token for c.
func (b *bench) accessToken(ctx context.Context, c authzClient) (string, error) {
	status, out, err := b.postForm(ctx, "/api/connect/token", c, tokenForm)
	if err != nil || status != http.StatusOK {
		return "", fmt.Errorf("POST /api/connect/token: %d %v %s", status, err, truncate(out, 300))
	}
	var t struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(out, &t); err != nil || t.AccessToken == "" {
		return "", fmt.Errorf("POST /api/connect/token: no access_token in %s", truncate(out, 200))
	}
	return t.AccessToken, nil
}

// caseTokenIssue measures the client_credentials grant: client authentication (a cached client,
// the SHA-256 of its secret), an ES256 access token signed in process, and its TokenIssued event
// in the outbox (then drained to the audit trail).
func (b *bench) caseTokenIssue(ctx context.Context, c authzClient) error {
	if _, err := b.accessToken(ctx, c); err != nil {
		return err
	}
	w := wrkRun{name: caseSlug[caseTokenIssue], baseURL: b.baseURL(), script: luaForm("/api/connect/token", c.basic(), tokenForm)}
	r, err := b.measureWrk(ctx, caseTokenIssue, w)
	if err != nil {
		return err
	}
	b.res.add(row{Case: caseTokenIssue, Kind: kindCase, RPS: r.RPS, P50: ms(r.P50), P99: ms(r.P99), Ceiling: ceilPG,
		Requests: r.Requests, Failures: r.failures(), NewSessions: r.NewSessions,
		Note: "one confidential client (HTTP Basic), scope " + benchScope + "; each token's TokenIssued event is drained to the audit trail after the run"})
	if err := b.waitOutboxDrained(ctx, caseTokenIssue); err != nil {
		return err
	}
	b.pgStatsEnd(ctx, caseTokenIssue, r.Requests-r.failures(), "request")
	return nil
}

// caseIntrospect measures RFC 7662 introspection of one valid access token by its client: client
// authentication, the token's signature and claims (then its verified-token cache), and the
// revocation list (its answer cached in Redis).
func (b *bench) caseIntrospect(ctx context.Context, c authzClient) error {
	tok, err := b.accessToken(ctx, c)
	if err != nil {
		return err
	}
	form := url.Values{"token": {tok}}.Encode()
	status, out, err := b.postForm(ctx, "/api/connect/introspect", c, form)
	if err != nil || status != http.StatusOK || !strings.Contains(string(out), `"active":true`) {
		return fmt.Errorf("POST /api/connect/introspect: %d %v %s", status, err, truncate(out, 300))
	}
	w := wrkRun{name: caseSlug[caseIntrospect], baseURL: b.baseURL(), script: luaForm("/api/connect/introspect", c.basic(), form)}
	r, err := b.measureWrk(ctx, caseIntrospect, w)
	if err != nil {
		return err
	}
	b.res.add(row{Case: caseIntrospect, Kind: kindCase, RPS: r.RPS, P50: ms(r.P50), P99: ms(r.P99), Ceiling: ceilEcho,
		Requests: r.Requests, Failures: r.failures(), NewSessions: r.NewSessions,
		Note: "one valid access token, introspected by its own client (HTTP Basic)"})
	b.pgStatsEnd(ctx, caseIntrospect, r.Requests-r.failures(), "request")
	return nil
}

// luaForm is a POST of one form body to path with one Authorization header.
func luaForm(path, authorization, body string) string {
	return fmt.Sprintf(`-- generated by bench: POST %s, one form body
local headers = {["Authorization"] = %q, ["Content-Type"] = "application/x-www-form-urlencoded"}
local body = %q
request = function()
  return wrk.format("POST", %q, headers, body)
end
`, path, authorization, body, path)
}
