package identity

import (
	"errors"
	"net/http"
	"testing"

	"spine/shared/authn"
	"spine/shared/tenancy"
)

// The sign-in question as the authorization server asks it (authn.Users): the password of an
// Active user signs it in and its profile answers; every user-caused failure is the one generic
// sentinel; an invited or disabled user, an unknown id or another tenant has no profile.
func TestUsers_SignInAndProfile_FailuresAreGeneric(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	f := h.provisioned()
	other := h.provisioned()
	inv := h.invite(f, "erin@example.com", f.memberRole)
	users := h.api.Users()
	ctx := t.Context()
	const pw = "correct horse battery staple"

	// Invited, not yet accepted: no sign-in, no profile.
	if _, err := users.Authenticate(ctx, f.id, "erin@example.com", pw); !errors.Is(err, authn.ErrInvalidCredentials) {
		t.Fatalf("invited sign-in: %v", err)
	}
	if _, err := users.Profile(ctx, f.id, inv.UserID); !errors.Is(err, authn.ErrUnknownUser) {
		t.Fatalf("invited profile: %v", err)
	}
	h.accept(inv.Token, map[string]any{"password": pw, "displayName": "Erin"})

	id, err := users.Authenticate(ctx, f.id, "Erin@example.com", pw)
	if err != nil || id != inv.UserID {
		t.Fatalf("sign-in: %q %v", id, err)
	}
	p, err := users.Profile(ctx, f.id, id)
	if err != nil || p != (authn.Profile{UserID: id, Email: "erin@example.com", Name: "Erin"}) {
		t.Fatalf("profile: %+v %v", p, err)
	}
	for _, c := range []struct {
		tenant    tenancy.TenantID
		email, pw string
	}{
		{f.id, "erin@example.com", "wrong horse battery staple"},
		{f.id, "nobody@example.com", pw},
		{f.id, "not an address", pw},
		{other.id, "erin@example.com", pw},
	} {
		if _, err := users.Authenticate(ctx, c.tenant, c.email, c.pw); !errors.Is(err, authn.ErrInvalidCredentials) {
			t.Errorf("%+v: %v", c, err)
		}
	}
	for _, c := range []struct {
		tenant tenancy.TenantID
		id     string
	}{{other.id, id}, {f.id, "not-an-id"}, {f.id, "0190a2b4-0000-7000-8000-000000000000"}} {
		if _, err := users.Profile(ctx, c.tenant, c.id); !errors.Is(err, authn.ErrUnknownUser) {
			t.Errorf("profile %+v: %v", c, err)
		}
	}

	// Disabled: neither.
	h.must(http.StatusOK, "POST", "/api/users/"+id+"/disable", f.admin, map[string]string{"reason": "left"})
	if _, err := users.Authenticate(ctx, f.id, "erin@example.com", pw); !errors.Is(err, authn.ErrInvalidCredentials) {
		t.Fatalf("disabled sign-in: %v", err)
	}
	if _, err := users.Profile(ctx, f.id, id); !errors.Is(err, authn.ErrUnknownUser) {
		t.Fatalf("disabled profile: %v", err)
	}
}
