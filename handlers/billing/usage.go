package billing

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"spine/shared/httpx"
	"spine/shared/ids"
	"spine/shared/problem"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
)

// UsageInput is a metered quantity a reporter sends: ID is the reporter's idempotency key (a
// UUID), At when the usage happened (zero: now; otherwise from 2000-01-01T00:00:00Z to a day
// after now, ErrInvalidUsageTime beyond).
type UsageInput struct {
	ID       string
	Metric   string
	Quantity int64
	At       time.Time
}

// usageEpoch and usageLead bound a usage time: not before 2000-01-01T00:00:00Z, not more than
// a day after now (a reporter's clock may run ahead; a time beyond is a client bug, not usage).
var usageEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

const usageLead = 24 * time.Hour

// usageTimeValid reports whether at is within [usageEpoch, now + usageLead].
func usageTimeValid(at, now time.Time) bool {
	return !at.Before(usageEpoch) && !at.After(now.Add(usageLead))
}

// sameUsage reports whether a stored record is what in asks for: the same metric and quantity,
// and the same time when in names one (a retry without "at" matches the stored time).
func sameUsage(u UsageRecord, in UsageInput) bool {
	return u.Metric == in.Metric && u.Quantity == in.Quantity && (in.At.IsZero() || u.RecordedAt.Equal(in.At.UTC().Truncate(time.Microsecond)))
}

// RecordUsage records a metered quantity of the tenant into its live subscription's current
// period, for a metering client (a platform caller: tenancy.ErrPlatformAdminRequired otherwise —
// the billed tenant does not report its own usage), idempotent on in.ID: the first call stores it (true), a repeat with the same content
// returns the stored record (false), a repeat with other content is ErrUsageIDConflict. A tenant
// without a live subscription is ErrUsageNeedsSubscription. Usage is money: nothing deletes it.
func (s *Service) RecordUsage(ctx context.Context, c Caller, tenant tenancy.TenantID, in UsageInput) (UsageRecord, bool, error) {
	id, ok := ids.Parse(in.ID)
	if !ok {
		return UsageRecord{}, false, invalid("usageId must be a UUID")
	}
	in.ID = id
	if !metricRE.MatchString(in.Metric) {
		return UsageRecord{}, false, invalid("metric must match ^[a-z][a-z0-9._-]{0,63}$")
	}
	if in.Quantity < 0 || in.Quantity > maxMinor {
		return UsageRecord{}, false, invalid("quantity must be an integer from 0 to 9007199254740991")
	}
	if !in.At.IsZero() && !usageTimeValid(in.At, s.cfg.Now()) {
		return UsageRecord{}, false, ErrInvalidUsageTime
	}
	if err := c.RequirePlatform(); err != nil {
		return UsageRecord{}, false, err
	}
	if err := s.writable(ctx, c, tenant); err != nil {
		return UsageRecord{}, false, err
	}
	var out UsageRecord
	var created bool
	err := s.store.Write(ctx, sqlstore.TenantScope(tenant), tenant, func(tx *Tx) error {
		created = false
		prior, err := tx.Usage(ctx, in.ID)
		if err == nil {
			if !sameUsage(prior, in) {
				return ErrUsageIDConflict
			}
			out = prior
			return nil
		}
		if !errors.Is(err, sqlstore.ErrNotFound) {
			return err
		}
		// Locked so that a renewal summing the period waits for this record, or this record for
		// the renewal (and then goes into the new period): no usage falls between the two.
		sub, err := tx.ShareLiveSubscription(ctx)
		if errors.Is(err, ErrNoSubscription) {
			return ErrUsageNeedsSubscription
		}
		if err != nil {
			return err
		}
		if sub, err = s.rolled(ctx, tx, sub); err != nil {
			return err
		}
		at := in.At
		if at.IsZero() {
			at = s.cfg.Now()
		}
		if err := s.checkUsageTotal(ctx, tx, sub, in); err != nil {
			return err
		}
		u := UsageRecord{ID: in.ID, Metric: in.Metric, Quantity: in.Quantity, PeriodStart: sub.PeriodStart,
			RecordedAt: at.UTC().Truncate(time.Microsecond)}
		fresh, err := tx.RecordUsage(ctx, u)
		if err != nil {
			return err
		}
		if !fresh { // a concurrent request with this id committed first
			if prior, err = tx.Usage(ctx, in.ID); err != nil {
				return err
			}
			if !sameUsage(prior, in) {
				return ErrUsageIDConflict
			}
			out = prior
			return nil
		}
		out, created = u, true
		return nil
	})
	return out, created, err
}

// UsagePage is a page of usage records and the totals per metric of every record the filter
// selects (all pages).
type UsagePage struct {
	Records []UsageRecord
	Totals  map[string]int64
	More    bool
}

// Usage returns the tenant's usage records of f, limit per page after the cursor (id order), and
// the totals per metric over every page.
func (s *Service) Usage(ctx context.Context, c Caller, tenant tenancy.TenantID, f UsageFilter, after string, limit int) (UsagePage, error) {
	if err := c.Reaches(tenant); err != nil {
		return UsagePage{}, err
	}
	var p UsagePage
	err := s.store.Read(ctx, sqlstore.TenantScope(tenant), tenant, func(tx *Tx) error {
		recs, err := tx.ListUsage(ctx, f, after, limit+1)
		if err != nil {
			return err
		}
		if p.More = len(recs) > limit; p.More {
			recs = recs[:limit]
		}
		p.Records = recs
		p.Totals, err = tx.UsageTotals(ctx, f)
		return err
	})
	return p, err
}

// ---- HTTP ----

type usageJSON struct {
	UsageID     string    `json:"usageId"`
	TenantID    string    `json:"tenantId"`
	Metric      string    `json:"metric"`
	Quantity    int64     `json:"quantity"`
	At          time.Time `json:"at"`
	PeriodStart time.Time `json:"periodStart"`
}

func toUsageJSON(tenant tenancy.TenantID, u UsageRecord) usageJSON {
	return usageJSON{UsageID: u.ID, TenantID: tenant.String(), Metric: u.Metric, Quantity: u.Quantity, At: u.RecordedAt,
		PeriodStart: u.PeriodStart}
}

type usagePageJSON struct {
	Value []usageJSON `json:"value"`
	// Totals are per metric over every record the filter selects, not only this page's.
	Totals   map[string]int64 `json:"totals"`
	NextLink string           `json:"nextLink,omitempty"`
}

// postUsage serves POST /api/usage-records (metering clients: ScopeUsageWrite on a platform
// token; a tenant's token is 403 platform-admin-required): 201 for a new record, 200 with the
// stored record for a repeat of the same content.
func (a *API) postUsage(c echo.Context) error {
	cl, err := httpx.CallerOf(c)
	if err != nil {
		return err
	}
	if err := cl.RequirePlatform(); err != nil {
		return err
	}
	var req struct {
		UsageID string `json:"usageId"`
		Metric  string `json:"metric"`
		// Quantity is raw JSON so that only an integer literal is read (wholeNumber): a
		// string, a fraction, an exponent or -0 is invalid-input, not a number.
		Quantity json.RawMessage `json:"quantity"`
		// At: nil (missing or null) is now; anything sent is read as sent (invalid-time when it
		// is not an RFC 3339 time within usageTimeValid's bounds), never replaced.
		At       *string `json:"at"`
		TenantID string  `json:"tenantId"`
	}
	if err := httpx.DecodeJSON(c, &req); err != nil {
		return err
	}
	// A platform caller names the tenant in the body (or, like on every other billing route,
	// with ?tenantId=); naming two different tenants is 400 tenant-conflict, never one of them.
	tenant := cl.Tenant
	named := false
	for _, raw := range []string{req.TenantID, c.QueryParam("tenantId")} {
		if raw == "" {
			continue
		}
		t, err := tenancy.ParseTenantID(raw)
		if err != nil {
			return problem.New(http.StatusBadRequest, "invalid-tenant-id", "tenantId must be a tenant id (a UUID in canonical form).").
				WithFields(problem.FieldError{Field: "tenantId", Detail: "not a tenant id"})
		}
		if named && t != tenant {
			return problem.New(http.StatusBadRequest, "tenant-conflict", "The body's tenantId and ?tenantId= name different tenants; name one (or the same in both).").
				WithFields(problem.FieldError{Field: "tenantId", Detail: "differs from ?tenantId="})
		}
		tenant, named = t, true
	}
	if !named && cl.Platform {
		return problem.New(http.StatusBadRequest, "tenant-required", "A platform-admin token must name the tenant: add tenantId to the body.").
			WithFields(problem.FieldError{Field: "tenantId", Detail: "required"})
	}
	qty, present, ok := wholeNumber(req.Quantity, 0, maxMinor)
	if !present {
		return invalid("quantity is required (a JSON integer from 0 to 9007199254740991)")
	}
	if !ok {
		return invalid("quantity must be a JSON integer from 0 to 9007199254740991 (no string, fraction nor exponent)")
	}
	in := UsageInput{ID: req.UsageID, Metric: req.Metric, Quantity: qty}
	if req.At != nil {
		if in.At, err = httpx.ParseTime(*req.At); err != nil {
			return problem.New(http.StatusBadRequest, "invalid-time", "at must be an RFC 3339 time, e.g. 2026-01-31T23:00:00Z.").
				WithFields(problem.FieldError{Field: "at", Detail: "not an RFC 3339 time"})
		}
		if in.At.IsZero() { // 0001-01-01T00:00:00Z is a time sent, not "now"
			return ErrInvalidUsageTime
		}
	}
	u, created, err := a.svc.RecordUsage(c.Request().Context(), cl, tenant, in)
	if err != nil {
		return err
	}
	if created {
		return c.JSON(http.StatusCreated, toUsageJSON(tenant, u))
	}
	return c.JSON(http.StatusOK, toUsageJSON(tenant, u))
}

// listUsage serves GET /api/usage-records?metric=&from=&to=&limit=&cursor= (a platform admin adds
// ?tenantId=).
func (a *API) listUsage(c echo.Context) error {
	cl, tenant, err := httpx.Target(c)
	if err != nil {
		return err
	}
	f := UsageFilter{Metric: c.QueryParam("metric"), From: httpx.MinTime, To: httpx.MaxTime}
	if f.Metric != "" && !metricRE.MatchString(f.Metric) {
		return invalid("metric must match ^[a-z][a-z0-9._-]{0,63}$")
	}
	if t, err := httpx.TimeParam(c, "from"); err != nil {
		return err
	} else if !t.IsZero() {
		f.From = t
	}
	if t, err := httpx.TimeParam(c, "to"); err != nil {
		return err
	} else if !t.IsZero() {
		f.To = t
	}
	limit, err := httpx.Limit(c, 100, 1000)
	if err != nil {
		return err
	}
	var after string
	if cur := c.QueryParam("cursor"); cur != "" {
		k, err := httpx.DecodeCursor(cur)
		if err != nil {
			return err
		}
		id, ok := ids.Parse(k)
		if !ok {
			return problem.New(http.StatusBadRequest, "invalid-cursor", "The cursor is not one this API issued.")
		}
		after = id
	}
	p, err := a.svc.Usage(c.Request().Context(), cl, tenant, f, after, limit)
	if err != nil {
		return err
	}
	out := usagePageJSON{Value: make([]usageJSON, 0, len(p.Records)), Totals: p.Totals}
	for _, u := range p.Records {
		out.Value = append(out.Value, toUsageJSON(tenant, u))
	}
	if p.More {
		out.NextLink = httpx.NextLink(c, httpx.EncodeCursor(p.Records[len(p.Records)-1].ID))
	}
	return c.JSON(http.StatusOK, out)
}

// checkUsageTotal refuses (ErrTotalTooLarge) usage that would take the invoice closing sub's
// period, or the metric's quantity in it, beyond maxMinor: the period's usage priced by the
// edition in force, plus the dearer of its price and a pending downgrade's (the next period's).
// Two records of one tenant at once may both pass near the bound on PostgreSQL (the row is locked
// FOR SHARE, which does not serialize usage per tenant); the renewal then refuses the invoice with
// the same error (and backs off: Renewals).
func (s *Service) checkUsageTotal(ctx context.Context, tx *Tx, sub Subscription, in UsageInput) error {
	e, err := tx.Edition(ctx, sub.EditionCode)
	if err != nil {
		return err
	}
	price := e.PriceMinor
	if sub.PendingEdition != "" {
		p, err := tx.Edition(ctx, sub.PendingEdition)
		if err != nil {
			return err
		}
		price = max(price, p.PriceMinor)
	}
	return checkPeriodTotal(ctx, tx, sub.PeriodStart, price, e.Entitlements.UsagePrices, in.Metric, in.Quantity)
}
