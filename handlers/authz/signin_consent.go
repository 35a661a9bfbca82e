package authz

import (
	"net/http"

	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// consent serves /consent: a third-party client (first_party=false) asks the signed-in user for
// the requested scopes once; the answer is kept in the store's consents (per tenant, user and
// client), and a later request within those scopes skips the page. Denying ends the request with
// access_denied at the client's redirect URI.
func (p *Provider) consent(w http.ResponseWriter, r *http.Request) {
	var id string
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		id = r.URL.Query().Get("authRequestID")
	case http.MethodPost:
		if err := r.ParseForm(); err != nil {
			message(w, http.StatusBadRequest, "Consent", msgFormExpired)
			return
		}
		id = r.PostForm.Get("authRequestID")
	default:
		w.Header().Set("Allow", "GET, POST")
		message(w, http.StatusMethodNotAllowed, "Consent", "Method not allowed.")
		return
	}
	a, c, ok := p.loadRequest(w, r, id)
	if !ok {
		return
	}
	if _, err := a.tenant(); err != nil || a.Subject == "" || a.Complete {
		// Not signed in yet (or consent given already): the sign-in page knows what comes next.
		http.Redirect(w, r, p.pageURL("login", a.ID), http.StatusSeeOther)
		return
	}
	if r.Method != http.MethodPost {
		render(w, http.StatusOK, page{Page: "consent", Title: "Allow access?", ClientName: c.Name, AuthRequestID: a.ID,
			CSRF: a.csrf, Scopes: a.Scopes})
		return
	}
	if !csrfOK(r, a) {
		message(w, http.StatusForbidden, "Consent", msgFormExpired)
		return
	}
	if r.PostForm.Get("decision") != "allow" {
		p.authError(w, r, a, oidc.ErrAccessDenied().WithDescription("The user denied access."))
		return
	}
	if err := p.store.GrantConsent(r.Context(), a.Tenant, a.Subject, string(c.ID), a.Scopes); err != nil {
		p.log.ErrorContext(r.Context(), "authz: recording a consent", "err", err)
		message(w, http.StatusServiceUnavailable, "Sign-in unavailable", msgUnavailable)
		return
	}
	p.complete(w, r, a)
}
