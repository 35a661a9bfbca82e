package authz

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"spine/shared/authn"
	"spine/shared/tenancy"
)

// The sign-in page, /login (GET: the form, or straight on when the browser's sign-in session
// covers the request; POST: the credentials), then consent for third-party clients
// (signin_consent.go), then op's callback, which issues the code.
//
// The tenant a user signs in to is the client's; a platform client (used by every tenant) asks
// for it on the form — as the tenant's id, because the tenant directory the services share
// (tenancy.Directory) answers a tenant's state by id and resolves no slug.
//
// Failures never say whether an e-mail address exists: one message for every wrong credential,
// and the throttle (SignInThrottle) counts failures whether or not the address exists.

// loadRequest reads the auth request a page serves, checks it belongs to this browser and is
// still open, and reads its client. ok=false means a page was written.
func (p *Provider) loadRequest(w http.ResponseWriter, r *http.Request, id string) (*authRequest, Client, bool) {
	ctx := r.Context()
	a, err := p.state.authRequest(ctx, id)
	if errors.Is(err, errAuthRequestNotFound) {
		message(w, http.StatusBadRequest, "Sign-in expired", msgExpired)
		return nil, Client{}, false
	}
	if err != nil {
		p.log.WarnContext(ctx, "authz: sign-in state unavailable", "err", err)
		message(w, http.StatusServiceUnavailable, "Sign-in unavailable", msgUnavailable)
		return nil, Client{}, false
	}
	b := browserFrom(ctx)
	if !a.fromBrowser(b) {
		message(w, http.StatusBadRequest, "Sign-in expired", msgForeign)
		return nil, Client{}, false
	}
	a.csrf = csrfToken(b, a.ID)
	if a.CodeIssued {
		message(w, http.StatusBadRequest, "Sign-in complete", "This sign-in is complete. Go back to the application.")
		return nil, Client{}, false
	}
	c, oerr := p.storage.client(ctx, a.ClientID)
	if oerr != nil {
		if oerr.ErrorType == oidc.ServerError {
			message(w, http.StatusServiceUnavailable, "Sign-in unavailable", msgUnavailable)
		} else {
			message(w, http.StatusBadRequest, "Sign-in expired", msgExpired)
		}
		return nil, Client{}, false
	}
	return a, c, true
}

// csrfOK checks a form's CSRF token against the auth request's.
func csrfOK(r *http.Request, a *authRequest) bool {
	return a.csrfOK(r.PostForm.Get("csrf"))
}

// login serves /login.
func (p *Provider) login(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		p.loginForm(w, r)
	case http.MethodPost:
		p.loginSubmit(w, r)
	default:
		w.Header().Set("Allow", "GET, POST")
		message(w, http.StatusMethodNotAllowed, "Sign in", "Method not allowed.")
	}
}

// loginForm is GET /login: the form, or, when this browser's sign-in session covers the request
// (same tenant, no prompt=login, within max_age), no form at all.
func (p *Provider) loginForm(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("authRequestID")
	if id == "" {
		switch {
		case r.URL.Query().Has("signedOut") && p.cookie(r, sessionCookie) != "":
			// /endsession kept the session (no id_token_hint of its user): say so.
			message(w, http.StatusOK, "Still signed in", msgStillSignedIn)
		case r.URL.Query().Has("signedOut"):
			message(w, http.StatusOK, "Signed out", "You are signed out.")
		default:
			message(w, http.StatusBadRequest, "Sign in", "There is no sign-in in progress. Start from the application.")
		}
		return
	}
	a, c, ok := p.loadRequest(w, r, id)
	if !ok {
		return
	}
	if a.Complete {
		http.Redirect(w, r, p.callbackURL(r.Context(), a.ID), http.StatusFound)
		return
	}
	if !a.hasPrompt(oidc.PromptLogin) {
		sess, found, err := p.currentSession(w, r, a, c)
		if err != nil {
			p.log.WarnContext(r.Context(), "authz: sign-in state unavailable", "err", err)
			message(w, http.StatusServiceUnavailable, "Sign-in unavailable", msgUnavailable)
			return
		}
		if found {
			p.signedIn(w, r, a, c, sess)
			return
		}
	}
	if a.hasPrompt(oidc.PromptNone) {
		p.authError(w, r, a, oidc.ErrLoginRequired().WithDescription("The user is not signed in."))
		return
	}
	render(w, http.StatusOK, p.loginPage(a, c, "", ""))
}

// loginPage is the form for a.
func (p *Provider) loginPage(a *authRequest, c Client, errMsg, email string) page {
	if email == "" {
		email = a.LoginHint
	}
	return page{Page: "login", Title: "Sign in", Error: errMsg, ClientName: c.Name, AuthRequestID: a.ID, CSRF: a.csrf,
		AskTenant: c.Platform(), Email: email}
}

// currentSession returns this browser's sign-in session if it may skip the password for a: the
// client's tenant (any tenant for a platform client), with max_age recent enough, and its user
// still Active (identity): the session of a user disabled since is deleted and its cookie
// cleared, so the form is shown.
func (p *Provider) currentSession(w http.ResponseWriter, r *http.Request, a *authRequest, c Client) (signInSession, bool, error) {
	v := p.cookie(r, sessionCookie)
	if v == "" {
		return signInSession{}, false, nil
	}
	ctx := r.Context()
	sess, found, err := p.state.session(ctx, v)
	if err != nil || !found {
		return signInSession{}, false, err
	}
	if !c.Platform() && sess.Tenant != c.Tenant {
		return signInSession{}, false, nil
	}
	if a.MaxAge != nil && p.cfg.Now().Sub(sess.AuthTime) > time.Duration(*a.MaxAge)*time.Second {
		return signInSession{}, false, nil
	}
	tenant, err := tenancy.ParseTenantID(sess.Tenant)
	if err != nil {
		return signInSession{}, false, nil
	}
	if _, err := p.users.Profile(ctx, tenant, sess.Subject); err != nil {
		if !errors.Is(err, authn.ErrUnknownUser) {
			return signInSession{}, false, err
		}
		if err := p.state.endSession(ctx, v); err != nil {
			return signInSession{}, false, err
		}
		p.setCookie(w, sessionCookie, "", -1)
		return signInSession{}, false, nil
	}
	return sess, true, nil
}

// endSignInSession is /endsession's end of this browser's sign-in session: ended, and its cookie
// cleared, only when owns accepts it (an id_token_hint of its user); a session owns refuses stays,
// cookie included. A cookie naming no session is cleared. A Redis failure is returned (nothing
// could be checked, nothing is ended).
func (p *Provider) endSignInSession(ctx context.Context, w http.ResponseWriter, r *http.Request, owns func(signInSession) bool) error {
	v := p.cookie(r, sessionCookie)
	if v == "" {
		return nil
	}
	sess, found, err := p.state.session(ctx, v)
	if err != nil {
		return err
	}
	if found && !owns(sess) {
		return nil
	}
	if found {
		if err := p.state.endSession(ctx, v); err != nil {
			return err
		}
	}
	p.setCookie(w, sessionCookie, "", -1)
	return nil
}

// loginSubmit is POST /login: CSRF, the tenant, the credentials through identity (authn.Users),
// a new sign-in session (cookie), then consent or the callback.
func (p *Provider) loginSubmit(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		message(w, http.StatusBadRequest, "Sign in", msgFormExpired)
		return
	}
	a, c, ok := p.loadRequest(w, r, r.PostForm.Get("authRequestID"))
	if !ok {
		return
	}
	if !csrfOK(r, a) || a.Complete {
		message(w, http.StatusForbidden, "Sign in", msgFormExpired)
		return
	}
	ctx := r.Context()
	email, password := r.PostForm.Get("email"), r.PostForm.Get("password")
	limits := p.cfg.SignInThrottle
	unavailable := func(err error) {
		p.log.WarnContext(ctx, "authz: sign-in unavailable", "err", err)
		message(w, http.StatusServiceUnavailable, "Sign-in unavailable", msgUnavailable)
	}
	// Every attempt is counted against its auth request, and then its address, before anything
	// is checked (one atomic increment each, so parallel attempts cannot pass a limit together);
	// a successful one is taken back. What stays counted is failures.
	requestKey := requestFailuresKey(a.ID)
	perRequest, _, err := p.state.countAttempt(ctx, requestKey, authRequestTTL)
	if err != nil {
		unavailable(err)
		return
	}
	if perRequest > int64(limits.MaxRequestFailures) {
		p.endThrottledRequest(w, r, a)
		return
	}
	// failed answers a failed attempt: the form again, or 429 once a limit is reached (the
	// request's limit deletes the request).
	failed := func(perAddress int64, wait time.Duration) {
		switch {
		case perRequest >= int64(limits.MaxRequestFailures):
			p.endThrottledRequest(w, r, a)
		case perAddress >= int64(limits.MaxFailures):
			p.log.InfoContext(ctx, "authz: an address reached its sign-in failure limit", "client_id", a.ClientID)
			tooMany(w, wait, msgThrottled)
		default:
			pg := p.loginPage(a, c, msgCredentials, email)
			pg.Organization = r.PostForm.Get("organization")
			render(w, http.StatusUnauthorized, pg)
		}
	}
	var tenant tenancy.TenantID
	if c.Platform() {
		t, err := tenancy.ParseTenantID(r.PostForm.Get("organization"))
		if err != nil {
			failed(0, 0)
			return
		}
		tenant = t
	} else if tenant, err = tenancy.ParseTenantID(c.Tenant); err != nil {
		message(w, http.StatusBadRequest, "Sign-in expired", msgExpired)
		return
	}
	if email == "" || password == "" || len(email) > 320 || len(password) > 1024 {
		failed(0, 0)
		return
	}
	// An address past its limit is not checked at all (no argon2id computation), known or not,
	// right password or not, until its window ends.
	emailKey := signInFailuresKey(tenant, email)
	perAddress, wait, err := p.state.countAttempt(ctx, emailKey, limits.Window)
	if err != nil {
		unavailable(err)
		return
	}
	if perAddress > int64(limits.MaxFailures) {
		tooMany(w, wait, msgThrottled)
		return
	}
	userID, err := p.users.Authenticate(ctx, tenant, email, password)
	if errors.Is(err, authn.ErrInvalidCredentials) {
		failed(perAddress, wait)
		return
	}
	// Not a failure of the user's: the attempt is taken back.
	for _, key := range []string{requestKey, emailKey} {
		if rerr := p.state.releaseAttempt(ctx, key); rerr != nil {
			p.log.WarnContext(ctx, "authz: a sign-in attempt could not be taken back; it counts until its window ends", "err", rerr)
		}
	}
	if err != nil {
		unavailable(err)
		return
	}
	sess := signInSession{Tenant: tenant.String(), Subject: userID, AuthTime: p.cfg.Now().UTC().Truncate(time.Second), AMR: []string{"pwd"}}
	value, err := p.state.newSession(ctx, sess)
	if err != nil {
		p.log.WarnContext(ctx, "authz: sign-in state unavailable", "err", err)
		message(w, http.StatusServiceUnavailable, "Sign-in unavailable", msgUnavailable)
		return
	}
	// A new session id on every sign-in (no fixation); the old one ends.
	if old := p.cookie(r, sessionCookie); old != "" {
		if err := p.state.endSession(ctx, old); err != nil {
			p.log.WarnContext(ctx, "authz: a replaced sign-in session could not be deleted; it expires with its TTL", "err", err)
		}
	}
	p.setCookie(w, sessionCookie, value, int(p.cfg.SessionTTL/time.Second))
	p.signedIn(w, r, a, c, sess)
}

// endThrottledRequest deletes a, which reached its limit of failed sign-ins, and answers 429: the
// client has to start a new request.
func (p *Provider) endThrottledRequest(w http.ResponseWriter, r *http.Request, a *authRequest) {
	ctx := r.Context()
	if err := p.state.deleteAuthRequest(ctx, a.ID); err != nil {
		// Not deleted: every further attempt on it is counted past the limit and ends here.
		p.log.WarnContext(ctx, "authz: a throttled auth request could not be deleted", "err", err)
	}
	p.log.InfoContext(ctx, "authz: a sign-in request reached its failure limit and was deleted", "client_id", a.ClientID)
	tooMany(w, 0, msgThrottledRequest)
}

// tooMany is the 429 page, with Retry-After (seconds, rounded up) when wait is known.
func tooMany(w http.ResponseWriter, wait time.Duration, msg string) {
	if wait > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt(int64((wait+time.Second-1)/time.Second), 10))
	}
	message(w, http.StatusTooManyRequests, "Too many attempts", msg)
}

// signedIn records the signed-in user on a and narrows its API scopes to the user's permissions
// (identity; an error ends a with server_error, never a wider grant), then sends the browser to
// the consent page (a third-party client without the user's consent to every remaining scope) or
// to op's callback.
func (p *Provider) signedIn(w http.ResponseWriter, r *http.Request, a *authRequest, c Client, sess signInSession) {
	ctx := r.Context()
	// No code for a tenant that could not redeem it (suspended, decommissioned, unknown): the
	// client hears access_denied now rather than invalid_grant at /token.
	if oerr := p.storage.tenantIssuable(ctx, sess.Tenant, oidc.GrantTypeCode); oerr != nil {
		if oerr.ErrorType != oidc.ServerError {
			oerr = oidc.ErrAccessDenied().WithDescription("The tenant is suspended, decommissioned or unknown.")
		}
		p.authError(w, r, a, oerr)
		return
	}
	a.Tenant, a.Subject, a.AuthTime, a.AMR = sess.Tenant, sess.Subject, sess.AuthTime, sess.AMR
	scopes, err := p.userScopes(ctx, sess.Tenant, sess.Subject, a.Scopes)
	if err != nil {
		p.log.ErrorContext(ctx, "authz: reading a user's permissions", "err", err)
		p.authError(w, r, a, oidc.ErrServerError().WithDescription("The authorization server could not complete the request; try again later."))
		return
	}
	a.Scopes = scopes
	if !c.FirstParty {
		granted, err := p.store.Consent(ctx, sess.Tenant, sess.Subject, string(c.ID))
		if err != nil {
			p.log.ErrorContext(ctx, "authz: reading a consent", "err", err)
			message(w, http.StatusServiceUnavailable, "Sign-in unavailable", msgUnavailable)
			return
		}
		if !covers(granted, a.Scopes) {
			if a.hasPrompt(oidc.PromptNone) {
				p.authError(w, r, a, &oidc.Error{ErrorType: "consent_required", Description: "The user has not consented."})
				return
			}
			if !p.saveSignIn(w, r, a) {
				return
			}
			http.Redirect(w, r, p.pageURL("consent", a.ID), http.StatusSeeOther)
			return
		}
	}
	p.complete(w, r, a)
}

// complete marks a done and sends the browser to op's callback (which issues the code).
func (p *Provider) complete(w http.ResponseWriter, r *http.Request, a *authRequest) {
	a.Complete = true
	if !p.saveSignIn(w, r, a) {
		return
	}
	http.Redirect(w, r, p.callbackURL(r.Context(), a.ID), http.StatusSeeOther)
}

// saveSignIn stores a's progress; ok=false means an error page was written.
func (p *Provider) saveSignIn(w http.ResponseWriter, r *http.Request, a *authRequest) bool {
	err := p.state.updateAuthRequest(r.Context(), a)
	if errors.Is(err, errAuthRequestNotFound) {
		message(w, http.StatusBadRequest, "Sign-in expired", msgExpired)
		return false
	}
	if err != nil {
		p.log.WarnContext(r.Context(), "authz: sign-in state unavailable", "err", err)
		message(w, http.StatusServiceUnavailable, "Sign-in unavailable", msgUnavailable)
		return false
	}
	return true
}

// authError ends a with an OAuth error sent to the client's redirect URI (op's encoding, state
// included), and forgets it.
func (p *Provider) authError(w http.ResponseWriter, r *http.Request, a *authRequest, e *oidc.Error) {
	if err := p.state.deleteAuthRequest(r.Context(), a.ID); err != nil {
		p.log.WarnContext(r.Context(), "authz: an ended auth request could not be deleted; it expires with its TTL", "err", err)
	}
	op.AuthRequestError(w, r, a, e, p.op)
}

// covers reports whether granted includes every one of requested.
func covers(granted, requested []string) bool {
	for _, s := range requested {
		if !slices.Contains(granted, s) {
			return false
		}
	}
	return true
}
