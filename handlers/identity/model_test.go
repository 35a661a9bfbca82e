package identity

import (
	"strings"
	"testing"

	"spine/shared/ids"
	"spine/shared/tenancy"
)

func TestInvitationToken_RoundTripAndConstantTimeMatch(t *testing.T) {
	tenant, inv := tenancy.NewTenantID(), InvitationID(ids.New())
	tok, hash := newInvitationToken(tenant, inv)
	if len(tok) != 86 || strings.ContainsAny(tok, "+/=") {
		t.Fatalf("token %q", tok)
	}
	p, err := parseInvitationToken(tok)
	if err != nil || p.tenant != tenant || p.invitation != inv || !p.matches(hash) {
		t.Fatalf("%+v %v", p, err)
	}
	other, otherHash := newInvitationToken(tenant, inv)
	if other == tok || p.matches(otherHash) {
		t.Fatal("two tokens of one invitation share their secret")
	}
	for _, bad := range []string{"", "x", tok[:85], tok + "A", strings.Repeat("A", 86), tok[:85] + "!"} {
		if _, err := parseInvitationToken(bad); err != ErrInvitationNotFound {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestPassword_Argon2idPHC(t *testing.T) {
	h := hashPassword("correct horse battery staple")
	if !strings.HasPrefix(h, "$argon2id$v=19$m=65536,t=3,p=4$") || strings.Count(h, "$") != 5 {
		t.Fatalf("hash %q", h)
	}
	if h == hashPassword("correct horse battery staple") {
		t.Fatal("no salt")
	}
	if !verifyPassword(h, "correct horse battery staple") || verifyPassword(h, "correct horse battery stapler") {
		t.Fatal("verify")
	}
	for _, bad := range []string{"", "$argon2i$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA", "$argon2id$v=19$m=0,t=3,p=4$c2FsdA$aGFzaA", "$argon2id$v=19$garbage"} {
		if verifyPassword(bad, "x") {
			t.Errorf("%q verified", bad)
		}
	}
	for pw, ok := range map[string]bool{"short": false, "12 chars ok!": true, "élan vital ü": true, strings.Repeat("x", 257): false, "\xff\xfe invalid utf8": false} {
		if err := checkPassword(pw); (err == nil) != ok {
			t.Errorf("%q: %v", pw, err)
		}
	}
}

func TestModel_ParsingAtTheEdge(t *testing.T) {
	if _, err := ParseUserID("0190C5D6-7A44-7B36-9C1E-1C0C3E2D4A5B"); err == nil {
		t.Error("an upper-case id was accepted (one id, one spelling)")
	}
	if _, err := ParseUserID("00000000-0000-0000-0000-000000000000"); err == nil {
		t.Error("the nil UUID was accepted")
	}
	if e, err := ParseEmail("Ana@Example.com"); err != nil || e.Key() != "ana@example.com" || string(e) != "Ana@Example.com" {
		t.Errorf("%q %v", e, err)
	}
	for _, c := range []string{"tenant-admin", "a1", "x-y-z"} {
		if _, err := ParseRoleCode(c); err != nil {
			t.Errorf("%s: %v", c, err)
		}
	}
	for _, c := range []string{"A", "1a", "a", "a_b", strings.Repeat("a", 64)} {
		if _, err := ParseRoleCode(c); err == nil {
			t.Errorf("%s accepted", c)
		}
	}
	for _, c := range []string{"user.read", "audit.write", "a.b.c"} {
		if _, err := ParsePermissionCode(c); err != nil {
			t.Errorf("%s: %v", c, err)
		}
	}
	for _, c := range []string{"user", "User.read", "user.", ".read"} {
		if _, err := ParsePermissionCode(c); err == nil {
			t.Errorf("%s accepted", c)
		}
	}
}

func newTenant() string { return tenancy.NewTenantID().String() }

func mustTenant(s string) tenancy.TenantID { return tenancy.MustParseTenantID(s) }
