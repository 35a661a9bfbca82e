package authz

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"spine/shared/auth"
)

// A tenant token that may manage clients can give a client only the API scopes it holds itself,
// so client.manage is no way to mint user.manage, role.assign, audit.write... through the
// client_credentials grant. The OpenID Connect scopes are always allowed; a platform admin is
// not restricted.

// narrowAdmin is a tenant token with client.manage and tenant.read only.
func (h *harness) narrowAdmin(f tenantFixture) string {
	return h.tokens.MintAs(h.t, "narrow-"+f.id.String(), f.id.String(), false, ScopeClientManage, "tenant.read")
}

func TestCreateClient_403_ScopeBeyondCallersToken(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	narrow := h.narrowAdmin(f)
	body := confidentialBody()
	body["scopes"] = []string{"tenant.read", "user.manage", "role.assign", "audit.write"}
	r := h.do("POST", "/api/clients", narrow, body)
	if r.Code != http.StatusForbidden || r.ProblemCode(t) != auth.CodeInsufficientScope {
		t.Fatalf("%d %s, want 403 insufficient-scope", r.Code, r.Body)
	}
	detail, _ := r.JSON(t)["detail"].(string)
	for _, s := range []string{"user.manage", "role.assign", "audit.write"} {
		if !strings.Contains(detail, s) {
			t.Errorf("the detail does not name %s: %q", s, detail)
		}
	}
	if strings.Contains(detail, "tenant.read") {
		t.Errorf("the detail names a scope the caller holds: %q", detail)
	}
	if ch := r.Header.Get("WWW-Authenticate"); !strings.Contains(ch, `error="insufficient_scope"`) || !strings.Contains(ch, "audit.write") {
		t.Errorf("challenge %q", ch)
	}
	if r := h.must(http.StatusOK, "GET", "/api/clients", narrow, nil); len(r.JSON(t)["value"].([]any)) != 0 {
		t.Fatalf("the refused request created a client: %s", r.Body)
	}

	// What the caller holds, with the OpenID Connect scopes, is fine.
	held := h.create(narrow, "", map[string]any{"name": "Reader", "clientType": "confidential",
		"grantTypes": []string{"client_credentials"}, "scopes": []string{"tenant.read", "client.manage"}})
	if !slices.Equal(held.Scopes, []string{"client.manage", "tenant.read"}) {
		t.Fatalf("scopes %v", held.Scopes)
	}
	web := publicBody()
	web["scopes"] = []string{"openid", "profile", "email", "offline_access", "tenant.read"}
	h.create(narrow, "", web)

	// A platform admin is not restricted by its token's scopes (make token's dev clients).
	pa := h.create(h.platformAdmin(), "?tenantId="+f.id.String(), body)
	if !slices.Equal(pa.Scopes, []string{"audit.write", "role.assign", "tenant.read", "user.manage"}) {
		t.Fatalf("platform admin's client: %v", pa.Scopes)
	}
}

func TestPatchClient_403_ScopeBeyondCallersToken(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	narrow := h.narrowAdmin(f)
	own := h.create(narrow, "", map[string]any{"name": "Reader", "clientType": "confidential",
		"grantTypes": []string{"client_credentials"}, "scopes": []string{"tenant.read"}})

	// Widening a client it may manage beyond its own token: refused, nothing changes.
	r := h.do("PATCH", "/api/clients/"+own.ID, narrow, map[string]any{"scopes": []string{"tenant.read", "user.manage"}})
	if r.Code != http.StatusForbidden || r.ProblemCode(t) != auth.CodeInsufficientScope ||
		!strings.Contains(r.JSON(t)["detail"].(string), "user.manage") {
		t.Fatalf("widening: %d %s", r.Code, r.Body)
	}
	got := h.must(http.StatusOK, "GET", "/api/clients/"+own.ID, narrow, nil)
	if got.Header.Get("ETag") != own.etag || !slices.Equal(anyStrings(got.JSON(t)["scopes"]), []string{"tenant.read"}) {
		t.Fatalf("the refused patch changed the client: %v %s", got.Header, got.Body)
	}
	// Within its scopes it patches as before.
	h.must(http.StatusOK, "PATCH", "/api/clients/"+own.ID, narrow, map[string]any{"name": "Reader 2"})

	// A client that already does more than the caller (made by the tenant's full admin) cannot be
	// changed by it — its grants, redirect URIs or name — nor get a new secret from it.
	strong := h.create(f.admin, "", map[string]any{"name": "Provisioner", "clientType": "confidential",
		"grantTypes": []string{"client_credentials"}, "scopes": []string{"tenant.read", "user.manage"}})
	for _, patch := range []map[string]any{
		{"name": "Mine now"},
		{"grantTypes": []string{"client_credentials", "authorization_code"}, "redirectUris": []string{"https://evil.example/cb"}},
	} {
		if r := h.do("PATCH", "/api/clients/"+strong.ID, narrow, patch); r.Code != http.StatusForbidden ||
			r.ProblemCode(t) != auth.CodeInsufficientScope {
			t.Errorf("patch %v of a stronger client: %d %s", patch, r.Code, r.Body)
		}
	}
	if got := h.must(http.StatusOK, "GET", "/api/clients/"+strong.ID, narrow, nil); got.Header.Get("ETag") != strong.etag {
		t.Fatalf("a refused patch changed the stronger client: %s", got.Body)
	}
	// Not even by narrowing it first to what the caller holds (it would then redirect the stronger
	// client's users, or downgrade it), nor by deleting it.
	if r := h.do("PATCH", "/api/clients/"+strong.ID, narrow, map[string]any{"scopes": []string{"tenant.read"}}); r.Code != http.StatusForbidden ||
		r.ProblemCode(t) != auth.CodeInsufficientScope {
		t.Errorf("narrowing a stronger client: %d %s", r.Code, r.Body)
	}
	if r := h.do("DELETE", "/api/clients/"+strong.ID, narrow, nil); r.Code != http.StatusForbidden ||
		r.ProblemCode(t) != auth.CodeInsufficientScope {
		t.Errorf("deleting a stronger client: %d %s", r.Code, r.Body)
	}
	if got := h.must(http.StatusOK, "GET", "/api/clients/"+strong.ID, narrow, nil); got.Header.Get("ETag") != strong.etag {
		t.Fatalf("a refused narrowing changed the stronger client: %s", got.Body)
	}
	// The caller's own client it deletes.
	spare := h.create(narrow, "", map[string]any{"name": "Spare", "clientType": "confidential",
		"grantTypes": []string{"client_credentials"}, "scopes": []string{"tenant.read"}})
	h.must(http.StatusNoContent, "DELETE", "/api/clients/"+spare.ID, narrow, nil)
	// The full admin, holding the scopes, patches freely; a platform admin too.
	h.must(http.StatusOK, "PATCH", "/api/clients/"+own.ID, f.admin, map[string]any{"scopes": []string{"tenant.read", "user.manage"}})
	h.must(http.StatusOK, "PATCH", "/api/clients/"+own.ID+"?tenantId="+f.id.String(), h.platformAdmin(),
		map[string]any{"scopes": []string{"tenant.read", "user.manage", "audit.write"}})
	if r := h.do("PATCH", "/api/clients/"+own.ID, narrow, map[string]any{"name": "Reader 3"}); r.Code != http.StatusForbidden {
		t.Errorf("a rename of a client widened beyond the caller: %d %s", r.Code, r.Body)
	}
}

func TestRotateSecret_403_ClientScopesBeyondCallersToken(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	narrow := h.narrowAdmin(f)
	strong := h.create(f.admin, "", map[string]any{"name": "Provisioner", "clientType": "confidential",
		"grantTypes": []string{"client_credentials"}, "scopes": []string{"tenant.read", "user.manage"}})
	r := h.do("POST", "/api/clients/"+strong.ID+"/secret", narrow, nil)
	if r.Code != http.StatusForbidden || r.ProblemCode(t) != auth.CodeInsufficientScope ||
		!strings.Contains(r.JSON(t)["detail"].(string), "user.manage") {
		t.Fatalf("%d %s", r.Code, r.Body)
	}
	// The secret shown at creation still works: nothing rotated.
	if _, err := h.store.AuthenticateClient(context.Background(), strong.ID, strong.ClientSecret); err != nil {
		t.Fatalf("the refused rotation changed the secret: %v", err)
	}
	// A client within the caller's scopes rotates as before; the full admin rotates the strong one.
	own := h.create(narrow, "", map[string]any{"name": "Reader", "clientType": "confidential",
		"grantTypes": []string{"client_credentials"}, "scopes": []string{"tenant.read"}})
	h.must(http.StatusOK, "POST", "/api/clients/"+own.ID+"/secret", narrow, nil)
	h.must(http.StatusOK, "POST", "/api/clients/"+strong.ID+"/secret", f.admin, nil)
}
