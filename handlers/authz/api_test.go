package authz

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"spine/shared/ids"
	"spine/shared/tenancy"
)

func TestCreateClient_201_SecretShownOnce(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	r := h.must(http.StatusCreated, "POST", "/api/clients", f.admin, confidentialBody(), "Idempotency-Key", "create-reporting")
	c := r.JSON(t)
	secret, _ := c["clientSecret"].(string)
	id, _ := c["id"].(string)
	if !strings.HasPrefix(secret, "cs1.") || r.Header.Get("Cache-Control") != "no-store" || r.Header.Get("ETag") != `"1"` ||
		r.Header.Get("Location") != "/api/clients/"+id || c["tenantId"] != f.id.String() || c["platform"] != false {
		t.Fatalf("201: %v %s", r.Header, r.Body)
	}
	if _, err := h.store.AuthenticateClient(context.Background(), id, secret); err != nil {
		t.Fatalf("the shown secret does not authenticate: %v", err)
	}
	// Never again: not in a read, a list, or the Idempotency-Key's replay.
	for _, path := range []string{"/api/clients/" + id, "/api/clients"} {
		if r := h.must(http.StatusOK, "GET", path, f.admin, nil); strings.Contains(string(r.Body), secret) ||
			strings.Contains(string(r.Body), "clientSecret") {
			t.Errorf("GET %s shows the secret: %s", path, r.Body)
		}
	}
	again := h.must(http.StatusCreated, "POST", "/api/clients", f.admin, confidentialBody(), "Idempotency-Key", "create-reporting")
	if again.Header.Get("Idempotent-Replayed") != "true" || again.JSON(t)["id"] != id || strings.Contains(string(again.Body), secret) ||
		strings.Contains(string(again.Body), "clientSecret") {
		t.Fatalf("replay: %v %s", again.Header, again.Body)
	}
}

func TestCreateClient_201_PublicClientHasNoSecret(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	c := h.create(f.admin, "", publicBody())
	if c.ClientSecret != "" || c.ClientType != "public" || c.SecretRotatedAt != nil ||
		!slices.Equal(c.GrantTypes, []string{"authorization_code", "refresh_token"}) ||
		!slices.Equal(c.Scopes, []string{"offline_access", "openid", "profile", "user.read"}) ||
		!slices.Equal(c.RedirectURIs, []string{"https://app.example/callback", "http://127.0.0.1:8765/cb"}) {
		t.Fatalf("public client %+v", c)
	}
}

func TestCreateClient_400_InvalidClients(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	with := func(base map[string]any, kv ...any) map[string]any {
		out := map[string]any{}
		for k, v := range base {
			out[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			out[kv[i].(string)] = kv[i+1]
		}
		return out
	}
	for name, body := range map[string]map[string]any{
		"http redirect off loopback":     with(publicBody(), "redirectUris", []string{"http://app.example/cb"}),
		"redirect with a fragment":       with(publicBody(), "redirectUris", []string{"https://app.example/cb#x"}),
		"relative redirect":              with(publicBody(), "redirectUris", []string{"/cb"}),
		"custom scheme redirect":         with(publicBody(), "redirectUris", []string{"javascript://app/cb"}),
		"redirect with user info":        with(publicBody(), "redirectUris", []string{"https://u:p@app.example/cb"}),
		"redirect with empty user info":  with(publicBody(), "redirectUris", []string{"https://@app.example/cb"}),
		"wildcard redirect host":         with(publicBody(), "redirectUris", []string{"https://*.app.example/cb"}),
		"wildcard inside a host label":   with(publicBody(), "redirectUris", []string{"https://app*.example/cb"}),
		"wildcard loopback redirect":     with(publicBody(), "redirectUris", []string{"http://127.0.0.*/cb"}),
		"underscore in the host":         with(publicBody(), "redirectUris", []string{"https://app_x.example/cb"}),
		"wildcard logout redirect":       with(publicBody(), "postLogoutRedirectUris", []string{"https://*.app.example/bye"}),
		"private-use scheme redirect":    with(publicBody(), "redirectUris", []string{"com.example.app:/cb"}),
		"code without redirect":          with(publicBody(), "redirectUris", []string{}),
		"public with client_credentials": with(publicBody(), "grantTypes", []string{"authorization_code", "client_credentials"}),
		"refresh without code":           with(confidentialBody(), "grantTypes", []string{"client_credentials", "refresh_token"}),
		"implicit grant":                 with(publicBody(), "grantTypes", []string{"implicit"}),
		"password grant":                 with(confidentialBody(), "grantTypes", []string{"password"}),
		"no grant":                       with(confidentialBody(), "grantTypes", []string{}),
		"unknown scope":                  with(confidentialBody(), "scopes", []string{"tenant.read", "everything"}),
		"offline_access without refresh": with(confidentialBody(), "scopes", []string{"offline_access"}),
		"platform admin on a tenant":     with(confidentialBody(), "platformAdmin", true),
		"platform-only scope":            with(confidentialBody(), "scopes", []string{"platform.ops"}),
		"unknown client type":            with(confidentialBody(), "clientType", "trusted"),
		"empty name":                     with(confidentialBody(), "name", ""),
		"a secret in the request":        with(confidentialBody(), "clientSecret", "cs1.mine"),
	} {
		r := h.do("POST", "/api/clients", f.admin, body)
		if r.Code != http.StatusBadRequest {
			t.Errorf("%s: %d %s, want 400", name, r.Code, r.Body)
		}
	}
	if r := h.must(http.StatusOK, "GET", "/api/clients", f.admin, nil); len(r.JSON(t)["value"].([]any)) != 0 {
		t.Errorf("a refused request created a client: %s", r.Body)
	}
}

func TestCreateClient_403_WithoutClientManageScope(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	reader := h.tokens.MintAs(t, "reader", f.id.String(), false, "user.read", "tenant.read")
	c := h.create(f.admin, "", confidentialBody())
	for _, req := range []struct{ method, path string }{
		{"GET", "/api/clients"}, {"POST", "/api/clients"}, {"GET", "/api/clients/" + c.ID}, {"PATCH", "/api/clients/" + c.ID},
		{"DELETE", "/api/clients/" + c.ID}, {"POST", "/api/clients/" + c.ID + "/secret"},
	} {
		if r := h.do(req.method, req.path, reader, map[string]any{}); r.Code != http.StatusForbidden || r.ProblemCode(t) != "insufficient-scope" {
			t.Errorf("%s %s: %d %s", req.method, req.path, r.Code, r.Body)
		}
	}
	if r := h.do("GET", "/api/clients", "", nil); r.Code != http.StatusUnauthorized {
		t.Errorf("no token: %d", r.Code)
	}
}

func TestCreateClient_403_TenantSuspended(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	c := h.create(f.admin, "", confidentialBody())
	h.dir.Set(f.id, tenancy.StatusSuspended)
	for _, req := range []struct {
		method, path string
		body         any
	}{
		{"POST", "/api/clients", confidentialBody()},
		{"PATCH", "/api/clients/" + c.ID, map[string]any{"name": "x"}},
		{"POST", "/api/clients/" + c.ID + "/secret", nil},
		{"DELETE", "/api/clients/" + c.ID, nil},
	} {
		if r := h.do(req.method, req.path, f.admin, req.body); r.Code != http.StatusForbidden || r.ProblemCode(t) != "tenant-suspended" {
			t.Errorf("%s %s: %d %s", req.method, req.path, r.Code, r.Body)
		}
	}
	h.must(http.StatusOK, "GET", "/api/clients/"+c.ID, f.admin, nil) // reads go on
}

func TestCreateClient_201_PlatformClientByPlatformAdmin(t *testing.T) {
	h := newHarness(t)
	admin := h.platformAdmin()
	body := confidentialBody()
	body["platformAdmin"], body["scopes"] = true, []string{"platform.ops", "tenant.manage"}
	r := h.must(http.StatusCreated, "POST", "/api/clients?platform=true", admin, body)
	c := r.JSON(t)
	id := c["id"].(string)
	if c["platform"] != true || c["platformAdmin"] != true || c["tenantId"] != nil || r.Header.Get("Location") != "/api/clients/"+id+"?platform=true" {
		t.Fatalf("platform client: %v %s", r.Header, r.Body)
	}
	h.must(http.StatusOK, "GET", r.Header.Get("Location"), admin, nil)
	got, err := h.store.AuthenticateClient(context.Background(), id, c["clientSecret"].(string))
	if err != nil || !got.Platform() || !got.PlatformAdmin {
		t.Fatalf("authenticated platform client %+v %v", got, err)
	}
	// Not a tenant's: a tenant's list and the tenant scope never see it.
	f := h.tenant()
	if r := h.must(http.StatusOK, "GET", "/api/clients", f.admin, nil); strings.Contains(string(r.Body), id) {
		t.Errorf("a tenant lists the platform client: %s", r.Body)
	}
	h.must(http.StatusNotFound, "GET", "/api/clients/"+id, f.admin, nil)
	h.must(http.StatusNotFound, "GET", "/api/clients/"+id+"?tenantId="+f.id.String(), admin, nil)
}

func TestCreateClient_403_PlatformClientByTenantToken(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	for _, req := range []struct{ method, path string }{
		{"GET", "/api/clients?platform=true"}, {"POST", "/api/clients?platform=true"},
	} {
		r := h.do(req.method, req.path, f.admin, confidentialBody())
		if r.Code != http.StatusForbidden || r.ProblemCode(t) != "platform-admin-required" {
			t.Errorf("%s %s: %d %s", req.method, req.path, r.Code, r.Body)
		}
	}
}

func TestCreateClient_400_PlatformAdminMustNameTenantOrPlatform(t *testing.T) {
	h := newHarness(t)
	admin := h.platformAdmin()
	f := h.tenant()
	if r := h.do("POST", "/api/clients", admin, confidentialBody()); r.Code != http.StatusBadRequest || r.ProblemCode(t) != "tenant-required" {
		t.Errorf("no tenant: %d %s", r.Code, r.Body)
	}
	if r := h.do("GET", "/api/clients?platform=true&tenantId="+f.id.String(), admin, nil); r.Code != http.StatusBadRequest {
		t.Errorf("both: %d %s", r.Code, r.Body)
	}
	if r := h.do("GET", "/api/clients?platform=yes", admin, nil); r.Code != http.StatusBadRequest || r.ProblemCode(t) != "invalid-platform" {
		t.Errorf("platform=yes: %d %s", r.Code, r.Body)
	}
	// Named, it works on the tenant's clients, and what it creates it can follow.
	r := h.must(http.StatusCreated, "POST", "/api/clients?tenantId="+f.id.String(), admin, confidentialBody())
	loc := r.Header.Get("Location")
	if !strings.HasSuffix(loc, "?tenantId="+f.id.String()) {
		t.Fatalf("Location %q", loc)
	}
	h.must(http.StatusOK, "GET", loc, admin, nil)
	if r := h.must(http.StatusOK, "GET", "/api/clients", f.admin, nil); len(r.JSON(t)["value"].([]any)) != 1 {
		t.Errorf("the tenant does not see the client its platform admin created: %s", r.Body)
	}
}

func TestGetClient_404_OtherTenantsClient(t *testing.T) {
	h := newHarness(t)
	a, b := h.tenant(), h.tenant()
	bc := h.create(b.admin, "", confidentialBody())
	if r := h.do("GET", "/api/clients/"+bc.ID, a.admin, nil); r.Code != http.StatusNotFound || r.ProblemCode(t) != "client-not-found" {
		t.Fatalf("%d %s", r.Code, r.Body)
	}
}

func TestGetClient_404_DeletedOrMalformed(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	c := h.create(f.admin, "", confidentialBody())
	h.must(http.StatusNoContent, "DELETE", "/api/clients/"+c.ID, f.admin, nil)
	for _, id := range []string{c.ID, "nope", strings.ToUpper(c.ID), ids.New()} {
		if r := h.do("GET", "/api/clients/"+id, f.admin, nil); r.Code != http.StatusNotFound || r.ProblemCode(t) != "client-not-found" {
			t.Errorf("GET %s: %d %s", id, r.Code, r.Body)
		}
	}
}

func TestListClients_200_PagesWithCursor(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	var ids []string
	for range 5 {
		ids = append(ids, h.create(f.admin, "", publicBody()).ID)
	}
	var got []string
	path := "/api/clients?limit=2"
	for path != "" {
		r := h.must(http.StatusOK, "GET", path, f.admin, nil)
		var page struct {
			Value    []clientJSON
			NextLink string
		}
		if err := json.Unmarshal(r.Body, &page); err != nil {
			t.Fatal(err)
		}
		for _, c := range page.Value {
			got = append(got, c.ID)
		}
		path = page.NextLink
	}
	if !slices.Equal(got, ids) {
		t.Fatalf("pages %v, want %v", got, ids)
	}
	if r := h.do("GET", "/api/clients?cursor=bogus", f.admin, nil); r.Code != http.StatusBadRequest {
		t.Errorf("bogus cursor: %d %s", r.Code, r.Body)
	}
}

func TestPatchClient_200_ChangesAndBumpsETag(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	c := h.create(f.admin, "", publicBody())
	r := h.must(http.StatusOK, "PATCH", "/api/clients/"+c.ID, f.admin, map[string]any{
		"name": "Renamed", "scopes": []string{"openid", "offline_access"}, "postLogoutRedirectUris": []string{"https://app.example/bye"},
		"firstParty": true}, "If-Match", c.etag)
	up := r.JSON(t)
	if r.Header.Get("ETag") != `"2"` || up["name"] != "Renamed" || up["firstParty"] != true ||
		!slices.Equal(anyStrings(up["scopes"]), []string{"offline_access", "openid"}) ||
		!slices.Equal(anyStrings(up["postLogoutRedirectUris"]), []string{"https://app.example/bye"}) ||
		!slices.Equal(anyStrings(up["redirectUris"]), c.RedirectURIs) {
		t.Fatalf("patched: %v %s", r.Header, r.Body)
	}
	// The protocol's read follows at once (the cached client was invalidated).
	got, err := h.store.ClientByID(context.Background(), c.ID)
	if err != nil || got.Name != "Renamed" || !got.FirstParty {
		t.Fatalf("ClientByID after the patch: %+v %v", got, err)
	}
	// The same patch again changes nothing.
	if r := h.must(http.StatusOK, "PATCH", "/api/clients/"+c.ID, f.admin, map[string]any{"name": "Renamed"}); r.Header.Get("ETag") != `"2"` {
		t.Errorf("a no-op patch moved the ETag: %v", r.Header)
	}
	// null empties a list.
	if r := h.must(http.StatusOK, "PATCH", "/api/clients/"+c.ID, f.admin, map[string]any{"postLogoutRedirectUris": nil}); len(r.JSON(t)["postLogoutRedirectUris"].([]any)) != 0 {
		t.Errorf("null did not empty the list: %s", r.Body)
	}
}

func TestPatchClient_412_StaleIfMatch(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	c := h.create(f.admin, "", publicBody())
	h.must(http.StatusOK, "PATCH", "/api/clients/"+c.ID, f.admin, map[string]any{"name": "One"}, "If-Match", c.etag)
	for _, req := range []struct {
		method, path string
		body         any
	}{
		{"PATCH", "/api/clients/" + c.ID, map[string]any{"name": "Two"}},
		{"DELETE", "/api/clients/" + c.ID, nil},
	} {
		if r := h.do(req.method, req.path, f.admin, req.body, "If-Match", c.etag); r.Code != http.StatusPreconditionFailed {
			t.Errorf("%s with a stale If-Match: %d %s", req.method, r.Code, r.Body)
		}
	}
	if r := h.must(http.StatusOK, "GET", "/api/clients/"+c.ID, f.admin, nil); r.JSON(t)["name"] != "One" {
		t.Errorf("changed anyway: %s", r.Body)
	}
}

func TestPatchClient_400_InvalidPatches(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	c := h.create(f.admin, "", publicBody())
	for name, body := range map[string]map[string]any{
		"client type":             {"clientType": "confidential"},
		"no redirect for code":    {"redirectUris": nil},
		"client_credentials":      {"grantTypes": []string{"authorization_code", "client_credentials"}},
		"name removed":            {"name": nil},
		"flag removed":            {"firstParty": nil},
		"list of numbers":         {"scopes": []int{1}},
		"platform admin":          {"platformAdmin": true},
		"unknown member":          {"secretHash": "x"},
		"http redirect":           {"redirectUris": []string{"http://app.example/cb"}},
		"offline without refresh": {"grantTypes": []string{"authorization_code"}},
	} {
		if r := h.do("PATCH", "/api/clients/"+c.ID, f.admin, body); r.Code != http.StatusBadRequest {
			t.Errorf("%s: %d %s, want 400", name, r.Code, r.Body)
		}
	}
	if r := h.must(http.StatusOK, "GET", "/api/clients/"+c.ID, f.admin, nil); r.Header.Get("ETag") != `"1"` {
		t.Errorf("a refused patch changed the client: %s", r.Body)
	}
}

func TestRotateSecret_200_NewSecretOnceOldStops(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	c := h.create(f.admin, "", confidentialBody())
	ctx := context.Background()
	if _, err := h.store.AuthenticateClient(ctx, c.ID, c.ClientSecret); err != nil {
		t.Fatal(err)
	}
	r := h.must(http.StatusOK, "POST", "/api/clients/"+c.ID+"/secret", f.admin, nil, "If-Match", c.etag, "Idempotency-Key", "rotate-1")
	secret, _ := r.JSON(t)["clientSecret"].(string)
	if !strings.HasPrefix(secret, "cs1.") || secret == c.ClientSecret || r.Header.Get("ETag") != `"2"` || r.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("rotation: %v %s", r.Header, r.Body)
	}
	if _, err := h.store.AuthenticateClient(ctx, c.ID, c.ClientSecret); !errors.Is(err, ErrInvalidClient) {
		t.Fatalf("the old secret still authenticates: %v", err)
	}
	if _, err := h.store.AuthenticateClient(ctx, c.ID, secret); err != nil {
		t.Fatalf("the new secret: %v", err)
	}
	again := h.must(http.StatusOK, "POST", "/api/clients/"+c.ID+"/secret", f.admin, nil, "If-Match", c.etag, "Idempotency-Key", "rotate-1")
	if again.Header.Get("Idempotent-Replayed") != "true" || strings.Contains(string(again.Body), secret) {
		t.Fatalf("replay: %v %s", again.Header, again.Body)
	}
	if _, err := h.store.AuthenticateClient(ctx, c.ID, secret); err != nil {
		t.Fatalf("the replay rotated again: %v", err)
	}
}

func TestRotateSecret_409_PublicClient(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	c := h.create(f.admin, "", publicBody())
	if r := h.do("POST", "/api/clients/"+c.ID+"/secret", f.admin, nil); r.Code != http.StatusConflict || r.ProblemCode(t) != "client-public" {
		t.Fatalf("%d %s", r.Code, r.Body)
	}
}

func TestDeleteClient_204_GoneAndRefreshTokensRevoked(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	c := h.create(f.admin, "", confidentialBody())
	pc := h.create(f.admin, "", publicBody())
	ctx := context.Background()
	rt, err := h.store.CreateRefreshToken(ctx, RefreshToken{TenantID: f.id.String(), ClientID: ClientID(pc.ID), Subject: "user-1",
		Scopes: []string{"openid"}, AuthTime: h.clock.now(), ExpiresAt: h.clock.now().Add(5 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	h.must(http.StatusNoContent, "DELETE", "/api/clients/"+pc.ID, f.admin, nil)
	h.must(http.StatusNoContent, "DELETE", "/api/clients/"+c.ID, f.admin, nil, "If-Match", c.etag)
	if _, err := h.store.RefreshTokenByValue(ctx, rt); !errors.Is(err, ErrRefreshTokenNotFound) {
		t.Fatalf("the deleted client's refresh token: %v", err)
	}
	if _, err := h.store.AuthenticateClient(ctx, c.ID, c.ClientSecret); !errors.Is(err, ErrInvalidClient) {
		t.Fatalf("the deleted client authenticates: %v", err)
	}
	for _, req := range []struct{ method, path string }{
		{"GET", "/api/clients/" + c.ID}, {"DELETE", "/api/clients/" + c.ID}, {"PATCH", "/api/clients/" + c.ID},
		{"POST", "/api/clients/" + c.ID + "/secret"},
	} {
		if r := h.do(req.method, req.path, f.admin, map[string]any{"name": "x"}); r.Code != http.StatusNotFound {
			t.Errorf("%s %s after the delete: %d %s", req.method, req.path, r.Code, r.Body)
		}
	}
}

func anyStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}
