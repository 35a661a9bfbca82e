package authz

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	"spine/shared/sqlstore"
)

func TestCheckRedirectURI_HTTPSOrLoopbackWithoutFragment(t *testing.T) {
	for uri, ok := range map[string]bool{
		"https://app.example/cb":           true,
		"https://app.example:8443/cb?x=1":  true,
		"http://127.0.0.1:8765/cb":         true,
		"http://[::1]/cb":                  true,
		"http://localhost:3000/cb":         true,
		"http://app.example/cb":            false,
		"http://127.0.0.1.evil.example/cb": false,
		"https://app.example/cb#frag":      false,
		"https://app.example/cb#":          false,
		"/cb":                              false,
		"app.example/cb":                   false,
		"https:///cb":                      false,
		"https://user:pw@app.example/cb":   false,
		"javascript:alert(1)":              false,
		"com.example.app:/cb":              false,
		"https://app.example/c b":          false,
		"https://*.app.example/cb":         false,
		"https://app*.example/cb":          false,
		"https://*/cb":                     false,
		"http://127.0.0.*/cb":              false,
		"https://@app.example/cb":          false,
		"https://app_x.example/cb":         false,
		"https://app..example/cb":          false,
		"https://app.example./cb":          false,
		"https://-app.example/cb":          false,
		"https://[fe80::1%25en0]/cb":       false,
		"https://xn--bcher-kva.example/cb": true,
		"https://203.0.113.7/cb":           true,
		"https://App.Example/cb":           true,
		"https://app.example:99999/cb":     false,
		"https://app.example:/cb":          false,
		"https://app.example:0/cb":         false,
		"https://app.example:080/cb":       false,
		"https://app.example:65535/cb":     true,
		"https://0x7f.1/cb":                false,
		"https://127.1/cb":                 false,
		"https://2130706433/cb":            false,
		"":                                 false,
		"https://app.example/" + strings.Repeat("a", maxURILength): false,
	} {
		if err := checkRedirectURI(uri); (err == nil) != ok {
			t.Errorf("checkRedirectURI(%q) = %v, want ok=%v", uri, err, ok)
		}
	}
}

func TestScopeCatalog_SortedWithOIDCAndClientManage(t *testing.T) {
	if !slices.IsSorted(scopeCatalog) || len(slices.Compact(slices.Clone(scopeCatalog))) != len(scopeCatalog) {
		t.Fatalf("catalog not sorted or has duplicates: %v", scopeCatalog)
	}
	for _, s := range []string{"openid", "profile", "email", "offline_access", ScopeClientManage} {
		if _, err := ParseScope(s); err != nil {
			t.Errorf("ParseScope(%q): %v", s, err)
		}
	}
	for _, s := range []string{"", "OPENID", "user.read ", "admin"} {
		if _, err := ParseScope(s); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("ParseScope(%q) = %v", s, err)
		}
	}
}

func TestRefreshToken_FormatCarriesTheTenantAndParsesStrictly(t *testing.T) {
	for _, tenant := range []string{newTenant(), PlatformTenant} {
		v, hash := newRefreshToken(tenant)
		if !strings.HasPrefix(v, "rt1.") || len(v) != refreshTokenLen || !bytes.Equal(hash, hashOf(v)) {
			t.Fatalf("value %q", v)
		}
		got, h2, err := parseRefreshToken(v)
		if err != nil || got != tenant || !bytes.Equal(h2, hash) {
			t.Fatalf("parse(%q) = %q %x %v", v, got, h2, err)
		}
		for _, bad := range []string{v[:len(v)-1], v + "A", "rt2." + v[4:], strings.Replace(v, "rt1.", "", 1), v[:10] + "=" + v[11:]} {
			if _, _, err := parseRefreshToken(bad); !errors.Is(err, ErrRefreshTokenNotFound) {
				t.Errorf("parse(%q) = %v", bad, err)
			}
		}
		if sc, err := scopeOf(tenant); err != nil || sc.Platform != (tenant == PlatformTenant) {
			t.Errorf("scopeOf(%s) = %+v %v", tenant, sc, err)
		}
	}
	if _, err := scopeOf("nope"); !errors.Is(err, ErrInvalidTenant) {
		t.Errorf("scopeOf(nope) = %v", err)
	}
}

func TestClientSecret_FormatAndConstantTimeMatch(t *testing.T) {
	s, hash := newClientSecret()
	if !strings.HasPrefix(s, "cs1.") || len(s) != 4+43 || !secretMatches(s, hash) {
		t.Fatalf("secret %q", s)
	}
	if secretMatches(s[:len(s)-1], hash) || secretMatches(s, unmatchableHash) || secretMatches("", hash) {
		t.Fatal("a wrong secret matched")
	}
}

func TestClientValidate_Rules(t *testing.T) {
	now := sqlstore.Now()
	base := func(tenant string, typ ClientType) Client { return clientFixture(tenant, typ, now) }
	ok := []Client{base(newTenant(), ClientPublic), base(newTenant(), ClientConfidential), base(PlatformTenant, ClientConfidential)}
	for _, c := range ok {
		if err := c.validate(); err != nil {
			t.Errorf("%+v: %v", c, err)
		}
	}
	cc := base(newTenant(), ClientConfidential)
	cc.GrantTypes, cc.RedirectURIs, cc.Scopes = []GrantType{GrantClientCredentials}, nil, []Scope{"tenant.read"}
	if err := cc.validate(); err != nil || cc.RedirectURIs == nil {
		t.Errorf("a client_credentials client: %v", err)
	}
	dup := base(newTenant(), ClientPublic)
	dup.Scopes = []Scope{"openid", "offline_access", "openid"}
	dup.RedirectURIs = []string{"https://b.example/cb", "https://a.example/cb", "https://b.example/cb"}
	if err := dup.validate(); err != nil || !slices.Equal(dup.Scopes, []Scope{"offline_access", "openid"}) ||
		!slices.Equal(dup.RedirectURIs, []string{"https://b.example/cb", "https://a.example/cb"}) {
		t.Errorf("normalized %v %v %v", dup.Scopes, dup.RedirectURIs, err)
	}
	pa := base(newTenant(), ClientConfidential)
	pa.PlatformAdmin = true
	if err := pa.validate(); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("platformAdmin on a tenant client: %v", err)
	}
	pp := base(PlatformTenant, ClientPublic)
	pp.PlatformAdmin = true
	if err := pp.validate(); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("platformAdmin on a public client: %v", err)
	}
}
