package authz

import (
	"bytes"
	"html/template"
	"net/http"
)

// The sign-in and consent pages: server-rendered, no script, no external resource.

var pages = template.Must(template.New("layout").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>
body{font-family:system-ui,sans-serif;max-width:26rem;margin:4rem auto;padding:0 1rem;color:#222}
label{display:block;margin:.8rem 0 .2rem}input[type=email],input[type=password],input[type=text]{width:100%;padding:.5rem;box-sizing:border-box}
button{margin-top:1rem;padding:.5rem 1rem}.error{color:#a00}.hint{color:#666;font-size:.9em}
</style></head><body>
<h1>{{.Title}}</h1>
{{if .Error}}<p class="error" role="alert">{{.Error}}</p>{{end}}
{{if eq .Page "login"}}
<p>to continue to <strong>{{.ClientName}}</strong></p>
<form method="post" action="login">
<input type="hidden" name="authRequestID" value="{{.AuthRequestID}}">
<input type="hidden" name="csrf" value="{{.CSRF}}">
{{if .AskTenant}}<label for="organization">Organization ID</label>
<input type="text" id="organization" name="organization" value="{{.Organization}}" required autocomplete="organization">
<p class="hint">Your organization's id (a UUID), as your administrator gave it to you.</p>{{end}}
<label for="email">Email</label>
<input type="email" id="email" name="email" value="{{.Email}}" required autocomplete="username" autofocus>
<label for="password">Password</label>
<input type="password" id="password" name="password" required autocomplete="current-password">
<button type="submit">Sign in</button>
</form>
{{else if eq .Page "consent"}}
<p><strong>{{.ClientName}}</strong> asks for access to your account with these permissions:</p>
<ul>{{range .Scopes}}<li>{{.}}</li>{{end}}</ul>
<form method="post" action="consent">
<input type="hidden" name="authRequestID" value="{{.AuthRequestID}}">
<input type="hidden" name="csrf" value="{{.CSRF}}">
<button type="submit" name="decision" value="allow">Allow</button>
<button type="submit" name="decision" value="deny">Deny</button>
</form>
{{else}}
<p>{{.Message}}</p>
{{end}}
</body></html>
`))

// page is what the layout renders.
type page struct {
	Page, Title, Error, Message     string
	ClientName, AuthRequestID, CSRF string
	AskTenant                       bool
	Organization, Email             string
	Scopes                          []string
}

// render writes a page with status and the headers every page has: no caching, no framing, no
// script or external resource, no referrer (the URLs carry the auth request id).
func render(w http.ResponseWriter, status int, pg page) {
	var buf bytes.Buffer
	if err := pages.Execute(&buf, pg); err != nil {
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
}

// message renders a page that only says something.
func message(w http.ResponseWriter, status int, title, msg string) {
	render(w, status, page{Page: "message", Title: title, Message: msg})
}

// Messages of the pages.
const (
	msgUnavailable = "Sign-in is unavailable right now. Please try again in a few minutes."
	msgExpired     = "This sign-in request is unknown or has expired. Go back to the application and sign in again."
	msgForeign     = "This sign-in request was started in another browser. Go back to the application and sign in again from this one."
	msgFormExpired = "This form has expired. Go back to the application and sign in again."
	msgCredentials = "Invalid email or password."
	// msgThrottled answers every sign-in of an address with too many recent failures, whether
	// or not the address exists.
	msgThrottled = "Too many sign-in attempts. Please try again later."
	// msgStillSignedIn answers a sign-out that ended nothing (no id_token_hint of the session's user).
	msgStillSignedIn = "You are still signed in. To sign out, use the sign-out of the application you signed in to."
	// msgThrottledRequest ends a sign-in request with too many failures.
	msgThrottledRequest = "Too many failed sign-in attempts. Go back to the application and sign in again."
)
