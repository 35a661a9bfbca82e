package integrations

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"spine/shared/contracts"
	"spine/shared/secrets"
	"spine/shared/secrets/kvfake"
	"spine/shared/sqlstore"
	"spine/shared/testenv"
)

func TestCreate_201_SecretInVaultOnly_RowAndAnswerHoldTheReference(t *testing.T) {
	h := newHarness(t)
	a := h.tenant()
	tg := newTarget(t)
	c := h.create(a, bearerBody("crm", tg.URL, "tok-create-0001"))
	if c.Status != "Untested" || c.Type != "http" || c.Version != 1 || c.TenantID != a.id.String() {
		t.Fatalf("created %+v", c)
	}
	// Every member of the README's shape is present, the unset ones as null.
	getResp := h.must(http.StatusOK, "GET", "/api/integrations/"+c.ID, a.admin, nil)
	for _, m := range []string{`"lastTestedAt":null`, `"lastSyncAt":null`, `"lastErrorClass":null`} {
		if !strings.Contains(string(getResp.Body), m) {
			t.Errorf("GET lacks %s: %s", m, getResp.Body)
		}
	}
	want := secretName(a.id.String(), c.ID)
	if c.SecretRef.Name != want || c.SecretRef.Vault != h.kv.URL || c.SecretRef.Version == "" {
		t.Fatalf("secretRef %+v, want name %s in %s", c.SecretRef, want, h.kv.URL)
	}
	s, err := h.vault.GetVersion(t.Context(), c.SecretRef.Name, c.SecretRef.Version)
	if err != nil || s.Value() != "tok-create-0001" {
		t.Fatalf("the vault's %s: %v (%v)", c.SecretRef.Name, s, err)
	}
	got := decode[connectionJSON](t, h.must(http.StatusOK, "GET", "/api/integrations/"+c.ID, a.reader, nil).Body)
	if got.SecretRef != c.SecretRef || !sameJSON(t, got.Settings, c.Settings) {
		t.Errorf("read back %+v, created %+v", got, c)
	}
	ev := h.lastOfType(a.id, contracts.IntegrationCreated)
	data := decode[contracts.IntegrationData](t, ev.Data)
	if ev.Subject != c.ID || data.ConnectionID != c.ID || data.Type != "http" || data.Status != "Untested" {
		t.Errorf("IntegrationCreated %+v %s", data, ev.Subject)
	}
}

func TestCreate_400_UnknownConnectorType(t *testing.T) {
	h := newHarness(t)
	a := h.tenant()
	body := bearerBody("x", "https://api.example.com", "tok")
	body["type"] = "ftp"
	r := h.must(http.StatusBadRequest, "POST", "/api/integrations", a.admin, body)
	if code := r.ProblemCode(t); code != "unknown-connector-type" {
		t.Errorf("code %s", code)
	}
	if n := len(h.vault.names()); n != 0 {
		t.Errorf("the vault was written %d times", n)
	}
}

func TestCreate_400_InvalidSettings_NamesTheMember(t *testing.T) {
	h := newHarness(t)
	a := h.tenant()
	cases := []struct {
		name     string
		settings map[string]any
		path     string
	}{
		{"missing baseUrl", map[string]any{"authScheme": "bearer"}, "settings.baseUrl"},
		{"unknown member", map[string]any{"baseUrl": "https://api.example.com", "authScheme": "bearer", "colour": "red"}, "settings.colour"},
		{"scheme not in enum", map[string]any{"baseUrl": "https://api.example.com", "authScheme": "digest"}, "settings.authScheme"},
		{"basic without username", map[string]any{"baseUrl": "https://api.example.com", "authScheme": "basic"}, "settings.username"},
		{"bearer with username", map[string]any{"baseUrl": "https://api.example.com", "authScheme": "bearer", "username": "u"}, "settings.username"},
		{"not http(s)", map[string]any{"baseUrl": "ftp://api.example.com", "authScheme": "bearer"}, "settings.baseUrl"},
		{"plain http to a public host", map[string]any{"baseUrl": "http://api.example.com", "authScheme": "bearer"}, "settings.baseUrl"},
		{"metadata address", map[string]any{"baseUrl": "https://169.254.169.254", "authScheme": "bearer"}, "settings.baseUrl"},
		{"private address", map[string]any{"baseUrl": "https://10.1.2.3", "authScheme": "bearer"}, "settings.baseUrl"},
		{"health path without slash", map[string]any{"baseUrl": "https://api.example.com", "authScheme": "bearer", "healthPath": "health"}, "settings.healthPath"},
		{"wrong type", map[string]any{"baseUrl": 42, "authScheme": "bearer"}, "settings.baseUrl"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := h.must(http.StatusBadRequest, "POST", "/api/integrations", a.admin,
				map[string]any{"type": "http", "name": "x", "secret": "s3cr3t-value", "settings": tc.settings})
			m := r.JSON(t)
			if r.ProblemCode(t) != "invalid-settings" || !strings.Contains(m["detail"].(string), tc.path) {
				t.Errorf("%s", r.Body)
			}
		})
	}
	if n := len(h.vault.names()); n != 0 {
		t.Errorf("the vault was written %d times", n)
	}
}

func TestCreate_400_SecretInSettings_NamesThePathAndPointsToSecret(t *testing.T) {
	h := newHarness(t)
	a := h.tenant()
	cases := []struct {
		name     string
		settings map[string]any
		path     string
	}{
		{"password member", map[string]any{"baseUrl": "https://api.example.com", "authScheme": "basic", "username": "u", "password": "hunter2"}, "settings.password"},
		{"jwt value", map[string]any{"baseUrl": "https://api.example.com", "authScheme": "bearer",
			"healthPath": "/h?t=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"}, "settings.healthPath"},
		{"password in url", map[string]any{"baseUrl": "https://user:pa55@api.example.com", "authScheme": "bearer"}, "settings.baseUrl"},
		{"nested apiKey", map[string]any{"baseUrl": "https://api.example.com", "authScheme": "bearer", "extra": map[string]any{"apiKey": "x"}}, "settings.extra.apiKey"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := h.must(http.StatusBadRequest, "POST", "/api/integrations", a.admin,
				map[string]any{"type": "http", "name": "x", "secret": "s3cr3t-value", "settings": tc.settings})
			m := r.JSON(t)
			detail, _ := m["detail"].(string)
			if r.ProblemCode(t) != "secret-in-settings" || !strings.Contains(detail, tc.path) || !strings.Contains(detail, "secret member") {
				t.Errorf("%s", r.Body)
			}
		})
	}
	if n := len(h.vault.names()); n != 0 {
		t.Errorf("the vault was written %d times", n)
	}
}

// A credential in a URL setting (a query parameter, a webhook key as a path segment) is refused
// with the member's path and the hint to send it as the secret — it would be stored in SQL and
// shown to every tenant.read holder — and nothing is written to the vault; ordinary paths pass.
func TestCreate_400_CredentialInURLSettings_OrdinaryPathsAccepted(t *testing.T) {
	h := newHarness(t)
	a := h.tenant()
	cases := []struct{ name, baseURL, healthPath, path string }{
		// Slack incoming webhook: the last path segment IS the credential (24 chars).
		{"slack webhook path", "https://hooks.slack.com/services/T0A1B2C3D/B0E4F5G6H/", "/Xk29fLq8Zp3mWv7RtY2bNc4Q", "settings.baseUrl"},
		{"api_key query", "https://api.example.com", "/status?api_key=Xk29fLq8Zp3mWv7RtY2bNc4Q", "settings.healthPath"},
		{"access_token in baseUrl query", "https://api.example.com/v1?access_token=Xk29fLq8Zp3mWv7RtY2bNc4Q", "", "settings.baseUrl"},
		{"password= in query", "https://api.example.com", "/status?user=bob&password=hunter2hunter2", "settings.healthPath"},
		{"apikey query short", "https://api.example.com", "/status?apikey=Zp3mWv7RtY2bNc4Q", "settings.healthPath"},
		{"access_token query", "https://api.example.com", "/v1/me?access_token=Zp3mWv7RtY2bNc4QxL", "settings.healthPath"},
		{"secret in path seg", "https://api.example.com/hooks/8f3kQ2pZ7mWv4RtY", "", "settings.baseUrl"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := map[string]any{"baseUrl": tc.baseURL, "authScheme": "bearer"}
			if tc.healthPath != "" {
				s["healthPath"] = tc.healthPath
			}
			r := h.do("POST", "/api/integrations", a.admin, map[string]any{"type": "http", "name": "x", "secret": "s3cr3t-value", "settings": s})
			if r.Code != http.StatusBadRequest {
				t.Fatalf("accepted (%d): the credential would be in SQL and in every GET", r.Code)
			}
			code := r.ProblemCode(t)
			detail, _ := r.JSON(t)["detail"].(string)
			if (code != "secret-in-settings" && code != "invalid-settings") || !strings.Contains(detail, tc.path) || !strings.Contains(detail, "secret member") {
				t.Errorf("%s", r.Body)
			}
			if strings.Contains(string(r.Body), "Zp3mWv7RtY2bNc4Q") || strings.Contains(string(r.Body), "8f3kQ2pZ7mWv4RtY") {
				t.Errorf("the problem repeats the credential: %s", r.Body)
			}
		})
	}
	if n := len(h.vault.names()); n != 0 {
		t.Errorf("the vault was written %d times", n)
	}
	for _, hp := range []string{"/api/v2/health", "/status", "/hooks/order-created", "/tenants/0193a1b2-7c4d-7e8f-9a0b-1c2d3e4f5a6b/health"} {
		h.must(http.StatusCreated, "POST", "/api/integrations", a.admin, map[string]any{"type": "http", "name": "ok", "secret": "s3cr3t-value",
			"settings": map[string]any{"baseUrl": "https://api.example.com/v1", "healthPath": hp, "authScheme": "bearer"}})
	}
}

func TestCreate_400_NoSecret(t *testing.T) {
	h := newHarness(t)
	a := h.tenant()
	body := bearerBody("x", "https://api.example.com", "")
	r := h.must(http.StatusBadRequest, "POST", "/api/integrations", a.admin, body)
	if r.ProblemCode(t) != "invalid-input" || !strings.Contains(string(r.Body), "secret") {
		t.Errorf("%s", r.Body)
	}
}

// TestCreate_400_BadNameOrSecret_NamesTheMember: a name on two lines, a secret with a NUL, a
// secret of the wrong JSON kind — each a 400 naming the member, and nothing in the vault.
func TestCreate_400_BadNameOrSecret_NamesTheMember(t *testing.T) {
	h := newHarness(t)
	a := h.tenant()
	for name, tc := range map[string]struct {
		mutate      func(map[string]any)
		code, field string
	}{
		"name on two lines":  {func(b map[string]any) { b["name"] = "a\nb" }, "invalid-input", "name"},
		"secret with NUL":    {func(b map[string]any) { b["secret"] = "bad\x00x" }, "invalid-input", "secret"},
		"secret is a number": {func(b map[string]any) { b["secret"] = 123 }, "invalid-json", "secret"},
		"secret is object":   {func(b map[string]any) { b["secret"] = map[string]any{"v": "x"} }, "invalid-json", "secret"},
	} {
		body := bearerBody("x", "https://api.example.com", "s3cr3t-value")
		tc.mutate(body)
		r := h.do("POST", "/api/integrations", a.admin, body)
		if r.Code != http.StatusBadRequest || r.ProblemCode(t) != tc.code || !strings.Contains(string(r.Body), `"`+tc.field+`"`) {
			t.Errorf("%s: %d %s", name, r.Code, r.Body)
		}
	}
}

func TestCreate_403_ReaderToken(t *testing.T) {
	h := newHarness(t)
	a := h.tenant()
	h.must(http.StatusForbidden, "POST", "/api/integrations", a.reader, bearerBody("x", "https://api.example.com", "tok"))
}

// Key Vault failing: 503 vault-unavailable, no row, no event; the vault holds nothing.
func TestCreate_503_VaultUnavailable_NothingStored(t *testing.T) {
	h := newHarness(t)
	a := h.tenant()
	h.kv.InjectFault(fault503)
	r := h.must(http.StatusServiceUnavailable, "POST", "/api/integrations", a.admin, bearerBody("x", "https://api.example.com", "tok-kv-down"))
	if r.ProblemCode(t) != "vault-unavailable" {
		t.Errorf("%s", r.Body)
	}
	assertNoConnections(t, h, a)
	if evs := h.outbox(a.id); len(evs) != 0 {
		t.Errorf("events %v", evs)
	}
}

// assertNoConnections: the tenant has no row at all (live or deleted).
func assertNoConnections(t *testing.T, h *harness, f tenantFixture) {
	t.Helper()
	var n []string
	if err := h.rt.InReadTx(t.Context(), sqlstore.TenantScope(f.id), func(tx *sqlstore.Tx) error {
		var err error
		n, err = testenv.QueryStrings(t.Context(), tx, `SELECT connection_id::text FROM connections`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(n) != 0 {
		t.Errorf("rows %v", n)
	}
}

// SQL failing after the vault write: the secret is deleted again, nothing is stored.
func TestCreate_SQLFailsAfterVaultWrite_SecretDeleted(t *testing.T) {
	h := newHarness(t)
	a := h.tenant()
	broken := testDB.OpenRuntime(t, sqlstore.PoolConfig{})
	h.svc.store = NewStore(broken)
	_ = broken.Close() // every statement now fails
	r := h.do("POST", "/api/integrations", a.admin, bearerBody("x", "https://api.example.com", "tok-sql-down"))
	if r.Code < 500 {
		t.Fatalf("%d %s", r.Code, r.Body)
	}
	names := h.vault.names()
	if len(names) != 1 {
		t.Fatalf("vault writes %v", names)
	}
	if _, err := h.vault.Get(t.Context(), names[0]); !errors.Is(err, secrets.ErrNotFound) {
		t.Errorf("the orphan secret %s is readable: %v", names[0], err)
	}
	assertNoConnections(t, h, a)
}

func TestCreate_IdempotencyKey_ReplaysTheConnection_OneSecret(t *testing.T) {
	h := newHarness(t)
	a := h.tenant()
	body := bearerBody("x", "https://api.example.com", "tok-idem")
	r1 := h.must(http.StatusCreated, "POST", "/api/integrations", a.admin, body, "Idempotency-Key", "k-1")
	r2 := h.must(http.StatusCreated, "POST", "/api/integrations", a.admin, body, "Idempotency-Key", "k-1")
	if string(r1.Body) != string(r2.Body) {
		t.Errorf("replay %s, first %s", r2.Body, r1.Body)
	}
	if n := len(h.vault.names()); n != 1 {
		t.Errorf("the vault was written %d times", n)
	}
	body["name"] = "y"
	h.must(http.StatusUnprocessableEntity, "POST", "/api/integrations", a.admin, body, "Idempotency-Key", "k-1")
}

func TestList_PagesByCursor_LeavesDeletedOut(t *testing.T) {
	h := newHarness(t)
	a := h.tenant()
	var ids []string
	for i := range 5 {
		ids = append(ids, h.create(a, bearerBody("c"+string(rune('a'+i)), "https://api.example.com", "tok-list")).ID)
	}
	h.must(http.StatusNoContent, "DELETE", "/api/integrations/"+ids[2], a.admin, nil)
	var got []string
	path := "/api/integrations?limit=2"
	for path != "" {
		page := decode[struct {
			Value    []connectionJSON
			NextLink string
		}](t, h.must(http.StatusOK, "GET", path, a.reader, nil).Body)
		for _, c := range page.Value {
			got = append(got, c.ID)
		}
		path = page.NextLink
		if len(got) > 10 {
			t.Fatal("paging does not end")
		}
	}
	want := []string{ids[0], ids[1], ids[3], ids[4]}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("listed %v, want %v", got, want)
	}
	empty := h.tenant()
	if b := h.must(http.StatusOK, "GET", "/api/integrations", empty.reader, nil).Body; !strings.Contains(string(b), `"value":[]`) {
		t.Errorf("empty list %s", b)
	}
}

func TestGet_404_UnknownMalformedOrDeleted(t *testing.T) {
	h := newHarness(t)
	a := h.tenant()
	c := h.create(a, bearerBody("x", "https://api.example.com", "tok"))
	h.must(http.StatusNoContent, "DELETE", "/api/integrations/"+c.ID, a.admin, nil)
	for _, id := range []string{c.ID, "0193a1b2-0000-7000-8000-000000000000", "not-an-id"} {
		r := h.must(http.StatusNotFound, "GET", "/api/integrations/"+id, a.reader, nil)
		if r.ProblemCode(t) != "not-found" {
			t.Errorf("%s", r.Body)
		}
	}
}

func TestPatch_RenamesDisablesAndEnables_SettingsMakeItUntested(t *testing.T) {
	h := newHarness(t)
	a := h.tenant()
	tg := newTarget(t)
	tg.expectBearer("tok-patch")
	c := h.create(a, bearerBody("x", tg.URL, "tok-patch"))
	okTest := h.must(http.StatusOK, "POST", "/api/integrations/"+c.ID+"/test", a.admin, nil)
	if !strings.Contains(string(okTest.Body), `"result":{"ok":true,"errorClass":null}`) {
		t.Errorf("a passing check's result: %s", okTest.Body)
	}
	if got := decode[testJSON](t, okTest.Body); got.Status != "Healthy" {
		t.Fatalf("tested %+v", got)
	}
	p := decode[connectionJSON](t, h.must(http.StatusOK, "PATCH", "/api/integrations/"+c.ID, a.admin, map[string]any{"name": "renamed"}).Body)
	if p.Name != "renamed" || p.Status != "Healthy" {
		t.Errorf("renamed %+v", p)
	}
	p = decode[connectionJSON](t, h.must(http.StatusOK, "PATCH", "/api/integrations/"+c.ID, a.admin, map[string]any{"enabled": false}).Body)
	if p.Status != "Disabled" {
		t.Errorf("disabled %+v", p)
	}
	if r := h.must(http.StatusConflict, "POST", "/api/integrations/"+c.ID+"/test", a.admin, nil); r.ProblemCode(t) != "integration-disabled" {
		t.Errorf("%s", r.Body)
	}
	h.must(http.StatusConflict, "POST", "/api/integrations/"+c.ID+"/sync", a.admin, nil)
	p = decode[connectionJSON](t, h.must(http.StatusOK, "PATCH", "/api/integrations/"+c.ID, a.admin, map[string]any{"enabled": true}).Body)
	if p.Status != "Untested" {
		t.Errorf("enabled %+v", p)
	}
	h.must(http.StatusOK, "POST", "/api/integrations/"+c.ID+"/test", a.admin, nil)
	p = decode[connectionJSON](t, h.must(http.StatusOK, "PATCH", "/api/integrations/"+c.ID, a.admin,
		map[string]any{"settings": map[string]any{"baseUrl": tg.URL, "healthPath": "/other", "authScheme": "bearer"}}).Body)
	if p.Status != "Untested" || !strings.Contains(string(p.Settings), "/other") {
		t.Errorf("new settings %+v", p)
	}
	r := h.must(http.StatusBadRequest, "PATCH", "/api/integrations/"+c.ID, a.admin,
		map[string]any{"settings": map[string]any{"baseUrl": tg.URL, "authScheme": "bearer", "token": "abc"}})
	if r.ProblemCode(t) != "secret-in-settings" {
		t.Errorf("%s", r.Body)
	}
	if n := len(h.outbox(a.id)); n < 6 {
		t.Errorf("%d events", n)
	}
}

func TestPatch_412_IfMatchNamesAnotherVersion(t *testing.T) {
	h := newHarness(t)
	a := h.tenant()
	c := h.create(a, bearerBody("x", "https://api.example.com", "tok"))
	h.must(http.StatusPreconditionFailed, "PATCH", "/api/integrations/"+c.ID, a.admin, map[string]any{"name": "y"}, "If-Match", `"7"`)
	h.must(http.StatusOK, "PATCH", "/api/integrations/"+c.ID, a.admin, map[string]any{"name": "y"}, "If-Match", `"1"`)
}

func TestDelete_204_SecretSoftDeletedAndRecoverable(t *testing.T) {
	h := newHarness(t)
	a := h.tenant()
	c := h.create(a, bearerBody("x", "https://api.example.com", "tok-delete"))
	h.must(http.StatusNoContent, "DELETE", "/api/integrations/"+c.ID, a.admin, nil)
	h.must(http.StatusNotFound, "DELETE", "/api/integrations/"+c.ID, a.admin, nil)
	ctx := t.Context()
	if _, err := h.vault.Get(ctx, c.SecretRef.Name); !errors.Is(err, secrets.ErrNotFound) {
		t.Fatalf("the deleted connection's secret is readable: %v", err)
	}
	if err := h.vault.Recover(ctx, c.SecretRef.Name); err != nil {
		t.Fatalf("recover: %v", err)
	}
	if s, err := h.vault.Get(ctx, c.SecretRef.Name); err != nil || s.Value() != "tok-delete" {
		t.Errorf("recovered %v %v", s, err)
	}
	if ev := h.lastOfType(a.id, contracts.IntegrationDeleted); ev.Subject != c.ID {
		t.Errorf("%+v", ev)
	}
}

func TestDelete_503_VaultUnavailable_ConnectionKept(t *testing.T) {
	h := newHarness(t)
	a := h.tenant()
	c := h.create(a, bearerBody("x", "https://api.example.com", "tok-keep"))
	h.kv.InjectFault(kvfake.Fault{Status: http.StatusInternalServerError, Count: 1})
	h.must(http.StatusServiceUnavailable, "DELETE", "/api/integrations/"+c.ID, a.admin, nil)
	h.must(http.StatusOK, "GET", "/api/integrations/"+c.ID, a.reader, nil)
}

func TestRotateSecret_200_NewVersionUsed_OldDisabled(t *testing.T) {
	h := newHarness(t)
	a := h.tenant()
	tg := newTarget(t)
	c := h.create(a, bearerBody("x", tg.URL, "tok-old"))
	r := h.must(http.StatusOK, "PUT", "/api/integrations/"+c.ID+"/secret", a.admin, map[string]any{"secret": "tok-new"})
	if strings.Contains(string(r.Body), "tok-new") {
		t.Fatalf("the answer shows the secret: %s", r.Body)
	}
	got := decode[connectionJSON](t, r.Body)
	if got.SecretRef.Version == c.SecretRef.Version || got.SecretRef.Name != c.SecretRef.Name || got.Version != 2 {
		t.Fatalf("rotated %+v from %+v", got.SecretRef, c.SecretRef)
	}
	ctx := t.Context()
	// Key Vault answers 403 to a read of a disabled version; Versions lists the enabled ones.
	if vs, err := h.vault.Versions(ctx, c.SecretRef.Name); err != nil || len(vs) != 1 || vs[0].Version != got.SecretRef.Version {
		t.Errorf("enabled versions %v (%v), want only %s", vs, err, got.SecretRef.Version)
	}
	if _, err := h.vault.GetVersion(ctx, c.SecretRef.Name, c.SecretRef.Version); err == nil {
		t.Error("the old version is readable")
	}
	tg.expectBearer("tok-new")
	if res := decode[testJSON](t, h.must(http.StatusOK, "POST", "/api/integrations/"+c.ID+"/test", a.admin, nil).Body); !res.Result.OK {
		t.Errorf("the check with the new secret: %+v", res)
	}
	if ev := h.lastOfType(a.id, contracts.IntegrationSecretRotated); ev.Subject != c.ID {
		t.Errorf("%+v", ev)
	}
	h.kv.InjectFault(fault503)
	h.must(http.StatusServiceUnavailable, "PUT", "/api/integrations/"+c.ID+"/secret", a.admin, map[string]any{"secret": "tok-3"})
	if now := decode[connectionJSON](t, h.must(http.StatusOK, "GET", "/api/integrations/"+c.ID, a.reader, nil).Body); now.SecretRef != got.SecretRef {
		t.Errorf("a failed rotation changed the reference: %+v", now.SecretRef)
	}
}

func TestTest_Bearer_Healthy_WrongToken_Failing4xx(t *testing.T) {
	h := newHarness(t)
	a := h.tenant()
	tg := newTarget(t)
	tg.expectBearer("tok-bearer")
	c := h.create(a, bearerBody("x", tg.URL, "tok-bearer"))
	res := decode[testJSON](t, h.must(http.StatusOK, "POST", "/api/integrations/"+c.ID+"/test", a.admin, nil).Body)
	if !res.Result.OK || res.Status != "Healthy" || res.LastTestedAt == nil || tg.hitsOf("/health") != 1 {
		t.Fatalf("%+v, hits %d", res, tg.hitsOf("/health"))
	}
	tg.expectBearer("something-else")
	r := h.must(http.StatusOK, "POST", "/api/integrations/"+c.ID+"/test", a.admin, nil)
	res = decode[testJSON](t, r.Body)
	if res.Result.OK || res.Result.ErrorClass != ClassHTTP4xx || res.Status != "Failing" || res.LastErrorClass != ClassHTTP4xx {
		t.Errorf("%+v", res)
	}
	if strings.Contains(string(r.Body), "unauthorised") {
		t.Errorf("the answer shows the target's body: %s", r.Body)
	}
	ev := h.lastOfType(a.id, contracts.IntegrationTested)
	if d := decode[contracts.IntegrationTestedData](t, ev.Data); d.ErrorClass != ClassHTTP4xx || d.Status != "Failing" {
		t.Errorf("IntegrationTested %+v", d)
	}
}

func TestTest_Basic_SendsUsernameAndSecret(t *testing.T) {
	h := newHarness(t)
	a := h.tenant()
	tg := newTarget(t)
	tg.expectBasic("svc-user", "pw-basic-1")
	c := h.create(a, map[string]any{"type": "http", "name": "basic", "secret": "pw-basic-1",
		"settings": map[string]any{"baseUrl": tg.URL + "/v1", "healthPath": "/ping", "authScheme": "basic", "username": "svc-user"}})
	res := decode[testJSON](t, h.must(http.StatusOK, "POST", "/api/integrations/"+c.ID+"/test", a.admin, nil).Body)
	if !res.Result.OK || tg.hitsOf("/v1/ping") != 1 {
		t.Errorf("%+v, hits %v", res, tg.hits)
	}
	tg.status = http.StatusBadGateway
	res = decode[testJSON](t, h.must(http.StatusOK, "POST", "/api/integrations/"+c.ID+"/test", a.admin, nil).Body)
	if res.Result.ErrorClass != ClassHTTP5xx {
		t.Errorf("%+v", res)
	}
}

func TestSync_202_WorkerGetsSyncPathAndRecordsLastSyncAt(t *testing.T) {
	h := newHarness(t)
	a := h.tenant()
	tg := newTarget(t)
	tg.expectBearer("tok-sync")
	c := h.create(a, bearerBody("x", tg.URL, "tok-sync"))
	h.must(http.StatusAccepted, "POST", "/api/integrations/"+c.ID+"/sync", a.admin, nil)
	ev := h.lastOfType(a.id, contracts.IntegrationSyncRequested)
	if _, err := h.deliver(ev); err != nil {
		t.Fatal(err)
	}
	if tg.hitsOf("/sync") != 1 {
		t.Fatalf("sync hits %v", tg.hits)
	}
	got := decode[connectionJSON](t, h.must(http.StatusOK, "GET", "/api/integrations/"+c.ID, a.reader, nil).Body)
	if got.LastSyncAt == nil || got.Status != "Healthy" {
		t.Errorf("after the sync %+v", got)
	}
	// A redelivery is a duplicate: recorded once.
	if _, err := h.deliver(ev); err != nil {
		t.Fatal(err)
	}
	again := decode[connectionJSON](t, h.must(http.StatusOK, "GET", "/api/integrations/"+c.ID, a.reader, nil).Body)
	if again.Version != got.Version {
		t.Errorf("the redelivery was recorded again: version %d → %d", got.Version, again.Version)
	}
	// Deleted since the request: acknowledged, no call.
	h.must(http.StatusAccepted, "POST", "/api/integrations/"+c.ID+"/sync", a.admin, nil)
	ev2 := h.lastOfType(a.id, contracts.IntegrationSyncRequested)
	h.must(http.StatusNoContent, "DELETE", "/api/integrations/"+c.ID, a.admin, nil)
	before := tg.hitsOf("/sync")
	if _, err := h.deliver(ev2); err != nil {
		t.Fatal(err)
	}
	if tg.hitsOf("/sync") != before {
		t.Error("a deleted connection was synced")
	}
}

// A redelivered IntegrationSyncRequested (the host retries after a lost acknowledgement) finds
// its claim before calling out: the outside system gets one request with the tenant's
// credential, not one per delivery.
func TestSync_RedeliveredEventMakesNoSecondOutboundRequest(t *testing.T) {
	h := newHarness(t)
	a := h.tenant()
	tg := newTarget(t)
	tg.expectBearer("tok-once")
	c := h.create(a, bearerBody("x", tg.URL, "tok-once"))
	h.must(http.StatusAccepted, "POST", "/api/integrations/"+c.ID+"/sync", a.admin, nil)
	ev := h.lastOfType(a.id, contracts.IntegrationSyncRequested)
	for i := range 3 {
		res, err := h.deliver(ev)
		if err != nil {
			t.Fatalf("delivery %d: %v", i+1, err)
		}
		if i > 0 && !strings.Contains(strings.Join(res.Logs, " "), "duplicate") {
			t.Errorf("delivery %d: %v, want a duplicate", i+1, res.Logs)
		}
	}
	if n := tg.hitsOf("/sync"); n != 1 {
		t.Fatalf("the outside system got %d sync requests for one event delivered 3 times, want 1", n)
	}
	// A new request is a new event: it syncs again.
	h.must(http.StatusAccepted, "POST", "/api/integrations/"+c.ID+"/sync", a.admin, nil)
	if _, err := h.deliver(h.lastOfType(a.id, contracts.IntegrationSyncRequested)); err != nil {
		t.Fatal(err)
	}
	if n := tg.hitsOf("/sync"); n != 2 {
		t.Fatalf("a second sync request made %d requests in all, want 2", n)
	}
}

func TestTypes_ListsTheHTTPConnectorSchema(t *testing.T) {
	h := newHarness(t)
	a := h.tenant()
	b := h.must(http.StatusOK, "GET", "/api/integrations/types", a.reader, nil).Body
	page := decode[struct{ Value []typeJSON }](t, b)
	if len(page.Value) != 1 || page.Value[0].Type != "http" || page.Value[0].Schema.Properties["baseUrl"] == nil {
		t.Errorf("%s", b)
	}
}

// The API never deletes a row: the runtime role cannot delete a live connection (its DELETE
// grant, for the IntegrationPurge sweep, reaches soft-deleted rows only).
func TestRuntimeRole_CannotDeleteALiveConnection(t *testing.T) {
	h := newHarness(t)
	a := h.tenant()
	h.create(a, bearerBody("x", "https://api.example.com", "tok"))
	deleted := int64(-1)
	err := h.rt.InTx(context.Background(), sqlstore.TenantScope(a.id), func(tx *sqlstore.Tx) error {
		res, err := tx.ExecContext(context.Background(), `DELETE FROM connections`)
		if err != nil {
			return err
		}
		deleted, err = res.RowsAffected()
		return err
	})
	if err == nil && deleted != 0 {
		t.Errorf("the runtime role deleted %d live connections", deleted)
	}
	if b := h.must(http.StatusOK, "GET", "/api/integrations", a.reader, nil).Body; !strings.Contains(string(b), `"name":"x"`) {
		t.Errorf("the connection is gone: %s", b)
	}
}

func sameJSON(t *testing.T, a, b json.RawMessage) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatal(err)
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return string(xa) == string(ya)
}

// TestPatch_400_NullOrWrongKind_NamesTheMemberAndChangesNothing: a merge patch's null would remove
// a member every connection has: 400 naming it, the version unchanged; a value of the wrong JSON
// kind is invalid-json naming it.
func TestPatch_400_NullOrWrongKind_NamesTheMemberAndChangesNothing(t *testing.T) {
	h := newHarness(t)
	a := h.tenant()
	c := h.create(a, bearerBody("crm", "https://api.example.com", "tok-patch-null"))
	for _, tc := range []struct {
		body        string
		code, field string
	}{
		{`{"name":null}`, "invalid-input", "name"},
		{`{"enabled":null}`, "invalid-input", "enabled"},
		{`{"settings":null}`, "invalid-input", "settings"},
		{`{"name":5}`, "invalid-json", "name"},
		{`{"enabled":"yes"}`, "invalid-json", "enabled"},
	} {
		var body map[string]any
		if err := json.Unmarshal([]byte(tc.body), &body); err != nil {
			t.Fatal(err)
		}
		r := h.do("PATCH", "/api/integrations/"+c.ID, a.admin, body)
		if r.Code != http.StatusBadRequest || r.ProblemCode(t) != tc.code || !strings.Contains(string(r.Body), `"`+tc.field+`"`) {
			t.Errorf("%s: %d %s", tc.body, r.Code, r.Body)
		}
	}
	got := decode[connectionJSON](t, h.must(http.StatusOK, "GET", "/api/integrations/"+c.ID, a.admin, nil).Body)
	if got.Version != c.Version || got.Name != "crm" {
		t.Errorf("after the refused patches: %+v", got)
	}
}
