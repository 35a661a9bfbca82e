package authz

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// sessionCookieOf is b's sign-in session cookie ("" when it has none).
func (b *browser) sessionCookieOf() string {
	u, _ := url.Parse(b.e.issuer + "/login")
	for _, ck := range b.c.Jar.Cookies(u) {
		if ck.Name == sessionCookie {
			return ck.Value
		}
	}
	return ""
}

// A user disabled while its browser holds a sign-in session gets nothing more through it: the next
// authorization shows the form (the session is deleted and its cookie cleared, so prompt=none is
// login_required), and a code issued through the session before is not redeemed.
func TestSignIn_DisabledUser_SessionNoLongerIssuesCodes(t *testing.T) {
	e := newOIDC(t)
	tenant := newTenant()
	c, secret := e.webClient(tenant, true)
	uid := e.users.add(tenant, "dis@example.com", "correct horse battery", "")
	b, code, verifier := e.signedInCode(c, "openid", "dis@example.com", "correct horse battery")
	if r := e.exchange(c, secret, code, verifier); r.code != http.StatusOK {
		t.Fatalf("exchange while active: %d %s", r.code, r.body)
	}
	q := redirected(t, b.authorize(codeParams(c, "openid", "")), c.RedirectURIs[0])
	pending := q.Get("code")
	if pending == "" {
		t.Fatalf("a code through the session: %v", q)
	}

	e.users.disable(uid)
	if r := b.authorize(codeParams(c, "openid", "")); r.code != http.StatusOK || !strings.Contains(string(r.body), `name="password"`) {
		t.Fatalf("a disabled user's session: %d %s", r.code, r.body)
	}
	if keys := e.p.state.rdb.Keys(context.Background(), "{t:"+tenant+"}:authz:session:*").Val(); len(keys) != 0 || b.sessionCookieOf() != "" {
		t.Fatalf("the session is left: keys %v, cookie %q", keys, b.sessionCookieOf())
	}
	v := codeParams(c, "openid", "")
	v.Set("prompt", "none")
	if q := redirected(t, b.authorize(v), c.RedirectURIs[0]); q.Get("error") != "login_required" {
		t.Fatalf("prompt=none after the session ended: %v", q)
	}
	if r := e.exchange(c, secret, pending, ""); r.code != http.StatusBadRequest || r.json(t)["error"] != "invalid_grant" {
		t.Fatalf("a code of the disabled user: %d %s", r.code, r.body)
	}
}

// Failed sign-ins are throttled, the same for an address that exists and one that does not: the
// fifth failure of one auth request answers 429 and deletes it (the client starts again); the
// tenth failure of one address (any case) within the window answers 429, and from then on that
// address is answered 429 with Retry-After without its password being checked, the right one
// included. Another address is not affected. Redis holds the address's SHA-256, not the address.
func TestSignIn_429_AfterRepeatedFailures(t *testing.T) {
	e := newOIDC(t)
	tenant := newTenant()
	c, _ := e.webClient(tenant, true)
	e.users.add(tenant, "ann@example.com", "correct horse battery", "")
	e.users.add(tenant, "bob@example.com", "correct horse battery", "")

	type step struct {
		code int
		body string
	}
	// run signs in as email: 5 failures on a first request, the same form once more, 5 failures
	// on a second request, the right password on a third; it returns every answer with the
	// request's own fields and the address taken out, the browser and the third request's page.
	run := func(email string) ([]step, *browser, reply) {
		b := e.browser()
		var steps []step
		add := func(r reply) {
			body := hiddenRE.ReplaceAllString(string(r.body), "")
			body = strings.ReplaceAll(strings.ReplaceAll(body, email, "EMAIL"), strings.ToUpper(email), "EMAIL")
			steps = append(steps, step{r.code, body})
		}
		page := b.authorize(codeParams(c, "openid", ""))
		for range 5 {
			add(b.signIn(page, email, "wrong horse battery", ""))
		}
		add(b.signIn(page, email, "correct horse battery", ""))
		page = b.authorize(codeParams(c, "openid", ""))
		for range 5 {
			add(b.signIn(page, strings.ToUpper(email), "wrong horse battery", ""))
		}
		page = b.authorize(codeParams(c, "openid", ""))
		before := e.users.authenticated()
		last := b.signIn(page, email, "correct horse battery", "")
		add(last)
		if e.users.authenticated() != before {
			t.Fatalf("%s: the password of a throttled address was checked", email)
		}
		if s, err := strconv.Atoi(last.hdr.Get("Retry-After")); err != nil || s <= 0 || s > 15*60 {
			t.Fatalf("%s: Retry-After %q", email, last.hdr.Get("Retry-After"))
		}
		return steps, b, page
	}
	known, b, page := run("ann@example.com")
	want := []int{401, 401, 401, 401, 429, 400, 401, 401, 401, 401, 429, 429}
	for i, s := range known {
		if s.code != want[i] {
			t.Fatalf("attempt %d: %d, want %d: %s", i+1, s.code, want[i], s.body)
		}
	}
	for i, msg := range map[int]string{4: msgThrottledRequest, 5: msgExpired, 10: msgThrottledRequest, 11: msgThrottled} {
		if !strings.Contains(known[i].body, msg) {
			t.Fatalf("attempt %d: %s", i+1, known[i].body)
		}
	}
	// Another address signs in on the same request.
	if q := redirected(t, b.signIn(page, "bob@example.com", "correct horse battery", ""), c.RedirectURIs[0]); q.Get("code") == "" {
		t.Fatalf("another address: %v", q)
	}
	// An address that does not exist: the same answers, step by step.
	unknown, _, _ := run("nobody@example.com")
	for i := range known {
		if known[i] != unknown[i] {
			t.Fatalf("attempt %d differs for an unknown address:\n%d %s\n%d %s", i+1, known[i].code, known[i].body, unknown[i].code, unknown[i].body)
		}
	}
	keys := e.p.state.rdb.Keys(context.Background(), "{t:"+tenant+"}:authz:signin-failures:*").Val()
	if len(keys) != 2 || strings.Contains(strings.Join(keys, " "), "example") {
		t.Fatalf("failure counters %v", keys)
	}
}

// /endsession without an id_token_hint of the session's user ends nothing: a bare link, a link
// naming the client and its post-logout URI, and another user's ID token all answer as usual
// (the redirect; the default one's page says the browser is still signed in), and the browser is
// still signed in (its session and cookie are kept).
func TestEndSession_WithoutHint_KeepsTheSession(t *testing.T) {
	e := newOIDC(t)
	tenant := newTenant()
	c, secret := e.webClient(tenant, true)
	e.users.add(tenant, "ken@example.com", "correct horse battery", "")
	e.users.add(tenant, "lea@example.com", "correct horse battery", "")
	b, code, verifier := e.signedInCode(c, "openid", "ken@example.com", "correct horse battery")
	kensToken := e.exchange(c, secret, code, verifier).json(t)["id_token"].(string)
	cookie := b.sessionCookieOf()
	_, code, verifier = e.signedInCode(c, "openid", "lea@example.com", "correct horse battery")
	leasToken := e.exchange(c, secret, code, verifier).json(t)["id_token"].(string)

	stillSignedIn := func(what string) {
		t.Helper()
		if q := redirected(t, b.authorize(codeParams(c, "openid", "")), c.RedirectURIs[0]); q.Get("code") == "" {
			t.Fatalf("%s signed the browser out: %v", what, q)
		}
		if b.sessionCookieOf() != cookie {
			t.Fatalf("%s changed the session cookie", what)
		}
	}
	if r := b.get(e.issuer + "/endsession"); r.code != http.StatusOK || !strings.Contains(string(r.body), msgStillSignedIn) {
		t.Fatalf("a bare link: %d %s", r.code, r.body)
	}
	stillSignedIn("a bare link")
	noHint := url.Values{"client_id": {string(c.ID)}, "post_logout_redirect_uri": {"https://app.example/bye"}}
	redirected(t, b.get(e.issuer+"/endsession?"+noHint.Encode()), "https://app.example/bye")
	stillSignedIn("a link without a hint")
	otherUser := url.Values{"id_token_hint": {leasToken}, "post_logout_redirect_uri": {"https://app.example/bye"}}
	redirected(t, b.get(e.issuer+"/endsession?"+otherUser.Encode()), "https://app.example/bye")
	stillSignedIn("another user's ID token")

	// Ken's own ID token ends it (the default redirect's page says so).
	if r := b.get(e.issuer + "/endsession?" + url.Values{"id_token_hint": {kensToken}}.Encode()); r.code != http.StatusOK ||
		!strings.Contains(string(r.body), "You are signed out.") || b.sessionCookieOf() != "" {
		t.Fatalf("with the user's own hint: %d %s", r.code, r.body)
	}
	if r := b.authorize(codeParams(c, "openid", "")); r.code != http.StatusOK || !strings.Contains(string(r.body), `name="password"`) {
		t.Fatalf("after the sign-out: %d %s", r.code, r.body)
	}
}
