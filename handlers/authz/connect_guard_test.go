package authz

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"spine/shared/ids"
)

// The mux's checks before op (connect_guard.go) and the OAuth error shape of the edge's refusals,
// driven over HTTP against the provider as the binary mounts it.

// captureDefaultLog sends slog.Default() — where op writes its own lines ("auth request") — to a
// buffer until the test ends.
func captureDefaultLog(t *testing.T) *strings.Builder {
	t.Helper()
	var b strings.Builder
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&lockedWriter{w: &b}, &slog.HandlerOptions{Level: slog.LevelDebug})))
	t.Cleanup(func() { slog.SetDefault(prev) })
	return &b
}

// storedAuthRequestHolds reports whether an auth request in Redis holds marker.
func (e *oidcEnv) storedAuthRequestHolds(marker string) bool {
	e.t.Helper()
	ctx := context.Background()
	rdb := e.p.state.rdb
	iter := rdb.Scan(ctx, 0, authRequestKey("*"), 1000).Iterator()
	for iter.Next(ctx) {
		v, err := rdb.Get(ctx, iter.Val()).Result()
		if err == nil && strings.Contains(v, marker) {
			return true
		}
	}
	if err := iter.Err(); err != nil {
		e.t.Fatal(err)
	}
	return false
}

// wantErrorPage checks an HTML error page naming code and showing none of leaks.
func wantErrorPage(t *testing.T, what string, r reply, status int, code string, leaks ...string) {
	t.Helper()
	body := string(r.body)
	if r.code != status || !strings.HasPrefix(r.hdr.Get("Content-Type"), "text/html") || !strings.Contains(body, "("+code+")") ||
		r.hdr.Get("X-Content-Type-Options") != "nosniff" || !strings.Contains(r.hdr.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Errorf("%s: %d %v %.300s, want a %d page naming %s", what, r.code, r.hdr, body, status, code)
	}
	for _, l := range append(leaks, "ErrorType=", "Parent=") {
		if strings.Contains(body, l) {
			t.Errorf("%s: the page shows %q: %.400s", what, l, body)
		}
	}
}

func TestAuthorize_400_OversizedParameters(t *testing.T) {
	e := newOIDC(t)
	c := e.publicClient(newTenant())
	_, challenge := pkce()
	marker := "oversized-" + ids.New()[24:] + "-" // unique: Redis keeps earlier runs' requests
	big := func(n int) string { return marker + strings.Repeat("x", n-len(marker)) }
	for name, edit := range map[string]func(url.Values){
		"state over 1 KiB":          func(v url.Values) { v.Set("state", big(1025)) },
		"nonce over 1 KiB":          func(v url.Values) { v.Set("nonce", big(1025)) },
		"scope over 1 KiB":          func(v url.Values) { v.Set("scope", "openid "+big(1025)) },
		"login_hint over 1 KiB":     func(v url.Values) { v.Set("login_hint", big(1025)) },
		"code_challenge over 128":   func(v url.Values) { v.Set("code_challenge", big(129)) },
		"redirect_uri over 2000":    func(v url.Values) { v.Set("redirect_uri", "http://127.0.0.1/cb?"+big(2000)) },
		"another parameter over 2K": func(v url.Values) { v.Set("claims", big(2049)) },
		"the whole query over 8K": func(v url.Values) {
			for _, p := range []string{"a", "b", "c", "d", "e"} {
				v.Set(p, big(1900))
			}
		},
		"state given twice": func(v url.Values) { v.Add("state", marker+"second") },
	} {
		b := e.browser()
		params := codeParams(c, "openid user.read", challenge)
		edit(params)
		r := b.get(e.issuer + "/authorize?" + params.Encode())
		wantErrorPage(t, name, r, http.StatusBadRequest, "invalid_request", marker)
		if r.hdr.Get("Set-Cookie") != "" {
			t.Errorf("%s: a refused request set a cookie: %v", name, r.hdr.Values("Set-Cookie"))
		}
	}
	// A form POST over 8 KiB: 413, as a page.
	form := codeParams(c, "openid user.read", challenge)
	form.Set("response_type", "code")
	form.Set("state", big(1000))
	for _, p := range []string{"a", "b", "c", "d", "e", "f", "g", "h", "i"} {
		form.Set(p, big(1000))
	}
	wantErrorPage(t, "a form over 8 KiB", e.browser().post("/authorize", form), http.StatusRequestEntityTooLarge, "invalid_request", marker)
	if e.storedAuthRequestHolds(marker) {
		t.Fatal("a refused request was stored in Redis")
	}
	// At the bounds the request goes on to the sign-in page, and is stored.
	params := codeParams(c, "openid user.read", challenge)
	atBound := marker + "at-bound-" + strings.Repeat("y", 1024-len(marker)-len("at-bound-"))
	params.Set("state", atBound)
	params.Set("nonce", atBound)
	if r := e.browser().authorize(params); r.code != http.StatusOK || !strings.Contains(string(r.body), `name="password"`) {
		t.Fatalf("state and nonce of 1024 bytes: %d %.300s", r.code, r.body)
	}
	if !e.storedAuthRequestHolds(atBound) {
		t.Fatal("the accepted request is not in Redis (the check above proves nothing)")
	}
}

func TestToken_400_OversizedScope(t *testing.T) {
	e := newOIDC(t)
	c, secret := e.ccClient(newTenant(), "tenant.read")
	const marker = "scope-marker-"
	for _, tc := range []struct {
		name   string
		scope  string
		status int
	}{
		{"scope over 1 KiB", "tenant.read " + marker + strings.Repeat("s", 4000), http.StatusBadRequest},
		{"a 100 KB scope", "tenant.read " + marker + strings.Repeat("s", 100_000), http.StatusRequestEntityTooLarge},
	} {
		r := e.post("/token", url.Values{"grant_type": {"client_credentials"}, "scope": {tc.scope}}, string(c.ID), secret)
		if r.code != tc.status || r.json(t)["error"] != "invalid_request" || len(r.body) > 512 || strings.Contains(string(r.body), marker) {
			t.Errorf("%s: %d %.300s", tc.name, r.code, r.body)
		}
	}
	if strings.Contains(e.logs.String(), marker) {
		t.Errorf("the oversized scope reached a log line: %.500s", e.logs.String())
	}
	// Within the bound, an unknown scope is still op's invalid_scope, and a known one a token.
	if r := e.clientCredentials(c, secret, "tenant.read", marker); r.code != http.StatusBadRequest || r.json(t)["error"] != "invalid_scope" {
		t.Errorf("unknown scope: %d %s", r.code, r.body)
	}
	if r := e.clientCredentials(c, secret, "tenant.read"); r.code != http.StatusOK {
		t.Fatalf("a valid request: %d %s", r.code, r.body)
	}
}

func TestToken_400_TwoClientAuthenticationMethods(t *testing.T) {
	e := newOIDC(t)
	tenant := newTenant()
	c, secret := e.ccClient(tenant, "tenant.read")
	other, otherSecret := e.ccClient(tenant, "tenant.read")
	cc := func() url.Values { return url.Values{"grant_type": {"client_credentials"}} }
	with := func(v url.Values, kv ...string) url.Values {
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}
	for _, tc := range []struct {
		name               string
		form               url.Values
		basicID, basicPass string
	}{
		{"Basic and a form client_secret", with(cc(), "client_id", string(c.ID), "client_secret", secret), string(c.ID), secret},
		{"Basic and a form client_secret alone", with(cc(), "client_secret", secret), string(c.ID), secret},
		{"Basic and another form client_id", with(cc(), "client_id", string(other.ID)), string(c.ID), secret},
		{"Basic of one client, form secret of another", with(cc(), "client_id", string(other.ID), "client_secret", otherSecret), string(c.ID), secret},
		{"Basic and a client_assertion", with(cc(), "client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
			"client_assertion", "eyJhbGciOiJub25lIn0.e30."), string(c.ID), secret},
	} {
		r := e.post("/token", tc.form, tc.basicID, tc.basicPass)
		if r.code != http.StatusBadRequest || r.json(t)["error"] != "invalid_request" || r.json(t)["access_token"] != nil {
			t.Errorf("%s: %d %s", tc.name, r.code, r.body)
		}
	}
	// The secret in the URL: refused too (RFC 6749 §2.3.1).
	req, _ := http.NewRequest(http.MethodPost, e.issuer+"/token?"+url.Values{"client_secret": {secret}}.Encode(),
		strings.NewReader(with(cc(), "client_id", string(c.ID)).Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if r := do(t, http.DefaultClient, req); r.code != http.StatusBadRequest || r.json(t)["error"] != "invalid_request" {
		t.Errorf("client_secret in the query: %d %s", r.code, r.body)
	}
	// One method: Basic (with the same client_id repeated in the form, which names no second
	// method), or the form alone.
	for name, r := range map[string]reply{
		"Basic":                      e.post("/token", cc(), string(c.ID), secret),
		"Basic and the same form id": e.post("/token", with(cc(), "client_id", string(c.ID)), string(c.ID), secret),
		"form":                       e.post("/token", with(cc(), "client_id", string(c.ID), "client_secret", secret), "", ""),
	} {
		if r.code != http.StatusOK || r.json(t)["access_token"] == nil {
			t.Errorf("%s: %d %s", name, r.code, r.body)
		}
	}
}

func TestAuthorize_400_ClientMistakesAreNotServerErrors(t *testing.T) {
	opLog := captureDefaultLog(t)
	e := newOIDC(t)
	c := e.publicClient(newTenant())
	_, challenge := pkce()
	good := codeParams(c, "openid", challenge)
	good.Set("response_type", "code")
	without := func(k string) string { v := url.Values{}; copyValues(v, good); v.Del(k); return v.Encode() }
	for name, path := range map[string]string{
		"no parameters":             "/authorize",
		"no client_id":              "/authorize?" + without("client_id"),
		"no redirect_uri":           "/authorize?" + without("redirect_uri"),
		"a bad escape":              "/authorize?" + good.Encode() + "&login_hint=%zz",
		"max_age not a number":      "/authorize?" + good.Encode() + "&max_age=soon",
		"callback without id":       "/authorize/callback",
		"callback with a bad id":    "/authorize/callback?id=%zz",
		"callback with an empty id": "/authorize/callback?id=",
	} {
		r := e.browser().get(e.issuer + path)
		wantErrorPage(t, name, r, http.StatusBadRequest, "invalid_request")
	}
	for what, logs := range map[string]string{"op's log": opLog.String(), "the provider's log": e.logs.String()} {
		if strings.Contains(logs, "level=ERROR") || strings.Contains(logs, "server_error") {
			t.Errorf("%s has an error line for a client's mistake:\n%s", what, logs)
		}
	}
	if n := strings.Count(e.logs.String(), "level=WARN msg=\"authz: authorization request refused\""); n != 8 {
		t.Errorf("%d WARN lines for 8 refused requests:\n%s", n, e.logs.String())
	}
	if !strings.Contains(e.logs.String(), "invalid_request") {
		t.Errorf("the WARN lines do not say invalid_request:\n%s", e.logs.String())
	}
}

func copyValues(dst, src url.Values) {
	for k, vs := range src {
		dst[k] = append([]string(nil), vs...)
	}
}

func TestAuthorize_400_ErrorPageLeaksNoInternals(t *testing.T) {
	e := newOIDC(t)
	c := e.publicClient(newTenant())
	_, challenge := pkce()
	unknown := codeParams(c, "openid", challenge)
	unknown.Set("response_type", "code")
	unknown.Set("client_id", ids.New()) // no such client: op cannot redirect
	foreign := codeParams(c, "openid", challenge)
	foreign.Set("response_type", "code")
	foreign.Set("redirect_uri", "https://evil.example/cb") // not registered: op cannot redirect
	for name, path := range map[string]string{
		"unknown client":          "/authorize?" + unknown.Encode(),
		"unregistered redirect":   "/authorize?" + foreign.Encode(),
		"unknown sign-in request": "/authorize/callback?id=" + ids.New(),
		"max_age not a number":    "/authorize?" + foreign.Encode() + "&max_age=soon",
		"a bad escape":            "/authorize/callback?id=%zz",
	} {
		r := e.browser().get(e.issuer + path)
		wantErrorPage(t, name, r, http.StatusBadRequest, "invalid_request",
			"schema", "strconv", "invalid URL escape", "%zz", "redis", "sql", "not found in")
	}
	// The page of an error op describes keeps op's description (not its parent).
	r := e.browser().get(e.issuer + "/authorize/callback?id=" + ids.New())
	if !strings.Contains(string(r.body), "unknown or expired") {
		t.Errorf("the description is lost: %s", r.body)
	}
	// Errors that can go back to the client still do (op's redirect with error=...).
	bad := codeParams(c, "openid", challenge)
	bad.Set("response_type", "token")
	q := redirected(t, e.browser().authorize(bad), c.RedirectURIs[0])
	if q.Get("error") == "" {
		t.Errorf("redirected error %v", q)
	}
}

func TestToken_OAuthErrorShapeForEdgeFailures(t *testing.T) {
	e := newOIDC(t)
	c, secret := e.ccClient(newTenant(), "tenant.read")
	send := func(path, rawQuery string, body io.Reader, size int64) reply {
		t.Helper()
		u := e.issuer + path
		if rawQuery != "" {
			u += "?" + rawQuery
		}
		req, _ := http.NewRequest(http.MethodPost, u, body)
		req.ContentLength = size
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(string(c.ID), secret)
		return do(t, http.DefaultClient, req)
	}
	form := "grant_type=client_credentials&token=x&pad="
	overEdge := strings.Repeat("p", 65<<10) // over the harness's 64 KiB body limit: the edge's 413
	overForm := strings.Repeat("p", 10<<10) // under it, over the form bound: the guard's 413
	for _, path := range []string{"/token", "/introspect", "/revoke"} {
		for name, tc := range map[string]struct {
			r      reply
			status int
		}{
			"body over the edge's limit":     {send(path, "", strings.NewReader(form+overEdge), int64(len(form+overEdge))), http.StatusRequestEntityTooLarge},
			"control character in the query": {send(path, "x=%01", strings.NewReader(form), int64(len(form))), http.StatusBadRequest},
		} {
			r := tc.r
			if r.code != tc.status || r.hdr.Get("Content-Type") != "application/json" || r.json(t)["error"] != "invalid_request" ||
				r.json(t)["code"] != nil || r.json(t)["type"] != nil {
				t.Errorf("%s %s: %d %q %s", path, name, r.code, r.hdr.Get("Content-Type"), r.body)
			}
		}
	}
	// /token's own bound: a form over 8 KiB, with or without a Content-Length.
	for name, size := range map[string]int64{"with Content-Length": int64(len(form + overForm)), "chunked": -1} {
		r := send("/token", "", io.MultiReader(strings.NewReader(form), strings.NewReader(overForm)), size)
		if r.code != http.StatusRequestEntityTooLarge || r.hdr.Get("Content-Type") != "application/json" || r.json(t)["error"] != "invalid_request" {
			t.Errorf("token form over 8 KiB %s: %d %q %s", name, r.code, r.hdr.Get("Content-Type"), r.body)
		}
	}
	// A cross-origin request's form is read by CORS first (to find the client), under the edge's
	// limit only: the guard still bounds it.
	req, _ := http.NewRequest(http.MethodPost, e.issuer+"/token", io.MultiReader(strings.NewReader(form), strings.NewReader(overForm)))
	req.ContentLength = -1
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://app.example")
	req.SetBasicAuth(string(c.ID), secret)
	if r := do(t, http.DefaultClient, req); r.code != http.StatusRequestEntityTooLarge || r.json(t)["error"] != "invalid_request" {
		t.Errorf("a cross-origin form over 8 KiB: %d %s", r.code, r.body)
	}
	// Discovery's edge failures too (the whole family is OAuth-shaped).
	if r := e.get("/.well-known/openid-configuration?x=%01"); r.code != http.StatusBadRequest || r.json(t)["error"] != "invalid_request" {
		t.Errorf("discovery: %d %s", r.code, r.body)
	}
	// The rest of the API keeps problem+json: not this test's echo, see shared/problem's test.
	if r := e.clientCredentials(c, secret); r.code != http.StatusOK {
		t.Fatalf("a valid request: %d %s", r.code, r.body)
	}
}
