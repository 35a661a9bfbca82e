package notifications

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"spine/shared/auth"
	"spine/shared/httpx"
	"spine/shared/idempotency"
	"spine/shared/ids"
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
	StatusCode  int       `json:"statusCode,omitempty"`
	LatencyMS   int       `json:"latencyMs"`
	ErrorClass  string    `json:"errorClass,omitempty"`
}

type notificationJSON struct {
	ID         string `json:"id"`
	TenantID   string `json:"tenantId"`
	Channel    string `json:"channel"`
	Recipient  string `json:"recipient"`
	EventType  string `json:"eventType,omitempty"`
	Subject    string `json:"subject"`
	BodySize   int64  `json:"bodySize"`
	BodySHA256 string `json:"bodySha256"`
	// BodyStorage is "inline" or "blob".
	BodyStorage    string     `json:"bodyStorage"`
	Status         string     `json:"status"`
	Attempts       int        `json:"attempts"`
	NextAttemptAt  *time.Time `json:"nextAttemptAt,omitempty"`
	LastErrorClass string     `json:"lastErrorClass,omitempty"`
	CreatedAt      time.Time  `json:"createdAt"`
	UpdatedAt      time.Time  `json:"updatedAt"`
	DeliveredAt    *time.Time `json:"deliveredAt,omitempty"`
	FailedAt       *time.Time `json:"failedAt,omitempty"`
	// Body, Attachments and DeliveryLog are on single-notification answers only.
	Body        *string          `json:"body,omitempty"`
	Attachments []attachmentJSON `json:"attachments,omitempty"`
	DeliveryLog *[]attemptJSON   `json:"deliveryLog,omitempty"`
}

func toNotificationJSON(n Notification) notificationJSON {
	storage := "inline"
	if n.BodyBlob != "" {
		storage = "blob"
	}
	return notificationJSON{ID: n.ID, TenantID: n.TenantID, Channel: string(n.Channel), Recipient: n.Recipient, EventType: n.EventType,
		Subject: n.Subject, BodySize: n.BodySize, BodySHA256: n.BodySHA256, BodyStorage: storage, Status: string(n.Status),
		Attempts: n.Attempts, NextAttemptAt: n.NextAttemptAt, LastErrorClass: n.LastErrorClass, CreatedAt: n.CreatedAt,
		UpdatedAt: n.UpdatedAt, DeliveredAt: n.DeliveredAt, FailedAt: n.FailedAt}
}

func toDetailJSON(d Detail, body string) notificationJSON {
	out := toNotificationJSON(d.Notification)
	out.Body = &body
	out.Attachments = toAttachmentsJSON(d.Attachments)
	log := make([]attemptJSON, 0, len(d.Attempts))
	for _, a := range d.Attempts {
		log = append(log, attemptJSON(a))
	}
	out.DeliveryLog = &log
	return out
}

type endpointJSON struct {
	ID             string     `json:"id"`
	TenantID       string     `json:"tenantId"`
	URL            string     `json:"url"`
	Description    string     `json:"description"`
	EventTypes     []string   `json:"eventTypes"`
	Enabled        bool       `json:"enabled"`
	FailingSince   *time.Time `json:"failingSince,omitempty"`
	DisabledReason string     `json:"disabledReason,omitempty"`
	DisabledAt     *time.Time `json:"disabledAt,omitempty"`
	// SecretRef is where the signing secret lives (never the secret).
	SecretRef SecretRef `json:"secretRef"`
	Version   int64     `json:"version"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
	// Secret is shown once: in the answer to create and rotate-secret (not in their replays).
	Secret string `json:"secret,omitempty"`
}

func toEndpointJSON(e Endpoint) endpointJSON {
	return endpointJSON{ID: e.ID, TenantID: e.TenantID, URL: e.URL, Description: e.Description, EventTypes: e.EventTypes, Enabled: e.Enabled,
		FailingSince: e.FailingSince, DisabledReason: e.DisabledReason, DisabledAt: e.DisabledAt, SecretRef: e.Secret,
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
			return tenant, 0, "", invalid("cursor: not one this API issued")
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
	d, err := a.svc.Notification(c.Request().Context(), tenant, id)
	if err != nil {
		return err
	}
	body, err := a.svc.Body(c.Request().Context(), d.Notification)
	if err != nil {
		return err
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
		return err
	}
	defer rc.Close()
	etag := `"sha256-` + at.SHA256 + `"`
	h := c.Response().Header()
	h.Set("ETag", etag)
	h.Set("Digest", "sha-256="+hexToBase64(at.SHA256))
	h.Set("Content-Disposition", `attachment; filename="`+at.Name+`"`)
	h.Set("X-Content-Type-Options", "nosniff")
	if c.Request().Header.Get("If-None-Match") == etag {
		return c.NoContent(http.StatusNotModified)
	}
	c.Response().Header().Set("Content-Length", itoa(at.Size))
	c.Response().Header().Set("Content-Type", at.ContentType)
	c.Response().WriteHeader(http.StatusOK)
	_, err = io.Copy(c.Response(), rc)
	return err
}

type endpointInJSON struct {
	URL         *string          `json:"url"`
	Description *string          `json:"description"`
	EventTypes  *json.RawMessage `json:"eventTypes"`
	Enabled     *bool            `json:"enabled"`
}

func (r endpointInJSON) input() (EndpointInput, error) {
	in := EndpointInput{URL: r.URL, Description: r.Description, Enabled: r.Enabled}
	if r.EventTypes != nil {
		if string(*r.EventTypes) == "null" {
			in.ClearTypes = true
		} else {
			var types []string
			if err := json.Unmarshal(*r.EventTypes, &types); err != nil {
				return in, invalid("eventTypes: an array of event type strings, or null for every type")
			}
			if types == nil {
				types = []string{}
			}
			in.EventTypes = &types
		}
	}
	return in, nil
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
	in, err := req.input()
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
	in, err := req.input()
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
