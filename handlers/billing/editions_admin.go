package billing

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/labstack/echo/v4"
	"golang.org/x/text/currency"

	"spine/shared/cache"
	"spine/shared/httpx"
	"spine/shared/problem"
	"spine/shared/text"
)

// ErrInvalidEdition is an edition the catalog refuses; the error is an *EditionError naming the
// problem code and the field.
var ErrInvalidEdition = errors.New("billing: invalid edition")

// EditionError is a refused edition: Code is the stable problem code (invalid-edition-code,
// invalid-name, invalid-price, invalid-currency, invalid-period, invalid-trial, invalid-rank, invalid-max-users,
// invalid-limit, invalid-route, duplicate-route, invalid-feature-default, invalid-retention,
// invalid-usage-price), Field the JSON path of the offending value.
type EditionError struct {
	Code, Field, Detail string
}

func (e *EditionError) Error() string {
	return fmt.Sprintf("billing: %s: %s: %s", e.Code, e.Field, e.Detail)
}

// Unwrap makes every EditionError an ErrInvalidEdition.
func (e *EditionError) Unwrap() error { return ErrInvalidEdition }

func editionErr(code, field, format string, args ...any) error {
	return &EditionError{Code: code, Field: field, Detail: fmt.Sprintf(format, args...)}
}

// editionProblem maps an EditionError to its 400 problem.
func editionProblem(err error) *problem.Problem {
	var ee *EditionError
	if !errors.As(err, &ee) {
		return nil
	}
	return problem.New(http.StatusBadRequest, ee.Code, "The edition is refused: "+ee.Field+" "+ee.Detail+".").
		WithFields(problem.FieldError{Field: ee.Field, Detail: ee.Detail})
}

var (
	currencyRE = regexp.MustCompile(`^[A-Z]{3}$`)
	// routeTemplateRE is an echo route template under /api: literal segments and :params.
	routeTemplateRE = regexp.MustCompile(`^/api(/([a-z0-9][a-z0-9._-]*|:[a-zA-Z][a-zA-Z0-9_]*))+$`)
	// metricRE is usage_records.metric's CHECK.
	metricRE     = regexp.MustCompile(`^[a-z][a-z0-9._-]{0,63}$`)
	dataKindRE   = regexp.MustCompile(`^[a-z][a-z0-9._-]{0,63}$`)
	flagKeyRE    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
	maxLimitRate = 1 << 30
	// maxRank bounds rank well inside editions.rank's 32-bit integer column.
	maxRank = 1_000_000_000
	// maxMaxUsers bounds entitlements.maxUsers; maxLimits the limits of an edition (each is a
	// rate-limit key per tenant); maxEntries featureDefaults, retentionDays and usagePrices each.
	maxMaxUsers = 1_000_000
	maxLimits   = 100
	maxEntries  = 1000
)

// isCurrency reports whether c is an ISO 4217 currency code in capitals (golang.org/x/text's
// table), other than XXX (no currency) and XTS (reserved for tests).
func isCurrency(c string) bool {
	if !currencyRE.MatchString(c) || c == "XXX" || c == "XTS" {
		return false
	}
	u, err := currency.ParseISO(c)
	return err == nil && u.String() == c
}

// ValidateEdition checks e as the catalog accepts it: the code of the table's CHECK, a name of 1
// to 200 characters on one line (text.CheckLine, not blank), a price of 0..maxMinor minor units
// of an ISO 4217 currency (isCurrency), 1..12 period months, 0..365 trial days, a rank within
// ±1,000,000,000, maxUsers 0..1,000,000, at most 100 limits with rate ≥ 1, burst ≥ 1,
// periodSeconds 1..86400 and a route "" or an /api/ route template, each route once, one of them
// tenant-wide (route ""), and at most
// 1000 each of feature defaults, retention days (1..36500) and usage prices (0..maxMinor on
// metric names). The first fault is an *EditionError.
func ValidateEdition(e Edition) error {
	if !editionCodeRE.MatchString(e.Code) {
		return editionErr("invalid-edition-code", "code", "must match ^[a-z][a-z0-9-]{1,31}$")
	}
	if n := utf8.RuneCountInString(e.Name); n < 1 || n > 200 || strings.TrimSpace(e.Name) == "" || text.CheckLine(e.Name) != nil {
		return editionErr("invalid-name", "name", "must be one line of 1 to 200 characters, not blank, without control characters")
	}
	if e.PriceMinor < 0 || e.PriceMinor > maxMinor {
		return editionErr("invalid-price", "price.amountMinor", "must be an integer from 0 to %d (minor units)", int64(maxMinor))
	}
	if !isCurrency(e.Currency) {
		return editionErr("invalid-currency", "price.currency", "must be an ISO 4217 currency code in capitals, such as EUR")
	}
	if e.PeriodMonths < 1 || e.PeriodMonths > 12 {
		return editionErr("invalid-period", "periodMonths", "must be 1 to 12")
	}
	if e.TrialDays < 0 || e.TrialDays > 365 {
		return editionErr("invalid-trial", "trialDays", "must be 0 to 365")
	}
	// editions.rank is a 32-bit integer column: a larger value must be a 400, not a driver error.
	if e.Rank < -maxRank || e.Rank > maxRank {
		return editionErr("invalid-rank", "rank", "must be an integer from -%d to %d", maxRank, maxRank)
	}
	ent := e.Entitlements
	if ent.MaxUsers < 0 || ent.MaxUsers > maxMaxUsers {
		return editionErr("invalid-max-users", "entitlements.maxUsers", "must be 0 (unlimited) to %d", maxMaxUsers)
	}
	switch {
	case len(ent.Limits) > maxLimits:
		return editionErr("invalid-limit", "entitlements.limits", "must hold at most %d limits", maxLimits)
	case len(ent.FeatureDefaults) > maxEntries:
		return editionErr("invalid-feature-default", "entitlements.featureDefaults", "must hold at most %d flags", maxEntries)
	case len(ent.RetentionDays) > maxEntries:
		return editionErr("invalid-retention", "entitlements.retentionDays", "must hold at most %d data kinds", maxEntries)
	case len(ent.UsagePrices) > maxEntries:
		return editionErr("invalid-usage-price", "entitlements.usagePrices", "must hold at most %d metrics", maxEntries)
	}
	seen := map[string]bool{}
	for i, l := range ent.Limits {
		f := fmt.Sprintf("entitlements.limits[%d]", i)
		switch {
		case l.Rate < 1 || l.Rate > maxLimitRate:
			return editionErr("invalid-limit", f+".rate", "must be ≥ 1")
		case l.Burst < 1 || l.Burst > maxLimitRate:
			return editionErr("invalid-limit", f+".burst", "must be ≥ 1")
		case l.PeriodSeconds < 1 || l.PeriodSeconds > 86400:
			return editionErr("invalid-limit", f+".periodSeconds", "must be 1 to 86400")
		case l.Route != "" && (len(l.Route) > 200 || !routeTemplateRE.MatchString(l.Route)):
			return editionErr("invalid-route", f+".route", `must be "" (tenant-wide) or a route template starting with /api/`)
		case seen[l.Route]:
			return editionErr("duplicate-route", f+".route", "names a route another limit names")
		}
		seen[l.Route] = true
	}
	// Every edition limits a tenant as a whole: the catalog says so rather than leaving it to the
	// rate limiter's fallback.
	if !seen[""] {
		return editionErr("invalid-limit", "entitlements.limits", `must hold a tenant-wide limit (route "")`)
	}
	for k, v := range ent.FeatureDefaults {
		if !flagKeyRE.MatchString(k) || !json.Valid(v) {
			return editionErr("invalid-feature-default", "entitlements.featureDefaults."+k, "must be a flag key with a JSON value")
		}
	}
	for k, d := range ent.RetentionDays {
		if !dataKindRE.MatchString(k) || d < 1 || d > 36500 {
			return editionErr("invalid-retention", "entitlements.retentionDays."+k, "must be a data kind with 1 to 36500 days")
		}
	}
	for m, p := range ent.UsagePrices {
		if !metricRE.MatchString(m) || p < 0 || p > maxMinor {
			return editionErr("invalid-usage-price", "entitlements.usagePrices."+m, "must be a metric name with an integer unit price from 0 to %d (minor units)", int64(maxMinor))
		}
	}
	return nil
}

// PutEdition creates or replaces the catalog's edition e.Code (platform admins only:
// tenancy.ErrPlatformAdminRequired otherwise) and reports whether it created it. ifMatch, when
// set, must be the stored version (ErrVersionMismatch). After the commit the edition's cached
// grants are invalidated (Redis and every instance's local copy, cache.Invalidate); tenants'
// cached entitlements refer to editions by code, so they see the change at the same time.
func (s *Service) PutEdition(ctx context.Context, c Caller, e Edition, ifMatch *int64) (Edition, bool, error) {
	if err := c.RequirePlatform(); err != nil {
		return Edition{}, false, err
	}
	if err := ValidateEdition(e); err != nil {
		return Edition{}, false, err
	}
	e.UpdatedAt = s.cfg.Now()
	out, created, err := s.store.PutEdition(ctx, e, ifMatch)
	if err != nil {
		return Edition{}, false, err
	}
	s.cache.Invalidate(context.WithoutCancel(ctx), editionKey(e.Code))
	return out, created, nil
}

// editionKey is the cache key of an edition's grants.
func editionKey(code string) string { return cache.PlatformKey(service, "edition", code) }

// putEditionJSON is PUT /api/editions/{code}'s body: the representation GET /api/editions/{code}
// returns (editionJSON), so a client may GET, edit and PUT it back. code is read-only: it may be
// sent and must then equal the path's code. Money amounts are raw JSON so that only a JSON
// integer is accepted (a string "100", a fraction 49.5 or an exponent 1e3 is invalid-price
// rather than read as a number).
type putEditionJSON struct {
	Code         string              `json:"code"`
	Name         string              `json:"name"`
	Price        putMoneyJSON        `json:"price"`
	PeriodMonths int                 `json:"periodMonths"`
	TrialDays    int                 `json:"trialDays"`
	Rank         int                 `json:"rank"`
	Entitlements putEntitlementsJSON `json:"entitlements"`
	// Public: nil keeps a replaced edition's value and makes a new one private.
	Public *bool `json:"public"`
}

type putMoneyJSON struct {
	AmountMinor json.RawMessage `json:"amountMinor"`
	Currency    string          `json:"currency"`
}

type putEntitlementsJSON struct {
	MaxUsers        int                        `json:"maxUsers"`
	Limits          []LimitJSON                `json:"limits"`
	FeatureDefaults map[string]json.RawMessage `json:"featureDefaults"`
	RetentionDays   map[string]int             `json:"retentionDays"`
	UsagePrices     map[string]json.RawMessage `json:"usagePrices"`
}

// minorUnits parses an amount of minor units sent as a JSON integer: a string, a fraction, an
// exponent, null or a value beyond int64 is refused (the range is ValidateEdition's).
func minorUnits(raw json.RawMessage) (int64, bool) {
	v, err := strconv.ParseInt(string(bytes.TrimSpace(raw)), 10, 64)
	return v, err == nil
}

// toEdition turns the body into an Edition of code, refusing money that is not a JSON integer.
func (b putEditionJSON) toEdition(code string) (Edition, error) {
	if b.Code != "" && b.Code != code {
		return Edition{}, editionErr("invalid-edition-code", "code", "must equal the path's code")
	}
	price, ok := minorUnits(b.Price.AmountMinor)
	if !ok {
		return Edition{}, editionErr("invalid-price", "price.amountMinor", "must be a JSON integer ≥ 0 (minor units)")
	}
	e := Edition{Code: code, Name: b.Name, PriceMinor: price, Currency: b.Price.Currency, PeriodMonths: b.PeriodMonths,
		TrialDays: b.TrialDays, Rank: b.Rank, Public: b.Public != nil && *b.Public, keepPublic: b.Public == nil,
		Entitlements: EditionEntitlements{MaxUsers: b.Entitlements.MaxUsers,
			Limits: b.Entitlements.Limits, FeatureDefaults: b.Entitlements.FeatureDefaults,
			RetentionDays: b.Entitlements.RetentionDays, UsagePrices: map[string]int64{}}}
	if len(b.Entitlements.UsagePrices) > maxEntries {
		return Edition{}, editionErr("invalid-usage-price", "entitlements.usagePrices", "must hold at most %d metrics", maxEntries)
	}
	for m, n := range b.Entitlements.UsagePrices {
		v, ok := minorUnits(n)
		if !ok {
			return Edition{}, editionErr("invalid-usage-price", "entitlements.usagePrices."+m, "must be a JSON integer ≥ 0 (minor units)")
		}
		e.Entitlements.UsagePrices[m] = v
	}
	if e.Entitlements.Limits == nil {
		e.Entitlements.Limits = []LimitJSON{}
	}
	if e.Entitlements.FeatureDefaults == nil {
		e.Entitlements.FeatureDefaults = map[string]json.RawMessage{}
	}
	if e.Entitlements.RetentionDays == nil {
		e.Entitlements.RetentionDays = map[string]int{}
	}
	return e, nil
}

// putEdition serves PUT /api/editions/{code}: 201 with Location on create, 200 on replace, the
// edition's version as ETag; If-Match optional (412 on a mismatch).
func (a *API) putEdition(c echo.Context) error {
	cl, err := httpx.CallerOf(c)
	if err != nil {
		return err
	}
	if err := cl.RequirePlatform(); err != nil {
		return err
	}
	im, err := httpx.IfMatchVersion(c)
	if err != nil {
		return err
	}
	var body putEditionJSON
	if err := httpx.DecodeJSON(c, &body); err != nil {
		return err
	}
	e, err := body.toEdition(c.Param("code"))
	if err != nil {
		return err
	}
	out, created, err := a.svc.PutEdition(c.Request().Context(), cl, e, im)
	if err != nil {
		return err
	}
	httpx.SetETag(c, out.Version)
	if created {
		c.Response().Header().Set("Location", "/api/editions/"+out.Code)
		return c.JSON(http.StatusCreated, toEditionJSON(out))
	}
	return c.JSON(http.StatusOK, toEditionJSON(out))
}
