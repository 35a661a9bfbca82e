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

// Codes ISO 4217 lists that are not money: "no currency" and the code reserved for tests.
var notMoney = map[string]bool{currency.XXX.String(): true, currency.XTS.String(): true}

// isCurrency reports whether c is an ISO 4217 currency code in capitals (golang.org/x/text's
// table) that is money (not in notMoney).
func isCurrency(c string) bool {
	if !currencyRE.MatchString(c) || notMoney[c] {
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
			return editionErr("invalid-limit", f+".rate", "%s", rateDetail)
		case l.Burst < 1 || l.Burst > maxLimitRate:
			return editionErr("invalid-limit", f+".burst", "%s", rateDetail)
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
// sent and must then equal the path's code. Every member but code and public is required (missing
// or null is the member's own 400, never a default: a missing maxUsers is not "unlimited"). Every
// whole number is raw JSON read by wholeNumber, so only an integer literal is accepted: a string
// "100", a fraction 49.5 or 1.0, an exponent 1e3, -0 or a value beyond int64 is the member's own
// code rather than read as a number or answered invalid-json.
type putEditionJSON struct {
	Code         string               `json:"code"`
	Name         *string              `json:"name"`
	Price        *putMoneyJSON        `json:"price"`
	PeriodMonths json.RawMessage      `json:"periodMonths"`
	TrialDays    json.RawMessage      `json:"trialDays"`
	Rank         json.RawMessage      `json:"rank"`
	Entitlements *putEntitlementsJSON `json:"entitlements"`
	// Public: nil keeps a replaced edition's value and makes a new one private.
	Public *bool `json:"public"`
}

type putMoneyJSON struct {
	AmountMinor json.RawMessage `json:"amountMinor"`
	Currency    *string         `json:"currency"`
}

type putEntitlementsJSON struct {
	MaxUsers        json.RawMessage            `json:"maxUsers"`
	Limits          []putLimitJSON             `json:"limits"`
	FeatureDefaults map[string]json.RawMessage `json:"featureDefaults"`
	RetentionDays   map[string]json.RawMessage `json:"retentionDays"`
	UsagePrices     map[string]json.RawMessage `json:"usagePrices"`
}

// putLimitJSON is one limit of the body (LimitJSON with its numbers raw and every member required).
type putLimitJSON struct {
	Route         *string         `json:"route"`
	Rate          json.RawMessage `json:"rate"`
	Burst         json.RawMessage `json:"burst"`
	PeriodSeconds json.RawMessage `json:"periodSeconds"`
	Shadow        *bool           `json:"shadow"`
}

// integerLiteralRE is a JSON integer as this API accepts it: digits with an optional minus, no
// fraction, no exponent, no leading zero (JSON has none) and no "-0" (zero is "0").
var integerLiteralRE = regexp.MustCompile(`^(0|-?[1-9][0-9]*)$`)

// wholeNumber reads raw, a member's JSON value, as an integer from lo to hi. present is false
// when the member is missing or null; ok is false unless it is an integer literal
// (integerLiteralRE) within [lo, hi].
func wholeNumber(raw json.RawMessage, lo, hi int64) (v int64, present, ok bool) {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 || string(t) == "null" {
		return 0, false, false
	}
	if !integerLiteralRE.Match(t) {
		return 0, true, false
	}
	v, err := strconv.ParseInt(string(t), 10, 64)
	if err != nil || v < lo || v > hi {
		return 0, true, false
	}
	return v, true, true
}

// intMember is wholeNumber for a member of the edition body: missing, null or anything but an
// integer in [lo, hi] is an EditionError with code, field and detail.
func intMember(raw json.RawMessage, lo, hi int64, code, field, detail string) (int64, error) {
	v, present, ok := wholeNumber(raw, lo, hi)
	switch {
	case !present:
		return 0, editionErr(code, field, "is required: %s", detail)
	case !ok:
		return 0, editionErr(code, field, "%s", detail)
	}
	return v, nil
}

// Details of the edition's whole numbers, shared by the body's reading and ValidateEdition.
var (
	priceDetail     = fmt.Sprintf("must be a JSON integer from 0 to %d (minor units; no string, fraction nor exponent)", int64(maxMinor))
	periodDetail    = "must be a JSON integer from 1 to 12 (months)"
	trialDetail     = "must be a JSON integer from 0 to 365 (days)"
	rankDetail      = fmt.Sprintf("must be a JSON integer from -%d to %d", maxRank, maxRank)
	maxUsersDetail  = fmt.Sprintf("must be a JSON integer from 0 (unlimited) to %d", maxMaxUsers)
	rateDetail      = fmt.Sprintf("must be a JSON integer from 1 to %d (2^30)", maxLimitRate)
	periodSecDetail = "must be a JSON integer from 1 to 86400 (seconds)"
	retentionDetail = "must be a data kind with a JSON integer from 1 to 36500 (days)"
	usagePriceDtl   = fmt.Sprintf("must be a metric name with a JSON integer unit price from 0 to %d (minor units)", int64(maxMinor))
)

// toEdition turns the body into an Edition of code. It refuses a missing or null member (but
// code and public) and a whole number that is not an integer literal within its range, each with
// the member's code; ValidateEdition checks the rest.
func (b putEditionJSON) toEdition(code string) (Edition, error) {
	if b.Code != "" && b.Code != code {
		return Edition{}, editionErr("invalid-edition-code", "code", "must equal the path's code")
	}
	if b.Name == nil {
		return Edition{}, editionErr("invalid-name", "name", "is required: one line of 1 to 200 characters")
	}
	if b.Price == nil {
		return Edition{}, editionErr("invalid-price", "price", "is required: {amountMinor, currency}")
	}
	price, err := intMember(b.Price.AmountMinor, 0, maxMinor, "invalid-price", "price.amountMinor", priceDetail)
	if err != nil {
		return Edition{}, err
	}
	if b.Price.Currency == nil {
		return Edition{}, editionErr("invalid-currency", "price.currency", "is required: an ISO 4217 currency code in capitals, such as EUR")
	}
	period, err := intMember(b.PeriodMonths, 1, 12, "invalid-period", "periodMonths", periodDetail)
	if err != nil {
		return Edition{}, err
	}
	trial, err := intMember(b.TrialDays, 0, 365, "invalid-trial", "trialDays", trialDetail)
	if err != nil {
		return Edition{}, err
	}
	rank, err := intMember(b.Rank, -int64(maxRank), int64(maxRank), "invalid-rank", "rank", rankDetail)
	if err != nil {
		return Edition{}, err
	}
	ent, err := b.Entitlements.toEntitlements()
	if err != nil {
		return Edition{}, err
	}
	return Edition{Code: code, Name: *b.Name, PriceMinor: price, Currency: *b.Price.Currency, PeriodMonths: int(period),
		TrialDays: int(trial), Rank: int(rank), Public: b.Public != nil && *b.Public, keepPublic: b.Public == nil,
		Entitlements: ent}, nil
}

// toEntitlements reads the body's entitlements (nil: missing or null), every member required.
func (b *putEntitlementsJSON) toEntitlements() (EditionEntitlements, error) {
	if b == nil {
		return EditionEntitlements{}, editionErr("invalid-max-users", "entitlements", "is required: {maxUsers, limits, featureDefaults, retentionDays, usagePrices}")
	}
	maxUsers, err := intMember(b.MaxUsers, 0, int64(maxMaxUsers), "invalid-max-users", "entitlements.maxUsers", maxUsersDetail)
	if err != nil {
		return EditionEntitlements{}, err
	}
	switch {
	case b.Limits == nil:
		return EditionEntitlements{}, editionErr("invalid-limit", "entitlements.limits", `is required: a list holding a tenant-wide limit (route "")`)
	case b.FeatureDefaults == nil:
		return EditionEntitlements{}, editionErr("invalid-feature-default", "entitlements.featureDefaults", "is required: an object of flag keys ({} for none)")
	case b.RetentionDays == nil:
		return EditionEntitlements{}, editionErr("invalid-retention", "entitlements.retentionDays", "is required: an object of data kinds ({} for none)")
	case b.UsagePrices == nil:
		return EditionEntitlements{}, editionErr("invalid-usage-price", "entitlements.usagePrices", "is required: an object of metrics ({} for none)")
	case len(b.Limits) > maxLimits:
		return EditionEntitlements{}, editionErr("invalid-limit", "entitlements.limits", "must hold at most %d limits", maxLimits)
	case len(b.RetentionDays) > maxEntries:
		return EditionEntitlements{}, editionErr("invalid-retention", "entitlements.retentionDays", "must hold at most %d data kinds", maxEntries)
	case len(b.UsagePrices) > maxEntries:
		return EditionEntitlements{}, editionErr("invalid-usage-price", "entitlements.usagePrices", "must hold at most %d metrics", maxEntries)
	}
	ent := EditionEntitlements{MaxUsers: int(maxUsers), Limits: make([]LimitJSON, 0, len(b.Limits)),
		FeatureDefaults: b.FeatureDefaults, RetentionDays: make(map[string]int, len(b.RetentionDays)),
		UsagePrices: make(map[string]int64, len(b.UsagePrices))}
	for i, l := range b.Limits {
		f := fmt.Sprintf("entitlements.limits[%d]", i)
		if l.Route == nil {
			return EditionEntitlements{}, editionErr("invalid-route", f+".route", `is required: "" (tenant-wide) or a route template starting with /api/`)
		}
		rate, err := intMember(l.Rate, 1, int64(maxLimitRate), "invalid-limit", f+".rate", rateDetail)
		if err != nil {
			return EditionEntitlements{}, err
		}
		burst, err := intMember(l.Burst, 1, int64(maxLimitRate), "invalid-limit", f+".burst", rateDetail)
		if err != nil {
			return EditionEntitlements{}, err
		}
		period, err := intMember(l.PeriodSeconds, 1, 86400, "invalid-limit", f+".periodSeconds", periodSecDetail)
		if err != nil {
			return EditionEntitlements{}, err
		}
		if l.Shadow == nil {
			return EditionEntitlements{}, editionErr("invalid-limit", f+".shadow", "is required: true (counted, never enforced) or false")
		}
		ent.Limits = append(ent.Limits, LimitJSON{Route: *l.Route, Rate: int(rate), Burst: int(burst), PeriodSeconds: int(period), Shadow: *l.Shadow})
	}
	for k, raw := range b.RetentionDays {
		d, err := intMember(raw, 1, 36500, "invalid-retention", "entitlements.retentionDays."+k, retentionDetail)
		if err != nil {
			return EditionEntitlements{}, err
		}
		ent.RetentionDays[k] = int(d)
	}
	for m, raw := range b.UsagePrices {
		p, err := intMember(raw, 0, maxMinor, "invalid-usage-price", "entitlements.usagePrices."+m, usagePriceDtl)
		if err != nil {
			return EditionEntitlements{}, err
		}
		ent.UsagePrices[m] = p
	}
	return ent, nil
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
