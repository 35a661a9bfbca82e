package authz

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/url"
	"strings"
	"testing"

	"spine/shared/testenv"
)

// A Redis or database dump holds no usable browser binding: the auth requests in Redis and the
// codes' request JSON in PostgreSQL keep only the SHA-256 of the browser-binding cookie's value
// and of the forms' CSRF token — a signed-in request (whose code was issued) and one left at the
// sign-in page alike.
func TestDump_SignIn_HoldsNoBrowserBindingOrCSRF(t *testing.T) {
	e := newOIDC(t)
	tenant := newTenant()
	c, _ := e.webClient(tenant, true)
	e.users.add(tenant, "du@example.com", "correct horse battery", "")
	var issued []string
	var hashes [][sha256.Size]byte
	for _, signIn := range []bool{true, false} {
		b := e.browser()
		page := b.authorize(codeParams(c, "openid", ""))
		csrf := form(t, page).Get("csrf")
		browser := ""
		u, _ := url.Parse(e.issuer + "/login")
		for _, ck := range b.c.Jar.Cookies(u) {
			if strings.HasSuffix(ck.Name, "spine-browser") {
				browser = ck.Value
			}
		}
		if browser == "" || csrf == "" {
			t.Fatalf("browser cookie %q, csrf %q", browser, csrf)
		}
		issued = append(issued, browser, csrf)
		hashes = append(hashes, sha256.Sum256([]byte(browser)), sha256.Sum256([]byte(csrf)))
		if signIn {
			if q := redirected(t, b.signIn(page, "du@example.com", "correct horse battery", ""), c.RedirectURIs[0]); q.Get("code") == "" {
				t.Fatalf("sign-in: %v", q)
			}
		}
	}
	lines, err := testenv.QueryStrings(context.Background(), openAdmin(t), `SELECT t::text FROM auth_codes t WHERE tenant_id = $1`, tenant)
	if err != nil {
		t.Fatal(err)
	}
	rows := []byte(strings.Join(lines, "\n"))
	redisDumped := redisDump(t)
	dumps := map[string][]byte{"auth_codes": rows, "redis": redisDumped}
	for name, dump := range dumps {
		for _, v := range issued {
			if bytes.Contains(dump, []byte(v)) {
				t.Errorf("the %s dump holds a browser binding or CSRF token (%.6s…)", name, v)
			}
		}
	}
	// The hashes are there (JSON: base64; the codes' JSON as PostgreSQL prints it), so the check
	// read the rows: both requests' in Redis, the signed-in one's in its code.
	for i, h := range hashes {
		b64 := base64.StdEncoding.EncodeToString(h[:])
		if !bytes.Contains(redisDumped, []byte(b64)) {
			t.Errorf("Redis lacks hash %d (%s)", i, hex.EncodeToString(h[:4]))
		}
		if i < 2 && !bytes.Contains(rows, []byte(b64)) {
			t.Errorf("auth_codes lacks hash %d (%s)", i, hex.EncodeToString(h[:4]))
		}
	}
}
