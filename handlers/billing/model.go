package billing

import (
	"encoding/json"
	"fmt"
	"math/big"
	"regexp"
	"time"

	"spine/shared/entitlements"
)

// service is the service's name: its database, topic, settings prefix and cache namespace.
const service = "billing"

// FinancialRetention is the default financial retention period: invoices, their lines and usage
// records are kept this long after their period, also after the tenant is decommissioned. Nothing
// in this service deletes them (the runtime role holds no DELETE on them); purging after the
// period is an owner-role job outside the API.
const FinancialRetention = 10 * 365 * 24 * time.Hour

// ---- editions ----

var editionCodeRE = regexp.MustCompile(`^[a-z][a-z0-9-]{1,31}$`)

// Edition is an entry of the platform-level edition catalog. Money is in integer minor units of
// Currency (ISO 4217), never a float.
type Edition struct {
	Code         string
	Name         string
	PriceMinor   int64 // per period
	Currency     string
	PeriodMonths int
	TrialDays    int
	// Rank orders editions: a change to a higher rank is an upgrade (now, prorated), to a lower
	// one a downgrade (at the period end).
	Rank         int
	Entitlements EditionEntitlements
	// Public editions are offered to every tenant (subscribe, change-edition, GET /api/editions);
	// a private one (made for one customer) is assigned by platform admins only.
	Public    bool
	Version   int64
	UpdatedAt time.Time
	// keepPublic: the PUT body left "public" out; a replace keeps the stored value (a create is
	// private).
	keepPublic bool
}

// EditionEntitlements is the editions.entitlements JSON column, as stored and as the API shows it.
type EditionEntitlements struct {
	MaxUsers        int                        `json:"maxUsers"`
	Limits          []LimitJSON                `json:"limits"`
	FeatureDefaults map[string]json.RawMessage `json:"featureDefaults"`
	RetentionDays   map[string]int             `json:"retentionDays"`
	// UsagePrices prices metered usage: metric → price per unit in minor units of the edition's
	// currency. A metric without a price is recorded but not billed.
	UsagePrices map[string]int64 `json:"usagePrices"`
}

// LimitJSON is one request limit in the catalog: Rate requests per PeriodSeconds, bursts up to
// Burst; Route "" is tenant-wide, otherwise an echo route template. A Shadow limit is counted,
// never enforced (entitlements.Limit.Shadow).
type LimitJSON struct {
	Route         string `json:"route"`
	Rate          int    `json:"rate"`
	Burst         int    `json:"burst"`
	PeriodSeconds int    `json:"periodSeconds"`
	Shadow        bool   `json:"shadow"`
}

// parseEntitlements decodes and checks the entitlements column.
func parseEntitlements(raw []byte) (EditionEntitlements, error) {
	var e EditionEntitlements
	if err := json.Unmarshal(raw, &e); err != nil {
		return e, fmt.Errorf("billing: edition entitlements: %w", err)
	}
	if e.MaxUsers < 0 {
		return e, fmt.Errorf("billing: edition entitlements: maxUsers %d < 0", e.MaxUsers)
	}
	for _, l := range e.Limits {
		if l.Rate <= 0 || l.Burst < 0 || l.PeriodSeconds <= 0 {
			return e, fmt.Errorf("billing: edition entitlements: limit %+v", l)
		}
	}
	if e.Limits == nil {
		e.Limits = []LimitJSON{}
	}
	if e.FeatureDefaults == nil {
		e.FeatureDefaults = map[string]json.RawMessage{}
	}
	if e.RetentionDays == nil {
		e.RetentionDays = map[string]int{}
	}
	if e.UsagePrices == nil {
		e.UsagePrices = map[string]int64{}
	}
	return e, nil
}

// Grants returns the edition as the shared entitlements contract states it.
func (e Edition) Grants() entitlements.Entitlements {
	out := entitlements.Entitlements{Edition: e.Code, MaxUsers: e.Entitlements.MaxUsers,
		Limits:          make([]entitlements.Limit, 0, len(e.Entitlements.Limits)),
		FeatureDefaults: make(map[string]json.RawMessage, len(e.Entitlements.FeatureDefaults)),
		Retention:       make(map[string]time.Duration, len(e.Entitlements.RetentionDays))}
	for _, l := range e.Entitlements.Limits {
		out.Limits = append(out.Limits, entitlements.Limit{Route: l.Route, Rate: l.Rate, Burst: l.Burst,
			Period: time.Duration(l.PeriodSeconds) * time.Second, Shadow: l.Shadow})
	}
	for k, v := range e.Entitlements.FeatureDefaults {
		out.FeatureDefaults[k] = v
	}
	for k, d := range e.Entitlements.RetentionDays {
		out.Retention[k] = time.Duration(d) * 24 * time.Hour
	}
	return out
}

// ---- subscriptions ----

// SubscriptionID is a subscription's id (canonical UUID text).
type SubscriptionID string

// Status is a subscription's state.
type Status string

// The subscription states.
const (
	StatusTrial     Status = "Trial"
	StatusActive    Status = "Active"
	StatusPastDue   Status = "PastDue"
	StatusCancelled Status = "Cancelled"
)

// transitions are the legal state changes: Trial → Active → PastDue → Cancelled, Active →
// Cancelled, and back to Active from PastDue (payment received). A trial may be cancelled too
// (a tenant decommissioned during its trial). Cancelled is final.
var transitions = map[Status][]Status{
	StatusTrial:   {StatusActive, StatusCancelled},
	StatusActive:  {StatusPastDue, StatusCancelled},
	StatusPastDue: {StatusActive, StatusCancelled},
}

// CanBecome reports whether a subscription in s may move to next.
func (s Status) CanBecome(next Status) bool {
	for _, n := range transitions[s] {
		if n == next {
			return true
		}
	}
	return false
}

// Subscription is a tenant's subscription to an edition. At most one per tenant is not Cancelled.
type Subscription struct {
	ID          SubscriptionID
	EditionCode string
	Status      Status
	TrialEndsAt *time.Time
	PeriodStart time.Time
	PeriodEnd   time.Time
	// PendingEdition is a downgrade that takes effect at PeriodEnd ("" for none).
	PendingEdition string
	CancelledAt    *time.Time
	CancelReason   string
	// PastDueSince is when it became PastDue (nil otherwise): the renewal timer cancels it
	// ServiceConfig.PastDueGrace later.
	PastDueSince *time.Time
	Version      int64
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// addMonths adds n calendar months to t (UTC), clamping the day to the target month's last day
// (Jan 31 + 1 month = Feb 28/29), so a period never spills into the month after.
func addMonths(t time.Time, n int) time.Time {
	t = t.UTC()
	y, m, d := t.Date()
	first := time.Date(y, m+time.Month(n), 1, t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
	last := first.AddDate(0, 1, -1).Day()
	if d > last {
		d = last
	}
	return time.Date(first.Year(), first.Month(), d, t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
}

// rollOver moves an Active or PastDue subscription's period forward until it contains now,
// applying a pending downgrade at the first period end it passes. It reports whether it changed
// anything. Trial and Cancelled subscriptions do not roll.
func rollOver(s *Subscription, now time.Time, months int) bool {
	if s.Status != StatusActive && s.Status != StatusPastDue {
		return false
	}
	changed := false
	for !now.Before(s.PeriodEnd) {
		s.PeriodStart, s.PeriodEnd = s.PeriodEnd, addMonths(s.PeriodEnd, months)
		if s.PendingEdition != "" {
			s.EditionCode, s.PendingEdition = s.PendingEdition, ""
		}
		changed = true
	}
	return changed
}

// EffectiveEdition is the edition whose entitlements the subscription grants at now: a pending
// downgrade applies from the period end on, even before a write rolled the period over.
func (s Subscription) EffectiveEdition(now time.Time) string {
	if s.PendingEdition != "" && !now.Before(s.PeriodEnd) && (s.Status == StatusActive || s.Status == StatusPastDue) {
		return s.PendingEdition
	}
	return s.EditionCode
}

// ---- money ----

// Prorate is the charge for upgrading from a price of oldMinor to newMinor per period at `at`,
// within the period [start, end): (newMinor − oldMinor) × remaining ÷ length, with remaining and
// length in whole seconds. Rounding: half up to the nearest minor unit (0.5 → 1), computed in
// exact integer arithmetic (math/big), never through a float. At or after end, or with a price
// that does not rise, it is 0 (an upgrade never credits).
func Prorate(oldMinor, newMinor int64, start, end, at time.Time) int64 {
	if newMinor <= oldMinor || !at.Before(end) || !start.Before(end) {
		return 0
	}
	if at.Before(start) {
		at = start
	}
	length := int64(end.Sub(start) / time.Second)
	remaining := int64(end.Sub(at) / time.Second)
	if length <= 0 {
		return 0
	}
	num := new(big.Int).Mul(big.NewInt(newMinor-oldMinor), big.NewInt(remaining))
	num.Mul(num, big.NewInt(2))
	num.Add(num, big.NewInt(length))
	den := big.NewInt(2 * length)
	// floor((2·diff·remaining + length) / (2·length)) = round half up of diff·remaining/length
	return num.Quo(num, den).Int64()
}

// ---- invoices ----

// InvoiceID is an invoice's id (canonical UUID text).
type InvoiceID string

// InvoiceStatus is an invoice's state: Draft → Issued → Paid | Void (Draft → Void too).
type InvoiceStatus string

// The invoice states.
const (
	InvoiceDraft  InvoiceStatus = "Draft"
	InvoiceIssued InvoiceStatus = "Issued"
	InvoicePaid   InvoiceStatus = "Paid"
	InvoiceVoid   InvoiceStatus = "Void"
)

// Invoice is a tenant's invoice with its lines. TotalMinor is the sum of the lines' amounts.
type Invoice struct {
	ID          InvoiceID
	Number      string
	Status      InvoiceStatus
	Currency    string
	TotalMinor  int64
	PeriodStart time.Time
	PeriodEnd   time.Time
	CreatedAt   time.Time
	IssuedAt    *time.Time
	PaidAt      *time.Time
	VoidedAt    *time.Time
	Lines       []InvoiceLine
}

// InvoiceLine is one line: Quantity × UnitMinor = AmountMinor (the database checks it).
type InvoiceLine struct {
	No          int
	Description string
	Quantity    int64
	UnitMinor   int64
	AmountMinor int64
}

// UsageRecord is a metered quantity of a tenant in a period, idempotent on its id.
type UsageRecord struct {
	ID          string
	Metric      string
	Quantity    int64
	PeriodStart time.Time
	RecordedAt  time.Time
}

// maxMinor is the largest amount JSON clients read exactly (2^53 − 1, Number.MAX_SAFE_INTEGER):
// every price, usage quantity, invoice line amount and invoice total stays within it; what would
// exceed it is refused (400 on input, ErrTotalTooLarge on a computed total), never overflowed.
const maxMinor = 1<<53 - 1

// mulMinor is q × unit when it is within maxMinor (q and unit ≥ 0).
func mulMinor(q, unit int64) (int64, bool) {
	if q < 0 || unit < 0 || q > maxMinor || unit > maxMinor || (unit != 0 && q > maxMinor/unit) {
		return 0, false
	}
	return q * unit, true
}

// addMinor is a + b when both and the sum are within 0..maxMinor.
func addMinor(a, b int64) (int64, bool) {
	if a < 0 || b < 0 || a > maxMinor || b > maxMinor || a+b > maxMinor {
		return 0, false
	}
	return a + b, true
}
