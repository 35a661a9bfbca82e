package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/labstack/echo/v4"

	"spine/shared/problem"
)

type problemBody struct {
	Type   string `json:"type"`
	Status int    `json:"status"`
	Code   string `json:"code"`
	Detail string `json:"detail"`
}

func newApp(t *testing.T, v *Verifier) *echo.Echo {
	t.Helper()
	e := echo.New()
	e.HTTPErrorHandler = (&problem.Handler{}).ServeError
	me := func(c echo.Context) error {
		p, ok := FromContext(c.Request().Context())
		if !ok {
			return c.String(http.StatusInternalServerError, "no principal")
		}
		return c.JSON(http.StatusOK, map[string]any{"sub": p.Subject, "tenant": p.TenantID, "scopes": p.Scopes, "admin": p.PlatformAdmin})
	}
	e.GET("/me", me, Middleware(v))
	e.POST("/tenants", me, Middleware(v), RequireScope("tenant.read", "tenant.manage"))
	e.GET("/unprotected-scope", me, RequireScope("tenant.read"))
	return e
}

func do(e *echo.Echo, method, path string, auth ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, nil)
	for _, a := range auth {
		req.Header.Add("Authorization", a)
	}
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req)
	return rec
}

func decodeProblem(t *testing.T, rec *httptest.ResponseRecorder) problemBody {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, problem.ContentType) {
		t.Fatalf("Content-Type = %q, body %s", ct, rec.Body)
	}
	var pb problemBody
	if err := json.Unmarshal(rec.Body.Bytes(), &pb); err != nil {
		t.Fatal(err)
	}
	return pb
}

func TestMiddleware(t *testing.T) {
	env := newEnv(t, 0)
	app := newApp(t, env.v)
	now := time.Now()
	valid := env.es256(t, claims(now))
	readOnly := claims(now)
	readOnly["scope"] = "tenant.read"
	readOnlyTok := env.es256(t, readOnly)
	admin := claims(now)
	delete(admin, "tenant_id")
	admin["platform_admin"] = true
	delete(admin, "scope")
	adminTok := env.es256(t, admin)
	expired := claims(now)
	expired["exp"] = now.Add(-time.Hour).Unix()
	expired["iat"] = now.Add(-2 * time.Hour).Unix()
	expiredTok := env.es256(t, expired)

	const missingChallenge = `Bearer realm="spine"`
	const invalidChallenge = `Bearer realm="spine", error="invalid_token"`

	cases := []struct {
		name      string
		method    string
		path      string
		auth      []string
		status    int
		code      string
		challenge string
		detail    string
	}{
		{name: "no header", method: "GET", path: "/me", status: 401, code: CodeUnauthorized, challenge: missingChallenge},
		{name: "other scheme", method: "GET", path: "/me", auth: []string{"Basic dXNlcjpwYXNz"}, status: 401, code: CodeUnauthorized, challenge: missingChallenge},
		{name: "empty bearer", method: "GET", path: "/me", auth: []string{"Bearer "}, status: 401, code: CodeUnauthorized, challenge: missingChallenge},
		{name: "garbage token", method: "GET", path: "/me", auth: []string{"Bearer abc.def.ghi"}, status: 401, code: CodeInvalidToken, challenge: invalidChallenge},
		{name: "expired token", method: "GET", path: "/me", auth: []string{"Bearer " + expiredTok}, status: 401, code: CodeInvalidToken, challenge: invalidChallenge, detail: "expired"},
		{name: "two authorization headers", method: "GET", path: "/me", auth: []string{"Bearer " + valid, "Bearer " + valid}, status: 401, code: CodeInvalidToken, challenge: invalidChallenge},
		{name: "valid", method: "GET", path: "/me", auth: []string{"Bearer " + valid}, status: 200},
		{name: "scheme is case-insensitive", method: "GET", path: "/me", auth: []string{"bEARER   " + valid}, status: 200},
		{name: "all scopes held", method: "POST", path: "/tenants", auth: []string{"Bearer " + valid}, status: 200},
		{name: "one scope missing", method: "POST", path: "/tenants", auth: []string{"Bearer " + readOnlyTok}, status: 403, code: CodeInsufficientScope,
			challenge: `Bearer error="insufficient_scope", scope="tenant.read tenant.manage"`},
		{name: "platform admin still needs scopes", method: "POST", path: "/tenants", auth: []string{"Bearer " + adminTok}, status: 403, code: CodeInsufficientScope,
			challenge: `Bearer error="insufficient_scope", scope="tenant.read tenant.manage"`},
		{name: "scope check without authentication", method: "GET", path: "/unprotected-scope", status: 401, code: CodeUnauthorized, challenge: missingChallenge},
		{name: "invalid token before scope check", method: "POST", path: "/tenants", auth: []string{"Bearer x"}, status: 401, code: CodeInvalidToken, challenge: invalidChallenge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := do(app, tc.method, tc.path, tc.auth...)
			if rec.Code != tc.status {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, tc.status, rec.Body)
			}
			if got := rec.Header().Get("WWW-Authenticate"); got != tc.challenge {
				t.Fatalf("WWW-Authenticate = %q, want %q", got, tc.challenge)
			}
			if tc.status == 200 {
				var body map[string]any
				if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
					t.Fatal(err)
				}
				if body["sub"] != "user-1" || body["tenant"] != "tenant-1" {
					t.Fatalf("principal in handler = %v", body)
				}
				return
			}
			pb := decodeProblem(t, rec)
			if pb.Code != tc.code || pb.Status != tc.status || pb.Type != problem.TypeBase+tc.code {
				t.Fatalf("problem = %+v, want code %q", pb, tc.code)
			}
			if tc.detail != "" && !strings.Contains(pb.Detail, tc.detail) {
				t.Fatalf("detail = %q, want it to mention %q", pb.Detail, tc.detail)
			}
			for _, a := range tc.auth {
				if tok := strings.TrimSpace(a[strings.IndexByte(a, ' ')+1:]); len(tok) > 8 && strings.Contains(rec.Body.String(), tok) {
					t.Fatal("problem body echoes the token")
				}
			}
		})
	}
}

func TestMiddleware_PlatformAdminWithScopes(t *testing.T) {
	env := newEnv(t, 0)
	app := newApp(t, env.v)
	c := claims(time.Now())
	delete(c, "tenant_id")
	c["platform_admin"] = true
	rec := do(app, "POST", "/tenants", "Bearer "+sign(t, jwt.SigningMethodES256, env.signer.key, map[string]any{"kid": env.signer.kid}, c))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"admin":true`) {
		t.Fatalf("status %d body %s", rec.Code, rec.Body)
	}
}

func TestBearerToken(t *testing.T) {
	for in, want := range map[string]string{
		"Bearer abc":     "abc",
		"bearer abc":     "abc",
		"BEARER\tabc ":   "abc",
		"  Bearer  abc":  "abc",
		"Bearer":         "",
		"Bearer ":        "",
		"Bearerabc":      "",
		"Basic abc":      "",
		"":               "",
		"Bear abc":       "",
		"Bearer abc def": "abc def", // passed on whole; Verify rejects it as malformed
	} {
		if got := bearerToken(in); got != want {
			t.Errorf("bearerToken(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRequireScope_PanicsOnBadWiring(t *testing.T) {
	for name, scopes := range map[string][]string{"none": nil, "space": {"a b"}, "quote": {`a"`}, "empty": {""}} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			RequireScope(scopes...)
		})
	}
}

func TestProblemFor(t *testing.T) {
	if ProblemFor(nil) != nil || ProblemFor(echo.ErrNotFound) != nil {
		t.Fatal("ProblemFor must ignore other errors")
	}
	p := ProblemFor(invalid(ErrBadSignature, ""))
	if p.Status != 401 || p.Code != CodeInvalidToken || p.Unwrap() == nil {
		t.Fatalf("%+v", p)
	}
	// Usable as a problem.Mapper.
	h := &problem.Handler{Mappers: []problem.Mapper{ProblemFor}}
	if got := h.Resolve(ErrMissingToken); got.Code != CodeUnauthorized {
		t.Fatalf("resolved %+v", got)
	}
}

func TestContextRoundTrip(t *testing.T) {
	ctx := t.Context()
	if _, ok := FromContext(ctx); ok {
		t.Fatal("principal in empty context")
	}
	p := Principal{Subject: "s", TenantID: "t", Scopes: []string{"a"}}
	got, ok := FromContext(WithPrincipal(ctx, p))
	if !ok || !principalEqual(got, p) {
		t.Fatalf("%+v %v", got, ok)
	}
}

type addedKey struct{}

// Authenticate's hook sees the verified Principal and what it adds reaches the handler along with
// the Principal; a rejected token never reaches the hook.
func TestAuthenticate_HookAddsToTheContextOfVerifiedRequestsOnly(t *testing.T) {
	env := newEnv(t, 0)
	e := echo.New()
	e.HTTPErrorHandler = (&problem.Handler{}).ServeError
	calls := 0
	hook := func(ctx context.Context, p Principal) context.Context {
		calls++
		if q, ok := FromContext(ctx); !ok || q.Subject != p.Subject {
			t.Errorf("the hook's context lacks the Principal: %v %v", q, ok)
		}
		return context.WithValue(ctx, addedKey{}, "for "+p.Subject)
	}
	e.GET("/me", func(c echo.Context) error {
		p, _ := FromContext(c.Request().Context())
		added, _ := c.Request().Context().Value(addedKey{}).(string)
		return c.String(http.StatusOK, p.Subject+"|"+added)
	}, Authenticate(env.v, hook))
	tok := sign(t, jwt.SigningMethodES256, env.signer.key, map[string]any{"kid": env.signer.kid}, claims(time.Now()))
	rec := do(e, "GET", "/me", "Bearer "+tok)
	sub := claims(time.Now())["sub"]
	if rec.Code != http.StatusOK || rec.Body.String() != fmt.Sprintf("%v|for %v", sub, sub) {
		t.Fatalf("verified: %d %s", rec.Code, rec.Body)
	}
	if rec := do(e, "GET", "/me", "Bearer not-a-token"); rec.Code != http.StatusUnauthorized || calls != 1 {
		t.Fatalf("rejected token: %d, hook calls %d", rec.Code, calls)
	}
}
