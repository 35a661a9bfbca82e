package notifications

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"spine/shared/auth"
	"spine/shared/httpx"
	"spine/shared/idempotency"
	"spine/shared/ids"
	"spine/shared/problem"
	"spine/shared/retention"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
)

// Scopes of the notifications API: reading notifications and endpoints, sending notifications,
// and managing webhook endpoints (which mints their secrets).
const (
	ScopeRead   = "notification.read"
	ScopeSend   = "notification.send"
	ScopeManage = "notification.manage"
)

// API serves the notifications routes.
type API struct {
	svc *Service
	db  *sqlstore.DB
	// retention runs NotificationArchive (nil on Module.Declare's value, which only declares).
	retention *retention.Engine
}

// NewAPI returns the HTTP API over svc; db is the service's database (idempotency records).
func NewAPI(svc *Service, db *sqlstore.DB) *API { return &API{svc: svc, db: db} }

// Routes implements kit.Service. Tenant-level routes: a tenant token works on its own tenant, a
// platform admin names the tenant with ?tenantId= (httpx.Target).
func (a *API) Routes(g *echo.Group) {
	scope := auth.RequireScope
	idem := idempotency.Middleware(a.db)
	g.POST("/notifications", a.send, scope(ScopeSend), idem)
	g.GET("/notifications", a.list, scope(ScopeRead))
	g.GET("/notifications/:id", a.get, scope(ScopeRead))
	g.GET("/notifications/:id/attachments/:name", a.attachment, scope(ScopeRead))
	g.POST("/webhook-endpoints", a.createEndpoint, scope(ScopeManage), idem)
	g.GET("/webhook-endpoints", a.listEndpoints, scope(ScopeRead))
	g.GET("/webhook-endpoints/:id", a.getEndpoint, scope(ScopeRead))
	g.PATCH("/webhook-endpoints/:id", a.patchEndpoint, scope(ScopeManage))
	g.DELETE("/webhook-endpoints/:id", a.deleteEndpoint, scope(ScopeManage))
	g.POST("/webhook-endpoints/:id/rotate-secret", a.rotateSecret, scope(ScopeManage), idem)
}

// ---- JSON shapes ----

type attachmentJSON struct {
	Name        string `json:"name"`
	ContentType string `json:"contentType"`
	Size        int64  `json:"size"`
	SHA256      string `json:"sha256"`
}

func toAttachmentsJSON(atts []Attachment) []attachmentJSON {
	out := make([]attachmentJSON, 0, len(atts))
	for _, a := range atts {
		out = append(out, attachmentJSON{Name: a.Name, ContentType: a.ContentType, Size: a.Size, SHA256: a.SHA256})
	}
	return out
}

type attemptJSON struct {
	Attempt     int       `json:"attempt"`
	AttemptedAt time.Time `json:"attemptedAt"`
	StatusCode  optInt    `json:"statusCode"`
	LatencyMS   int       `json:"latencyMs"`
	ErrorClass  optString `json:"errorClass"`
}

// optString is a member the README's shapes list set or not: "" is written as null. (Reading
// null into it leaves "", as for any string.)
type optString string

// MarshalJSON writes null for "".
func (s optString) MarshalJSON() ([]byte, error) {
	if s == "" {
		return []byte("null"), nil
	}
	return json.Marshal(string(s))
}

// optInt is a number that is null when 0 (an attempt without an HTTP or SMTP answer).
type optInt int

// MarshalJSON writes null for 0.
func (n optInt) MarshalJSON() ([]byte, error) {
	if n == 0 {
		return []byte("null"), nil
	}
	return json.Marshal(int(n))
}

type notificationJSON struct {
	ID         string    `json:"id"`
	TenantID   string    `json:"tenantId"`
	Channel    string    `json:"channel"`
	Recipient  string    `json:"recipient"`
	EventType  optString `json:"eventType"`
	Subject    string    `json:"subject"`
	BodySize   int64     `json:"bodySize"`
	BodySHA256 string    `json:"bodySha256"`
	// BodyStorage is "inline" or "blob".
	BodyStorage    string     `json:"bodyStorage"`
	Status         string     `json:"status"`
	Attempts       int        `json:"attempts"`
	NextAttemptAt  *time.Time `json:"nextAttemptAt"`
	LastErrorClass optString  `json:"lastErrorClass"`
	CreatedAt      time.Time  `json:"createdAt"`
	UpdatedAt      time.Time  `json:"updatedAt"`
	DeliveredAt    *time.Time `json:"deliveredAt"`
	FailedAt       *time.Time `json:"failedAt"`
	// Body, Attachments and DeliveryLog are on single-notification answers only (a list's items
	// leave them out; the answer to a send leaves out the body); there, an empty list is [].
	Body        *string           `json:"body,omitempty"`
	Attachments *[]attachmentJSON `json:"attachments,omitempty"`
	DeliveryLog *[]attemptJSON    `json:"deliveryLog,omitempty"`
	// Archived is true on a notification read from the archive (older than 90 days; README,
	// "Notification archive"); absent otherwise.
	Archived bool `json:"archived,omitempty"`
}

func toNotificationJSON(n Notification) notificationJSON {
	storage := "inline"
	if n.BodyBlob != "" {
		storage = "blob"
	}
	return notificationJSON{ID: n.ID, TenantID: n.TenantID, Channel: string(n.Channel), Recipient: n.Recipient, EventType: optString(n.EventType),
		Subject: n.Subject, BodySize: n.BodySize, BodySHA256: n.BodySHA256, BodyStorage: storage, Status: string(n.Status),
		Attempts: n.Attempts, NextAttemptAt: n.NextAttemptAt, LastErrorClass: optString(n.LastErrorClass), CreatedAt: n.CreatedAt,
		UpdatedAt: n.UpdatedAt, DeliveredAt: n.DeliveredAt, FailedAt: n.FailedAt}
}

func toDetailJSON(d Detail, body string) notificationJSON {
	out := toNotificationJSON(d.Notification)
	out.Body = &body
	atts := toAttachmentsJSON(d.Attachments)
	out.Attachments = &atts
	log := make([]attemptJSON, 0, len(d.Attempts))
	for _, a := range d.Attempts {
		log = append(log, attemptJSON{Attempt: a.Attempt, AttemptedAt: a.AttemptedAt, StatusCode: optInt(a.StatusCode), LatencyMS: a.LatencyMS,
			ErrorClass: optString(a.ErrorClass)})
	}
	out.DeliveryLog = &log
	return out
}

type endpointJSON struct {
	ID             string     `json:"id"`
	TenantID       string     `json:"tenantId"`
	URL            string     `json:"url"`
	Description    optString  `json:"description"`
	EventTypes     []string   `json:"eventTypes"` // null: every type
	Enabled        bool       `json:"enabled"`
	FailingSince   *time.Time `json:"failingSince"`
	DisabledReason optString  `json:"disabledReason"`
	DisabledAt     *time.Time `json:"disabledAt"`
	// SecretRef is where the signing secret lives (never the secret).
	SecretRef SecretRef `json:"secretRef"`
	Version   int64     `json:"version"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
	// Secret is shown once: in the answer to create and rotate-secret (not in their replays).
	Secret string `json:"secret,omitempty"`
}

func toEndpointJSON(e Endpoint) endpointJSON {
	return endpointJSON{ID: e.ID, TenantID: e.TenantID, URL: e.URL, Description: optString(e.Description), EventTypes: e.EventTypes, Enabled: e.Enabled,
		FailingSince: e.FailingSince, DisabledReason: optString(e.DisabledReason), DisabledAt: e.DisabledAt, SecretRef: e.Secret,
		Version: e.Version, CreatedAt: e.CreatedAt, UpdatedAt: e.UpdatedAt}
}

// ---- handlers ----

type attachmentInJSON struct {
	Name          string `json:"name"`
	ContentType   string `json:"contentType"`
	ContentBase64 string `json:"contentBase64"`
}

type sendJSON struct {
	Channel     string             `json:"channel"`
	Recipient   string             `json:"recipient"`
	EventType   string             `json:"eventType"`
	Subject     string             `json:"subject"`
	Body        string             `json:"body"`
	Attachments []attachmentInJSON `json:"attachments"`
}

func (a *API) send(c echo.Context) error {
	cl, tenant, err := httpx.Target(c)
	if err != nil {
		return err
	}
	var req sendJSON
	if err := httpx.DecodeJSON(c, &req); err != nil {
		return err
	}
	in := SendInput{Channel: Channel(req.Channel), Recipient: req.Recipient, EventType: req.EventType, Subject: req.Subject, Body: req.Body}
	var total int
	for i, at := range req.Attachments {
		total += base64.StdEncoding.DecodedLen(len(at.ContentBase64))
		if total > MaxAttachmentBytes+3 {
			return ErrAttachmentTooLarge
		}
		data, err := base64.StdEncoding.DecodeString(at.ContentBase64)
		if err != nil {
			return invalid("attachments[%d].contentBase64: standard base64", i)
		}
		in.Attachments = append(in.Attachments, AttachmentInput{Name: at.Name, ContentType: at.ContentType, Data: data})
	}
	d, err := a.svc.Send(c.Request().Context(), tenant, in)
	if errors.Is(err, ErrEventTypeNotAccepted) && in.EventType == "" {
		err = fmt.Errorf("%w: %w", errNoEventType, err)
	}
	if err != nil {
		return err
	}
	c.Response().Header().Set("Location", httpx.Location(cl, tenant, "/api/notifications/"+d.ID))
	// The answer (and so an Idempotency-Key's stored record of it) leaves the body out: it is what
	// the caller just sent, up to MaxBodyBytes; GET Location reads it.
	out := toDetailJSON(d, "")
	out.Body = nil
	return c.JSON(http.StatusAccepted, out)
}

// listQuery reads a list's target tenant, limit (default 50, at most 200) and cursor (the id the
// previous page ended on; "" for the first page).
func listQuery(c echo.Context) (tenant tenancy.TenantID, limit int, cursorID string, err error) {
	if _, tenant, err = httpx.Target(c); err != nil {
		return tenant, 0, "", err
	}
	if limit, err = httpx.Limit(c, 50, 200); err != nil {
		return tenant, 0, "", err
	}
	if cur := c.QueryParam("cursor"); cur != "" {
		k, err := httpx.DecodeCursor(cur)
		if err != nil {
			return tenant, 0, "", err
		}
		id, ok := ids.Parse(k)
		if !ok {
			// Well-formed base64 of something else: the same answer as any cursor not issued here.
			return tenant, 0, "", problem.New(http.StatusBadRequest, "invalid-cursor", "The cursor is not one this API issued.")
		}
		cursorID = id
	}
	return tenant, limit, cursorID, nil
}

func (a *API) list(c echo.Context) error {
	tenant, limit, before, err := listQuery(c)
	if err != nil {
		return err
	}
	f := ListFilter{Status: Status(c.QueryParam("status")), Channel: Channel(c.QueryParam("channel")), Recipient: c.QueryParam("recipient")}
	ns, err := a.svc.Notifications(c.Request().Context(), tenant, f, before, limit)
	if err != nil {
		return err
	}
	page := httpx.Page[notificationJSON]{Value: make([]notificationJSON, 0, len(ns))}
	for _, n := range ns {
		page.Value = append(page.Value, toNotificationJSON(n))
	}
	if len(ns) == limit {
		page.NextLink = httpx.NextLink(c, httpx.EncodeCursor(ns[len(ns)-1].ID))
	}
	return c.JSON(http.StatusOK, page)
}

func (a *API) get(c echo.Context) error {
	_, tenant, err := httpx.Target(c)
	if err != nil {
		return err
	}
	id, ok := ids.Parse(c.Param("id"))
	if !ok {
		return ErrNotFound
	}
	d, archived, err := a.svc.NotificationOrArchived(c.Request().Context(), tenant, id)
	if err != nil {
		return onRead(err)
	}
	if archived {
		// The archive's record; a body in Blob is in the archive tier (not served): null.
		out := toDetailJSON(d, d.Body)
		if d.BodyBlob != "" {
			out.Body = nil
		}
		out.Archived = true
		return c.JSON(http.StatusOK, out)
	}
	body, err := a.svc.Body(c.Request().Context(), d.Notification)
	if err != nil {
		return onRead(err)
	}
	return c.JSON(http.StatusOK, toDetailJSON(d, body))
}

func (a *API) attachment(c echo.Context) error {
	_, tenant, err := httpx.Target(c)
	if err != nil {
		return err
	}
	id, ok := ids.Parse(c.Param("id"))
	if !ok {
		return ErrNotFound
	}
	rc, at, err := a.svc.OpenAttachment(c.Request().Context(), tenant, id, c.Param("name"))
	if err != nil {
		return onRead(err)
	}
	defer rc.Close()
	etag := `"sha256-` + at.SHA256 + `"`
	h := c.Response().Header()
	h.Set("ETag", etag)
	h.Set("Digest", "sha-256="+hexToBase64(at.SHA256))
	h.Set("Content-Disposition", `attachment; filename="`+at.Name+`"`)
	h.Set("X-Content-Type-Options", "nosniff")
	if httpx.NoneMatch(c.Request(), etag) {
		return c.NoContent(http.StatusNotModified)
	}
	c.Response().Header().Set("Content-Length", itoa(at.Size))
	c.Response().Header().Set("Content-Type", at.ContentType)
	c.Response().WriteHeader(http.StatusOK)
	_, err = io.Copy(c.Response(), rc)
	return err
}

// endpointInJSON is the body of create and of PATCH (a JSON merge patch, RFC 7396). The members
// stay raw so that absent and null differ (a pointer would read both as nil).
type endpointInJSON struct {
	URL         json.RawMessage `json:"url"`
	Description json.RawMessage `json:"description"`
	EventTypes  json.RawMessage `json:"eventTypes"`
	Enabled     json.RawMessage `json:"enabled"`
}

// input reads the members; absent leaves a member as it is (create: its default). null removes an
// optional member: description (none) and eventTypes (every type). url and enabled, which every
// endpoint has, cannot be removed: null is 400 invalid-input naming the member on a PATCH; on
// create, where nothing is removed, null is as absent (url is then required).
func (r endpointInJSON) input(patch bool) (EndpointInput, error) {
	var in EndpointInput
	var err error
	if patch {
		in.URL, err = httpx.RequiredPatchString("url", r.URL)
	} else {
		in.URL, _, err = httpx.PatchString("url", r.URL)
	}
	if err != nil {
		return in, err
	}
	desc, null, err := httpx.PatchString("description", r.Description)
	if err != nil {
		return in, err
	}
	if null {
		desc = new(string)
	}
	in.Description = desc
	if in.Enabled, err = patchBool("enabled", r.Enabled, patch); err != nil {
		return in, err
	}
	switch strings.TrimSpace(string(r.EventTypes)) {
	case "":
	case "null":
		in.ClearTypes = true
	default:
		var types []string
		if err := json.Unmarshal(r.EventTypes, &types); err != nil {
			return in, invalid("eventTypes: an array of event type strings, or null for every type")
		}
		if types == nil {
			types = []string{}
		}
		in.EventTypes = &types
	}
	return in, nil
}

// patchBool reads a boolean member kept raw: absent is nil; null is nil too, unless required,
// where it is RequiredPatchString's 400 naming the member; anything but true or false is 400.
func patchBool(field string, raw json.RawMessage, required bool) (*bool, error) {
	switch strings.TrimSpace(string(raw)) {
	case "":
		return nil, nil
	case "null":
		if !required {
			return nil, nil
		}
		_, err := httpx.RequiredPatchString(field, raw)
		return nil, err
	}
	var v bool
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, problem.Newf(http.StatusBadRequest, "invalid-json", "Member %q must be true or false.", field).
			WithFields(problem.FieldError{Field: field, Detail: "must be true or false"})
	}
	return &v, nil
}

func (a *API) createEndpoint(c echo.Context) error {
	cl, tenant, err := httpx.Target(c)
	if err != nil {
		return err
	}
	var req endpointInJSON
	if err := httpx.DecodeJSON(c, &req); err != nil {
		return err
	}
	in, err := req.input(false)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	e, secret, err := a.svc.CreateEndpoint(ctx, tenant, in)
	if err != nil {
		return err
	}
	return a.showSecretOnce(c, http.StatusCreated, httpx.Location(cl, tenant, "/api/webhook-endpoints/"+e.ID), e, secret)
}

// showSecretOnce answers e with its secret, and records the Idempotency-Key's replay without it.
func (a *API) showSecretOnce(c echo.Context, status int, location string, e Endpoint, secret string) error {
	out := toEndpointJSON(e)
	replay, err := json.Marshal(out)
	if err != nil {
		return err
	}
	idempotency.ReplayBody(c.Request().Context(), replay)
	out.Secret = secret
	c.Response().Header().Set("Location", location)
	c.Response().Header().Set("Cache-Control", "no-store")
	httpx.SetETag(c, e.Version)
	return c.JSON(status, out)
}

func (a *API) listEndpoints(c echo.Context) error {
	tenant, limit, after, err := listQuery(c)
	if err != nil {
		return err
	}
	es, err := a.svc.Endpoints(c.Request().Context(), tenant, after, limit)
	if err != nil {
		return err
	}
	page := httpx.Page[endpointJSON]{Value: make([]endpointJSON, 0, len(es))}
	for _, e := range es {
		page.Value = append(page.Value, toEndpointJSON(e))
	}
	if len(es) == limit {
		page.NextLink = httpx.NextLink(c, httpx.EncodeCursor(es[len(es)-1].ID))
	}
	return c.JSON(http.StatusOK, page)
}

func (a *API) getEndpoint(c echo.Context) error {
	_, tenant, err := httpx.Target(c)
	if err != nil {
		return err
	}
	e, err := a.svc.Endpoint(c.Request().Context(), tenant, c.Param("id"))
	if err != nil {
		return err
	}
	httpx.SetETag(c, e.Version)
	return c.JSON(http.StatusOK, toEndpointJSON(e))
}

func (a *API) patchEndpoint(c echo.Context) error {
	_, tenant, err := httpx.Target(c)
	if err != nil {
		return err
	}
	ifMatch, err := httpx.IfMatchVersion(c)
	if err != nil {
		return err
	}
	var req endpointInJSON
	if err := httpx.DecodeJSON(c, &req); err != nil {
		return err
	}
	in, err := req.input(true)
	if err != nil {
		return err
	}
	e, err := a.svc.PatchEndpoint(c.Request().Context(), tenant, c.Param("id"), in, ifMatch)
	if err != nil {
		return err
	}
	httpx.SetETag(c, e.Version)
	return c.JSON(http.StatusOK, toEndpointJSON(e))
}

func (a *API) deleteEndpoint(c echo.Context) error {
	_, tenant, err := httpx.Target(c)
	if err != nil {
		return err
	}
	ifMatch, err := httpx.IfMatchVersion(c)
	if err != nil {
		return err
	}
	if err := a.svc.DeleteEndpoint(c.Request().Context(), tenant, c.Param("id"), ifMatch); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (a *API) rotateSecret(c echo.Context) error {
	cl, tenant, err := httpx.Target(c)
	if err != nil {
		return err
	}
	e, secret, err := a.svc.RotateSecret(c.Request().Context(), tenant, c.Param("id"))
	if err != nil {
		return err
	}
	return a.showSecretOnce(c, http.StatusOK, httpx.Location(cl, tenant, "/api/webhook-endpoints/"+e.ID), e, secret)
}
