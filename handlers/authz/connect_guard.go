package authz

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// What the mux checks before op sees a request of /authorize, its callback or /token: bounded
// parameters (an anonymous /authorize is stored in Redis as it is given: it must not be able to
// store much), each given once (RFC 6749 §3.1, §3.2), client mistakes answered as client
// mistakes — invalid_request, logged at WARN, never op's server_error at ERROR — and, where the
// redirect URI cannot be trusted yet, a small HTML page rather than op's text/plain error, which
// names parser internals.

// Bounds of the protocol endpoints' parameters.
const (
	// maxProtocolParams bounds a whole query or form body (bytes).
	maxProtocolParams = 8 << 10
	// maxProtocolParam bounds one parameter's value unless paramLimit says otherwise.
	maxProtocolParam = 2 << 10
	// maxShortParam bounds state, nonce, scope and the other free-text parameters.
	maxShortParam = 1 << 10
	// maxPKCEParam bounds code_challenge and code_verifier (RFC 7636: at most 128 characters).
	maxPKCEParam = 128
)

// paramLimit is the longest value accepted for parameter name (bytes).
func paramLimit(name string) int {
	switch name {
	case "state", "nonce", "scope", "login_hint", "ui_locales", "claims_locales", "acr_values", "id":
		return maxShortParam
	case "code_challenge", "code_verifier":
		return maxPKCEParam
	case "redirect_uri", "post_logout_redirect_uri":
		return maxURILength
	}
	return maxProtocolParam
}

// readParams parses r's query and, for a POST, its form body into r.Form, within the bounds
// above: a body over maxProtocolParams is 413, a query over it, a parameter over its limit, a
// repeated parameter or an undecodable query or form is 400; the error's description is ours
// (never a parser's text). Reading the form first is harmless to op: ParseForm is idempotent.
func readParams(w http.ResponseWriter, r *http.Request) (int, *oidc.Error) {
	if len(r.URL.RawQuery) > maxProtocolParams {
		return http.StatusBadRequest, oidc.ErrInvalidRequest().WithDescription("The query is longer than %d bytes.", maxProtocolParams)
	}
	if r.Method == http.MethodPost {
		if r.ContentLength > maxProtocolParams {
			return http.StatusRequestEntityTooLarge, oidc.ErrInvalidRequest().WithDescription("The form is longer than %d bytes.", maxProtocolParams)
		}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(w, r.Body, maxProtocolParams)
		}
	}
	if err := r.ParseForm(); err != nil {
		if tooLarge := new(http.MaxBytesError); errors.As(err, &tooLarge) {
			return http.StatusRequestEntityTooLarge, oidc.ErrInvalidRequest().WithDescription("The form is longer than %d bytes.", maxProtocolParams)
		}
		return http.StatusBadRequest, oidc.ErrInvalidRequest().WithDescription("The query or form is not valid URL encoding.")
	}
	total := 0
	for name, vs := range r.Form {
		// The form may have been read before (CORS reads a cross-origin form to find the
		// client) under the edge's larger limit only: the parameters together are bounded too.
		if total += len(name) + len(vs[0]); total > maxProtocolParams {
			if r.Method == http.MethodPost {
				return http.StatusRequestEntityTooLarge, oidc.ErrInvalidRequest().WithDescription("The form is longer than %d bytes.", maxProtocolParams)
			}
			return http.StatusBadRequest, oidc.ErrInvalidRequest().WithDescription("The query is longer than %d bytes.", maxProtocolParams)
		}
		if len(vs) > 1 {
			return http.StatusBadRequest, oidc.ErrInvalidRequest().WithDescription("Parameter %s is given more than once.", shortName(name))
		}
		if n := paramLimit(name); len(vs[0]) > n {
			return http.StatusBadRequest, oidc.ErrInvalidRequest().WithDescription("Parameter %s is longer than %d bytes.", shortName(name), n)
		}
	}
	return 0, nil
}

// shortName is a parameter's name as an error names it: at most 40 bytes.
func shortName(name string) string {
	if len(name) > 40 {
		return name[:40] + "…"
	}
	return name
}

// ---- /authorize and its callback ----

// authorizeGuard checks an authorization request before op (and before the browser binding, so a
// refused request sets no cookie): GET or POST, bounded parameters, client_id and redirect_uri
// present, parameters op's decoder accepts. A refusal is an HTML page (the redirect URI is not
// trusted yet), logged at WARN as invalid_request. op's own text/plain errors become pages too.
func (p *Provider) authorizeGuard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodPost {
			w.Header().Set("Allow", "GET, POST")
			p.refuseAuthorize(w, r, http.StatusMethodNotAllowed, oidc.ErrInvalidRequest().WithDescription("The authorization endpoint takes GET or POST."))
			return
		}
		if status, e := readParams(w, r); e != nil {
			p.refuseAuthorize(w, r, status, e)
			return
		}
		if r.Form.Get("client_id") == "" {
			p.refuseAuthorize(w, r, http.StatusBadRequest, oidc.ErrInvalidRequest().WithDescription("client_id is required."))
			return
		}
		if r.Form.Get("redirect_uri") == "" {
			p.refuseAuthorize(w, r, http.StatusBadRequest, oidc.ErrInvalidRequest().WithDescription("redirect_uri is required."))
			return
		}
		if _, err := op.ParseAuthorizeRequest(r, p.op.Decoder()); err != nil {
			e := oidc.ErrInvalidRequest().WithDescription("The authorization request has a parameter of the wrong form.")
			p.refuseAuthorize(w, r, http.StatusBadRequest, e)
			return
		}
		p.serveWithErrorPage(next, w, r)
	})
}

// callbackGuard checks op's callback request: bounded parameters and an id.
func (p *Provider) callbackGuard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if status, e := readParams(w, r); e != nil {
			p.refuseAuthorize(w, r, status, e)
			return
		}
		if r.Form.Get("id") == "" {
			p.refuseAuthorize(w, r, http.StatusBadRequest, oidc.ErrInvalidRequest().WithDescription("The callback needs the sign-in request's id."))
			return
		}
		p.serveWithErrorPage(next, w, r)
	})
}

// refuseAuthorize logs a client's mistake at /authorize or its callback (WARN, invalid_request:
// not a fault of the server) and answers the error page.
func (p *Provider) refuseAuthorize(w http.ResponseWriter, r *http.Request, status int, e *oidc.Error) {
	p.log.WarnContext(r.Context(), "authz: authorization request refused", "oidc_error", e, "status", status)
	authorizeErrorPage(w, status, string(e.ErrorType), e.Description)
}

// authorizeErrorPage renders an authorization error that cannot go back to the client: its code
// and description, nothing else.
func authorizeErrorPage(w http.ResponseWriter, status int, code, desc string) {
	switch code {
	case "temporarily_unavailable":
		message(w, http.StatusServiceUnavailable, "Sign-in unavailable", msgUnavailable)
		return
	case string(oidc.ServerError):
		message(w, http.StatusInternalServerError, "Sign-in failed", "The authorization server could not complete the request. Please try again later. (server_error)")
		return
	}
	if desc == "" {
		desc = "The authorization request is not valid."
	}
	message(w, status, "Sign-in request not valid", fmt.Sprintf("%s Go back to the application and try again. (%s)", desc, code))
}

// serveWithErrorPage runs op's handler, turning the text/plain 400 it writes when an error cannot
// be redirected to the client ("ErrorType=… Description=… Parent=…" or a bare description) into
// the error page: the parent, a parser's or the store's text, is never shown.
func (p *Provider) serveWithErrorPage(next http.Handler, w http.ResponseWriter, r *http.Request) {
	cw := &opErrorCapture{ResponseWriter: w}
	next.ServeHTTP(cw, r)
	if cw.captured {
		code, desc := parseOPError(cw.body.String())
		authorizeErrorPage(w, http.StatusBadRequest, code, desc)
	}
}

// opErrorCapture holds back op's text/plain 400 answers (http.Error) so they can be rendered as
// pages; every other answer passes through.
type opErrorCapture struct {
	http.ResponseWriter
	captured bool
	wrote    bool
	body     strings.Builder
}

func (c *opErrorCapture) WriteHeader(code int) {
	if !c.wrote && code == http.StatusBadRequest && strings.HasPrefix(c.Header().Get("Content-Type"), "text/plain") {
		c.captured, c.wrote = true, true
		return
	}
	c.wrote = true
	c.ResponseWriter.WriteHeader(code)
}

func (c *opErrorCapture) Write(b []byte) (int, error) {
	if !c.wrote {
		c.WriteHeader(http.StatusOK)
	}
	if c.captured {
		if c.body.Len() < 4096 {
			c.body.Write(b)
		}
		return len(b), nil
	}
	return c.ResponseWriter.Write(b)
}

func (c *opErrorCapture) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// parseOPError reads the error of op's text/plain answer: "ErrorType=<type>[ Description=<d>][
// Parent=<p>]" (oidc.Error's text) gives its type and description; any other text is the
// description of an invalid_request. The parent is dropped.
func parseOPError(text string) (code, desc string) {
	text = strings.TrimSpace(text)
	code = string(oidc.InvalidRequest)
	if rest, ok := strings.CutPrefix(text, "ErrorType="); ok {
		typ, rest, _ := strings.Cut(rest, " ")
		if typ != "" {
			code = typ
		}
		if d, ok := strings.CutPrefix(rest, "Description="); ok {
			desc, _, _ = strings.Cut(d, " Parent=")
		}
		return code, desc
	}
	if strings.Contains(text, "Parent=") {
		return code, "" // not a description of ours or op's: show none
	}
	return code, text
}

// ---- /token ----

// checkTokenParams checks a token request's parameters and client authentication before op
// (RFC 6749 §2.3: one method per request; §2.3.1: the secret in the body only): HTTP Basic with
// a client_secret or client_assertion in the form, or with a client_id other than Basic's, is
// invalid_request. It answers and returns false when the request is refused.
func checkTokenParams(w http.ResponseWriter, r *http.Request) bool {
	if status, e := readParams(w, r); e != nil {
		writeOAuthError(w, status, e)
		return false
	}
	if r.Form.Get("client_secret") != "" && r.PostForm.Get("client_secret") == "" {
		writeOAuthError(w, 0, oidc.ErrInvalidRequest().WithDescription("client_secret must be sent in the form body, never in the URL."))
		return false
	}
	id, _, basic := r.BasicAuth()
	if !basic {
		return true
	}
	if u, err := url.QueryUnescape(id); err == nil {
		id = u
	}
	formID := r.Form.Get("client_id")
	if r.Form.Get("client_secret") != "" || r.Form.Get("client_assertion") != "" || (formID != "" && formID != id) {
		writeOAuthError(w, 0, oidc.ErrInvalidRequest().WithDescription("Authenticate the client one way only: HTTP Basic, or client_id and client_secret in the form."))
		return false
	}
	return true
}
