package contracts

import "time"

// Billing's events (topic "billing"). Subject: the subscription id for subscription events, the
// invoice id for InvoiceIssued. Money is in integer minor units of Currency (ISO 4217), never a
// float.
const (
	SubscriptionActivated      = "SubscriptionActivated"
	SubscriptionCancelled      = "SubscriptionCancelled"
	SubscriptionEditionChanged = "SubscriptionEditionChanged"
	InvoiceIssued              = "InvoiceIssued"
)

// BillingEvents are the types the billing service publishes.
var BillingEvents = []string{SubscriptionActivated, SubscriptionCancelled, SubscriptionEditionChanged, InvoiceIssued}

// SubscriptionData is the data of SubscriptionActivated and SubscriptionCancelled: the
// subscription as it is after the change.
type SubscriptionData struct {
	TenantID       string    `json:"tenantId"`
	SubscriptionID string    `json:"subscriptionId"`
	EditionCode    string    `json:"editionCode"`
	Status         string    `json:"status"`
	PeriodStart    time.Time `json:"periodStart"`
	PeriodEnd      time.Time `json:"periodEnd"`
	// Reason is the reason given for a cancellation, if any.
	Reason string `json:"reason,omitempty"`
}

// SubscriptionEditionChangedData is the data of SubscriptionEditionChanged: the subscription's
// edition changed from FromEdition to ToEdition, effective EffectiveAt (now for an upgrade, the
// period end for a downgrade). ProrationMinor is the prorated charge of an upgrade, in minor
// units of Currency (0 for a downgrade).
type SubscriptionEditionChangedData struct {
	TenantID       string    `json:"tenantId"`
	SubscriptionID string    `json:"subscriptionId"`
	FromEdition    string    `json:"fromEdition"`
	ToEdition      string    `json:"toEdition"`
	EffectiveAt    time.Time `json:"effectiveAt"`
	ProrationMinor int64     `json:"prorationMinor"`
	Currency       string    `json:"currency"`
}

// InvoiceIssuedData is the data of InvoiceIssued: an invoice left Draft and is Issued; its money
// columns are immutable from now on.
type InvoiceIssuedData struct {
	TenantID   string    `json:"tenantId"`
	InvoiceID  string    `json:"invoiceId"`
	Number     string    `json:"number"`
	TotalMinor int64     `json:"totalMinor"`
	Currency   string    `json:"currency"`
	IssuedAt   time.Time `json:"issuedAt"`
}
