package billing

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"spine/shared/auth"
	"spine/shared/httpx"
	"spine/shared/idempotency"
	"spine/shared/ids"
	"spine/shared/problem"
	"spine/shared/sqlstore"
)

// Scopes of the billing API: the tenants' scopes, since a subscription is part of the tenant
// (reading it is tenant.read, changing it tenant.manage), and ScopeUsageWrite, the metering
// clients' scope: recording usage is what the platform bills the tenant for, so the tenant does
// not report it itself (POST /api/usage-records needs this scope and a platform token).
const (
	ScopeRead       = "tenant.read"
	ScopeManage     = "tenant.manage"
	ScopeUsageWrite = "billing.usage.write"
)

// API serves the billing routes.
type API struct {
	svc *Service
	db  *sqlstore.DB // the idempotency records' database (the service's own)
}

// NewAPI returns the HTTP API over svc; db is the service's database.
func NewAPI(svc *Service, db *sqlstore.DB) *API { return &API{svc: svc, db: db} }

// Routes implements kit.Service. Tenant-level routes: a tenant token works on its own tenant, a
// platform admin names the tenant with ?tenantId= (httpx.Target). The catalog is readable by
// any caller with tenant.read.
func (a *API) Routes(g *echo.Group) {
	scope := auth.RequireScope
	idem := idempotency.Middleware(a.db)
	g.POST("/subscriptions", a.subscribe, scope(ScopeManage), idem)
	g.GET("/subscriptions", a.listSubscriptions, scope(ScopeRead))
	g.POST("/subscriptions/:id/activate", a.activate, scope(ScopeManage))
	g.POST("/subscriptions/:id/cancel", a.cancel, scope(ScopeManage))
	g.POST("/subscriptions/:id/change-edition", a.changeEdition, scope(ScopeManage))
	g.GET("/editions", a.editions, scope(ScopeRead))
	g.GET("/editions/:code", a.edition, scope(ScopeRead))
	g.PUT("/editions/:code", a.putEdition, scope(ScopeManage))
	g.GET("/entitlements", a.entitlements, scope(ScopeRead))
	g.GET("/invoices", a.listInvoices, scope(ScopeRead))
	g.GET("/invoices/:id", a.invoice, scope(ScopeRead))
	g.POST("/invoices/:id/issue", a.invoiceAction(InvoiceIssued), scope(ScopeManage))
	g.POST("/invoices/:id/pay", a.invoiceAction(InvoicePaid), scope(ScopeManage))
	g.POST("/invoices/:id/void", a.invoiceAction(InvoiceVoid), scope(ScopeManage))
	g.POST("/usage-records", a.postUsage, scope(ScopeUsageWrite))
	g.GET("/usage-records", a.listUsage, scope(ScopeRead))
}

// ---- JSON shapes ----

type moneyJSON struct {
	// AmountMinor is in minor units of Currency (cents for EUR): never a float.
	AmountMinor int64  `json:"amountMinor"`
	Currency    string `json:"currency"`
}

type editionJSON struct {
	Code         string              `json:"code"`
	Name         string              `json:"name"`
	Price        moneyJSON           `json:"price"`
	PeriodMonths int                 `json:"periodMonths"`
	TrialDays    int                 `json:"trialDays"`
	Rank         int                 `json:"rank"`
	Entitlements EditionEntitlements `json:"entitlements"`
	Public       bool                `json:"public"`
}

func toEditionJSON(e Edition) editionJSON {
	return editionJSON{Code: e.Code, Name: e.Name, Price: moneyJSON{e.PriceMinor, e.Currency}, PeriodMonths: e.PeriodMonths,
		TrialDays: e.TrialDays, Rank: e.Rank, Entitlements: e.Entitlements, Public: e.Public}
}

type subscriptionJSON struct {
	ID             string     `json:"id"`
	TenantID       string     `json:"tenantId"`
	EditionCode    string     `json:"editionCode"`
	Status         string     `json:"status"`
	TrialEndsAt    *time.Time `json:"trialEndsAt,omitempty"`
	PeriodStart    time.Time  `json:"currentPeriodStart"`
	PeriodEnd      time.Time  `json:"currentPeriodEnd"`
	PendingEdition string     `json:"pendingEditionCode,omitempty"`
	CancelledAt    *time.Time `json:"cancelledAt,omitempty"`
	CancelReason   string     `json:"cancelReason,omitempty"`
	Version        int64      `json:"version"`
	CreatedAt      time.Time  `json:"createdAt"`
	UpdatedAt      time.Time  `json:"updatedAt"`
}

func toSubscriptionJSON(tenant string, s Subscription) subscriptionJSON {
	return subscriptionJSON{ID: string(s.ID), TenantID: tenant, EditionCode: s.EditionCode, Status: string(s.Status),
		TrialEndsAt: s.TrialEndsAt, PeriodStart: s.PeriodStart, PeriodEnd: s.PeriodEnd, PendingEdition: s.PendingEdition,
		CancelledAt: s.CancelledAt, CancelReason: s.CancelReason, Version: s.Version, CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt}
}

type lineJSON struct {
	No          int    `json:"no"`
	Description string `json:"description"`
	Quantity    int64  `json:"quantity"`
	UnitMinor   int64  `json:"unitMinor"`
	AmountMinor int64  `json:"amountMinor"`
}

type invoiceJSON struct {
	ID          string     `json:"id"`
	Number      string     `json:"number"`
	Status      string     `json:"status"`
	Total       moneyJSON  `json:"total"`
	PeriodStart time.Time  `json:"periodStart"`
	PeriodEnd   time.Time  `json:"periodEnd"`
	CreatedAt   time.Time  `json:"createdAt"`
	IssuedAt    *time.Time `json:"issuedAt,omitempty"`
	PaidAt      *time.Time `json:"paidAt,omitempty"`
	VoidedAt    *time.Time `json:"voidedAt,omitempty"`
	// Lines are present on single-invoice answers, absent in lists.
	Lines *[]lineJSON `json:"lines,omitempty"`
}

func toInvoiceJSON(inv Invoice, withLines bool) invoiceJSON {
	out := invoiceJSON{ID: string(inv.ID), Number: inv.Number, Status: string(inv.Status), Total: moneyJSON{inv.TotalMinor, inv.Currency},
		PeriodStart: inv.PeriodStart, PeriodEnd: inv.PeriodEnd, CreatedAt: inv.CreatedAt, IssuedAt: inv.IssuedAt,
		PaidAt: inv.PaidAt, VoidedAt: inv.VoidedAt}
	if withLines {
		ls := make([]lineJSON, len(inv.Lines))
		for i, l := range inv.Lines {
			ls[i] = lineJSON(l)
		}
		out.Lines = &ls
	}
	return out
}

type limitJSON struct {
	Route         string `json:"route"`
	Rate          int    `json:"rate"`
	Burst         int    `json:"burst"`
	PeriodSeconds int64  `json:"periodSeconds"`
	Shadow        bool   `json:"shadow"`
}

type entitlementsJSON struct {
	TenantID        string                     `json:"tenantId"`
	EditionCode     string                     `json:"editionCode"`
	MaxUsers        int                        `json:"maxUsers"`
	Limits          []limitJSON                `json:"limits"`
	FeatureDefaults map[string]json.RawMessage `json:"featureDefaults"`
	RetentionDays   map[string]int64           `json:"retentionDays"`
}

// ---- handlers ----

// pathID parses the :id path parameter; anything but a canonical id is notFound (a 404, as for
// an id that does not exist).
func pathID(c echo.Context, notFound error) (string, error) {
	id, ok := ids.Parse(c.Param("id"))
	if !ok {
		return "", notFound
	}
	return id, nil
}

func (a *API) subscribe(c echo.Context) error {
	cl, tenant, err := httpx.Target(c)
	if err != nil {
		return err
	}
	var req struct {
		EditionCode string `json:"editionCode"`
	}
	if err := httpx.DecodeJSON(c, &req); err != nil {
		return err
	}
	if !editionCodeRE.MatchString(req.EditionCode) {
		return invalid("editionCode must be the code of an edition of the catalog")
	}
	sub, err := a.svc.Subscribe(c.Request().Context(), cl, tenant, req.EditionCode)
	if err != nil {
		return a.hidePrivate(c, cl, req.EditionCode, err)
	}
	c.Response().Header().Set("Location", httpx.Location(cl, tenant, "/api/subscriptions?tenantId="+tenant.String()))
	httpx.SetETag(c, sub.Version)
	return c.JSON(http.StatusCreated, toSubscriptionJSON(tenant.String(), sub))
}

func (a *API) listSubscriptions(c echo.Context) error {
	cl, tenant, err := httpx.Target(c)
	if err != nil {
		return err
	}
	subs, err := a.svc.Subscriptions(c.Request().Context(), cl, tenant)
	if err != nil {
		return err
	}
	page := httpx.Page[subscriptionJSON]{Value: make([]subscriptionJSON, 0, len(subs))}
	for _, s := range subs {
		page.Value = append(page.Value, toSubscriptionJSON(tenant.String(), s))
	}
	return c.JSON(http.StatusOK, page)
}

func (a *API) activate(c echo.Context) error {
	return a.transition(c, func(c echo.Context, cl Caller, id SubscriptionID, im *int64) (Subscription, error) {
		_, tenant, _ := httpx.Target(c)
		return a.svc.Activate(c.Request().Context(), cl, tenant, id, im)
	})
}

func (a *API) cancel(c echo.Context) error {
	return a.transition(c, func(c echo.Context, cl Caller, id SubscriptionID, im *int64) (Subscription, error) {
		_, tenant, _ := httpx.Target(c)
		var req struct {
			Reason string `json:"reason"`
		}
		if c.Request().ContentLength != 0 {
			if err := httpx.DecodeJSON(c, &req); err != nil {
				return Subscription{}, err
			}
		}
		if len(req.Reason) > 500 {
			return Subscription{}, invalid("reason is longer than 500 bytes")
		}
		return a.svc.Cancel(c.Request().Context(), cl, tenant, id, req.Reason, im)
	})
}

func (a *API) changeEdition(c echo.Context) error {
	return a.transition(c, func(c echo.Context, cl Caller, id SubscriptionID, im *int64) (Subscription, error) {
		_, tenant, _ := httpx.Target(c)
		var req struct {
			EditionCode string `json:"editionCode"`
		}
		if err := httpx.DecodeJSON(c, &req); err != nil {
			return Subscription{}, err
		}
		if !editionCodeRE.MatchString(req.EditionCode) {
			return Subscription{}, invalid("editionCode must be the code of an edition of the catalog")
		}
		sub, err := a.svc.ChangeEdition(c.Request().Context(), cl, tenant, id, req.EditionCode, im)
		if err != nil {
			return Subscription{}, a.hidePrivate(c, cl, req.EditionCode, err)
		}
		return sub, nil
	})
}

// hidePrivate keeps private editions undiscoverable: a tenant's ErrEditionNotPublic on an edition
// it does not see (EditionFor: neither public nor its live subscription's current or pending
// edition) becomes ErrEditionNotFound, the answer to an unknown code, so subscribe and
// change-edition tell a tenant no more than GET /api/editions/{code} does. Any other error, and
// ErrEditionNotPublic on an edition the tenant sees, is returned as it is.
func (a *API) hidePrivate(c echo.Context, cl Caller, code string, err error) error {
	if !errors.Is(err, ErrEditionNotPublic) {
		return err
	}
	if _, ferr := a.svc.EditionFor(c.Request().Context(), cl, code); errors.Is(ferr, ErrEditionNotFound) {
		return ErrEditionNotFound
	} else if ferr != nil {
		return ferr
	}
	return err
}

// transition is the frame of the subscription's POST actions: the target, the id, If-Match, the
// answer (200 with the subscription and its ETag).
func (a *API) transition(c echo.Context, do func(echo.Context, Caller, SubscriptionID, *int64) (Subscription, error)) error {
	cl, tenant, err := httpx.Target(c)
	if err != nil {
		return err
	}
	id, err := pathID(c, ErrSubscriptionNotFound)
	if err != nil {
		return err
	}
	im, err := httpx.IfMatchVersion(c)
	if err != nil {
		return err
	}
	sub, err := do(c, cl, SubscriptionID(id), im)
	if err != nil {
		return err
	}
	httpx.SetETag(c, sub.Version)
	return c.JSON(http.StatusOK, toSubscriptionJSON(tenant.String(), sub))
}

func (a *API) editions(c echo.Context) error {
	cl, err := httpx.CallerOf(c)
	if err != nil {
		return err
	}
	es, err := a.svc.EditionsFor(c.Request().Context(), cl)
	if err != nil {
		return err
	}
	page := httpx.Page[editionJSON]{Value: make([]editionJSON, 0, len(es))}
	for _, e := range es {
		page.Value = append(page.Value, toEditionJSON(e))
	}
	return c.JSON(http.StatusOK, page)
}

func (a *API) edition(c echo.Context) error {
	cl, err := httpx.CallerOf(c)
	if err != nil {
		return err
	}
	e, err := a.svc.EditionFor(c.Request().Context(), cl, c.Param("code"))
	if err != nil {
		return err
	}
	httpx.SetETag(c, e.Version)
	return c.JSON(http.StatusOK, toEditionJSON(e))
}

func (a *API) entitlements(c echo.Context) error {
	cl, tenant, err := httpx.Target(c)
	if err != nil {
		return err
	}
	if err := cl.Reaches(tenant); err != nil {
		return err
	}
	g, err := a.svc.Source().Of(c.Request().Context(), tenant)
	if err != nil {
		return err
	}
	out := entitlementsJSON{TenantID: tenant.String(), EditionCode: g.Edition, MaxUsers: g.MaxUsers,
		Limits: make([]limitJSON, 0, len(g.Limits)), FeatureDefaults: g.FeatureDefaults, RetentionDays: map[string]int64{}}
	for _, l := range g.Limits {
		out.Limits = append(out.Limits, limitJSON{l.Route, l.Rate, l.Burst, int64(l.Period / time.Second), l.Shadow})
	}
	if out.FeatureDefaults == nil {
		out.FeatureDefaults = map[string]json.RawMessage{}
	}
	for k, d := range g.Retention {
		out.RetentionDays[k] = int64(d / (24 * time.Hour))
	}
	return c.JSON(http.StatusOK, out)
}

func (a *API) listInvoices(c echo.Context) error {
	cl, tenant, err := httpx.Target(c)
	if err != nil {
		return err
	}
	limit, err := httpx.Limit(c, 50, 200)
	if err != nil {
		return err
	}
	var after InvoiceID
	if cur := c.QueryParam("cursor"); cur != "" {
		k, err := httpx.DecodeCursor(cur)
		if err != nil {
			return err
		}
		id, ok := ids.Parse(k)
		if !ok {
			return problem.New(http.StatusBadRequest, "invalid-cursor", "The cursor is not one this API issued.")
		}
		after = InvoiceID(id)
	}
	invs, err := a.svc.Invoices(c.Request().Context(), cl, tenant, after, limit+1)
	if err != nil {
		return err
	}
	page := httpx.Page[invoiceJSON]{Value: make([]invoiceJSON, 0, len(invs))}
	if len(invs) > limit {
		invs = invs[:limit]
		page.NextLink = httpx.NextLink(c, httpx.EncodeCursor(string(invs[len(invs)-1].ID)))
	}
	for _, inv := range invs {
		page.Value = append(page.Value, toInvoiceJSON(inv, false))
	}
	return c.JSON(http.StatusOK, page)
}

func (a *API) invoice(c echo.Context) error {
	cl, tenant, err := httpx.Target(c)
	if err != nil {
		return err
	}
	id, err := pathID(c, ErrInvoiceNotFound)
	if err != nil {
		return err
	}
	inv, err := a.svc.Invoice(c.Request().Context(), cl, tenant, InvoiceID(id))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toInvoiceJSON(inv, true))
}
