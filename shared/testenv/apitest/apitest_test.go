package apitest

import (
	"context"
	"io"
	"net/http"
	"slices"
	"testing"

	"spine/shared/problem"
)

func TestTokens_MintedTokenPassesTheVerifier(t *testing.T) {
	tk := NewTokens(t)
	v := tk.Verifier(t)
	p, err := v.Verify(context.Background(), tk.Mint(t, "t-1", false, "a.read", "a.write"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Subject != "user-t-1" || p.TenantID != "t-1" || p.PlatformAdmin || !slices.Equal(p.Scopes, []string{"a.read", "a.write"}) {
		t.Fatalf("principal %+v", p)
	}
	admin, err := v.Verify(context.Background(), tk.Mint(t, "", true, "a.read"))
	if err != nil || !admin.PlatformAdmin || admin.TenantID != "" || admin.Subject != "user-" {
		t.Fatalf("admin principal %+v, %v", admin, err)
	}
	if _, err := tk.Verifier(t).Verify(context.Background(), NewTokens(t).Mint(t, "t-1", false)); err == nil {
		t.Fatal("a token signed by another key was accepted")
	}
}

// echoRequest answers with what it received: its method, path, headers and body.
var echoRequest = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	w.Header().Set("X-Method", r.Method)
	w.Header().Set("X-Path", r.URL.RequestURI())
	w.Header().Set("X-Content-Type", r.Header.Get("Content-Type"))
	w.Header().Set("X-Authorization", r.Header.Get("Authorization"))
	w.Header().Set("X-Custom", r.Header.Get("X-Custom"))
	w.WriteHeader(http.StatusTeapot)
	_, _ = w.Write(body)
})

func TestDo_SendsBodyTokenAndHeaders(t *testing.T) {
	for _, tc := range []struct {
		name       string
		body       any
		token      string
		headers    []string
		wantBody   string
		wantType   string
		wantAuth   string
		wantCustom string
	}{
		{"no body, no token", nil, "", nil, "", "", "", ""},
		{"string body as is", `{"a":1.50}`, "tok", nil, `{"a":1.50}`, "application/json", "Bearer tok", ""},
		{"value as JSON", map[string]any{"a": 1}, "", nil, `{"a":1}`, "application/json", "", ""},
		{"headers last", "x=1", "", []string{"Content-Type", "application/x-www-form-urlencoded", "X-Custom", "c"},
			"x=1", "application/x-www-form-urlencoded", "", "c"},
	} {
		r := Do(t, echoRequest, "PATCH", "/p?q=1", tc.token, tc.body, tc.headers...)
		if r.Code != http.StatusTeapot || string(r.Body) != tc.wantBody || r.Header.Get("X-Method") != "PATCH" ||
			r.Header.Get("X-Path") != "/p?q=1" || r.Header.Get("X-Content-Type") != tc.wantType ||
			r.Header.Get("X-Authorization") != tc.wantAuth || r.Header.Get("X-Custom") != tc.wantCustom {
			t.Errorf("%s: %d %s %v", tc.name, r.Code, r.Body, r.Header)
		}
	}
}

func TestResponse_JSONAndProblemCode(t *testing.T) {
	rec := Do(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		problem.Write(w, r, problem.New(http.StatusConflict, "slug-taken", "taken"))
	}), "GET", "/x", "", nil)
	if rec.Code != http.StatusConflict || rec.ProblemCode(t) != "slug-taken" || rec.JSON(t)["instance"] != "/x" {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
}
