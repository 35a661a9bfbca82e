// Package idempotency honours the Idempotency-Key header on creating POSTs, for every service, over
// the idempotency_keys table of the service's own database (platform schema).
//
// The protocol (after Stripe's and the IETF httpapi draft's):
//   - The Middleware, mounted on a creating route, looks the caller's key up. A key seen before
//     with the same request replays the first response (status, body, Location, ETag,
//     Content-Type, and Idempotent-Replayed: true); with another request it is 422
//     idempotency-key-reused; a key whose first request is still running is 409
//     idempotency-request-in-progress (Retry-After: 1).
//   - A new key runs the route. The service's store calls Claim inside the transaction of the
//     change the request makes, which inserts the key's record: the key is taken if and only if
//     the change commits. A concurrent request with the same key then fails its own Claim
//     (ErrRace), and the Middleware answers it as a repeat.
//   - After the route answers 2xx, the Middleware stores the response in the record.
//
// So the service never renders HTTP: it only claims the key in its transaction. Between the commit
// and the stored response lies a short window; a process that dies inside it leaves a claimed key
// without a response, which answers 409 idempotency-request-in-progress until the record expires
// (the change itself is committed: the client finds it by reading).
package idempotency

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"spine/shared/auth"
	"spine/shared/problem"
	"spine/shared/sqlstore"
)

// Header is the request header that carries the key.
const Header = "Idempotency-Key"

// MaxKeyLength bounds a key: 1–200 visible ASCII characters.
const MaxKeyLength = 200

// Errors of the protocol; Problem renders them.
var (
	// ErrRace is Claim's error when another request with the same key claimed it first.
	ErrRace = errors.New("idempotency: key claimed by a concurrent request")
	// ErrReused: the key was used with another request.
	ErrReused = errors.New("idempotency: key reused with another request")
	// ErrInProgress: the key's first request has not answered yet.
	ErrInProgress = errors.New("idempotency: the first request with this key has not answered yet")
	// ErrResponseLost: the key's first request committed its change, but its response was never
	// recorded (see ResponseLostAfter).
	ErrResponseLost = errors.New("idempotency: the first request with this key succeeded but its response was not recorded")
)

// Problem maps the package's errors to problems (a problem.Mapper), or nil.
func Problem(err error) *problem.Problem {
	switch {
	case errors.Is(err, ErrReused):
		return problem.New(http.StatusUnprocessableEntity, "idempotency-key-reused",
			"This Idempotency-Key was used with a different request body.")
	case errors.Is(err, ErrResponseLost):
		return problem.New(http.StatusConflict, "idempotency-response-lost",
			"The first request with this Idempotency-Key succeeded, but its response was not recorded; read the resource instead of retrying.")
	case errors.Is(err, ErrInProgress), errors.Is(err, ErrRace):
		return problem.New(http.StatusConflict, "idempotency-request-in-progress",
			"A request with this Idempotency-Key is still in progress; retry shortly.").WithHeader("Retry-After", "1")
	}
	return nil
}

// pending is a request whose key is new: what Claim records.
type pending struct {
	caller, key, scope string
	hash               []byte
	claimed            bool
	replay             []byte // what to record instead of the response body (ReplayBody), when set
}

type ctxKey struct{}

// With returns ctx carrying a new key to claim, as Middleware sets it up for a request whose key
// it has not seen: for store tests and callers other than HTTP routes.
func With(ctx context.Context, caller, key, scope string, requestHash []byte) context.Context {
	return context.WithValue(ctx, ctxKey{}, &pending{caller: caller, key: key, scope: scope, hash: requestHash})
}

// Claim records the request's key inside tx, the transaction of the change the request makes, so
// the key is taken exactly when the change commits. Without a key (no header, or no Middleware) it
// does nothing. A concurrent request that claimed the same key first makes it ErrRace, which rolls
// the transaction back; the Middleware answers that request as a repeat.
func Claim(ctx context.Context, tx *sqlstore.Tx) error {
	p, ok := ctx.Value(ctxKey{}).(*pending)
	if !ok || p == nil {
		return nil
	}
	res, err := tx.ExecContext(ctx, claimSQL[tx.Dialect], p.caller, p.key, p.scope, p.hash, sqlstore.Now())
	if err != nil {
		err = sqlstore.Translate(tx.Dialect, err)
		if errors.Is(err, sqlstore.ErrUniqueViolation) {
			return ErrRace // a concurrent claim slipped past the engine's conflict check
		}
		return fmt.Errorf("idempotency: claim: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrRace
	}
	p.claimed = true
	return nil
}

// ReplayBody sets what a repeated request with this request's key will be answered with, in place
// of the body the route writes now. A route whose response shows a secret once (an invitation
// token) records the response without it, so the secret is never stored in the clear; its
// replays answer the same status and headers with this body. Without a key it does nothing.
func ReplayBody(ctx context.Context, body []byte) {
	if p, ok := ctx.Value(ctxKey{}).(*pending); ok && p != nil {
		p.replay = body
	}
}

// record is a stored key.
type record struct {
	hash    []byte
	status  int
	body    []byte
	headers map[string]string
	created time.Time
}

// ResponseLostAfter is how long a claimed key may wait for its response before the Middleware
// stops answering "in progress": past it, the first request's change has committed but its
// response was never recorded (the process stopped in between), and retrying cannot help.
const ResponseLostAfter = 30 * time.Second

// replayedHeaders are the response headers a replay repeats.
var replayedHeaders = []string{"Location", "ETag", "Content-Type"}

// Middleware honours Idempotency-Key on the route it is mounted on, over db (the service's own
// database). Mount it on creating POSTs after authentication: keys belong to the caller — the
// token's tenant (or "platform") and subject together, since subjects are unique only within an
// issuer's tenant — so two callers never share one. A malformed key is 400 invalid-idempotency-key.
//
// Options: WithoutMembers.
func Middleware(db *sqlstore.DB, opts ...Option) echo.MiddlewareFunc {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			key := c.Request().Header.Get(Header)
			if key == "" {
				return next(c)
			}
			if len(key) > MaxKeyLength || strings.ContainsFunc(key, func(r rune) bool { return r < 0x21 || r > 0x7e }) {
				return problem.New(http.StatusBadRequest, "invalid-idempotency-key", "Idempotency-Key must be 1–200 visible ASCII characters.")
			}
			pr, ok := auth.FromContext(c.Request().Context())
			if !ok {
				return next(c) // unauthenticated: the route refuses it anyway
			}
			caller := callerOf(pr)
			hash, err := requestHash(c, o.without)
			if err != nil {
				return err
			}
			ctx := c.Request().Context()
			scope := routeScope(c)
			if rec, err := lookup(ctx, db, caller, key, scope); err != nil || rec != nil {
				if err != nil {
					return err
				}
				return replay(c, rec, hash)
			}
			ctx2 := With(ctx, caller, key, scope, hash)
			p := ctx2.Value(ctxKey{}).(*pending)
			c.SetRequest(c.Request().WithContext(ctx2))
			tee := &teeWriter{ResponseWriter: c.Response().Writer}
			c.Response().Writer = tee
			err = next(c)
			c.Response().Writer = tee.ResponseWriter
			if errors.Is(err, ErrRace) {
				rec, lerr := lookup(ctx, db, caller, key, scope)
				if lerr != nil || rec == nil {
					return ErrInProgress
				}
				return replay(c, rec, hash)
			}
			if err == nil && p.claimed && c.Response().Committed {
				status := c.Response().Status
				h := map[string]string{}
				for _, name := range replayedHeaders {
					if v := c.Response().Header().Get(name); v != "" {
						h[name] = v
					}
				}
				body := tee.body.Bytes()
				if p.replay != nil {
					body = p.replay
				}
				// The change has committed; only the replayable answer is recorded now.
				if cerr := complete(context.WithoutCancel(ctx), db, p, status, body, h); cerr != nil {
					c.Logger().Warnf("idempotency: response for key not recorded: %v", cerr)
				}
			}
			return err
		}
	}
}

// callerOf is who owns a key: "<tenant>|<subject>", or "platform|<subject>" for platform admins;
// a subject too long for the column is replaced by its SHA-256.
func callerOf(p auth.Principal) string {
	owner := p.TenantID
	if p.PlatformAdmin {
		owner = "platform"
	}
	c := owner + "|" + p.Subject
	if len(c) > 200 {
		sum := sha256.Sum256([]byte(p.Subject))
		c = owner + "|sha256:" + hex.EncodeToString(sum[:])
	}
	return c
}

// Option configures Middleware.
type Option func(*options)

type options struct{ without []string }

// WithoutMembers leaves the named top-level members of a JSON object body out of the stored
// request hash: a secret the request carries (an integration's credential) then leaves no
// derivative in the database, not even a hash that a weak secret could be guessed against. A
// repeated key whose request differs only in those members is the same request (the first
// answer is replayed, and the new value is not used).
func WithoutMembers(names ...string) Option {
	return func(o *options) { o.without = append(o.without, names...) }
}

// requestHash is SHA-256 over the method, the path, the query string and the body, with a JSON
// body in canonical form (keys sorted, insignificant space removed, numbers kept as written;
// the top-level members named in without removed): the same request written differently is the
// same request, and one aimed at another tenant (?tenantId=) is another request. The body is put
// back for the route.
func requestHash(c echo.Context, without []string) ([]byte, error) {
	r := c.Request()
	var body []byte
	if r.Body != nil {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err // BodyLimit's 413, or a broken connection
		}
		body = b
		r.Body = io.NopCloser(bytes.NewReader(b))
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber() // 2^53+1 and 2^53 are two requests
	var v any
	if dec.Decode(&v) == nil {
		if m, ok := v.(map[string]any); ok {
			for _, name := range without {
				delete(m, name)
			}
		}
		if canon, err := json.Marshal(v); err == nil {
			body = canon
		}
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s %s?%s\n", r.Method, r.URL.Path, r.URL.Query().Encode())
	h.Write(body)
	return h.Sum(nil), nil
}

// replay answers a repeated key: the first response, or 422 / 409.
func replay(c echo.Context, rec *record, hash []byte) error {
	if !bytes.Equal(rec.hash, hash) {
		return ErrReused
	}
	if rec.status == 0 {
		if time.Since(rec.created) > ResponseLostAfter {
			return ErrResponseLost
		}
		return ErrInProgress
	}
	h := c.Response().Header()
	for name, v := range rec.headers {
		h.Set(name, v)
	}
	h.Set("Idempotent-Replayed", "true")
	ct := rec.headers["Content-Type"]
	if ct == "" {
		ct = echo.MIMEApplicationJSON
	}
	return c.Blob(rec.status, ct, rec.body)
}

// teeWriter copies what the route writes, to be recorded.
type teeWriter struct {
	http.ResponseWriter
	body bytes.Buffer
}

func (t *teeWriter) Write(b []byte) (int, error) {
	t.body.Write(b)
	return t.ResponseWriter.Write(b)
}

// Flush keeps streaming responses working through the tee.
func (t *teeWriter) Flush() {
	if f, ok := t.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// routeScope is the operation a key belongs to: the route's method and path template, so one key
// used on two routes names two requests.
func routeScope(c echo.Context) string {
	s := c.Request().Method + " " + c.Path()
	if len(s) > 64 {
		s = s[:64]
	}
	return s
}

func lookup(ctx context.Context, db *sqlstore.DB, caller, key, scope string) (*record, error) {
	var rec record
	var headers string
	err := db.InReadTx(ctx, sqlstore.PlatformScope(), func(tx *sqlstore.Tx) error {
		return tx.QueryRowContext(ctx, lookupSQL[tx.Dialect], caller, key, scope).Scan(&rec.hash, &rec.status, &rec.body, &headers, &rec.created)
	})
	if errors.Is(err, sqlstore.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if headers != "" {
		_ = json.Unmarshal([]byte(headers), &rec.headers)
	}
	return &rec, nil
}

func complete(ctx context.Context, db *sqlstore.DB, p *pending, status int, body []byte, headers map[string]string) error {
	hj, _ := json.Marshal(headers)
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return db.InTx(ctx, sqlstore.PlatformScope(), func(tx *sqlstore.Tx) error {
		_, err := tx.ExecContext(ctx, completeSQL[tx.Dialect], p.caller, p.key, p.scope, status, body, string(hj))
		return err
	})
}
