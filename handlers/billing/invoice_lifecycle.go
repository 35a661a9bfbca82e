package billing

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"spine/shared/contracts"
	"spine/shared/events"
	"spine/shared/httpx"
	"spine/shared/outbox"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
)

// invoiceMoves are the legal invoice status changes (the database's guard trigger refuses any
// other too): Draft → Issued | Void, Issued → Paid | Void.
var invoiceMoves = map[InvoiceStatus][]InvoiceStatus{
	InvoiceDraft:  {InvoiceIssued, InvoiceVoid},
	InvoiceIssued: {InvoicePaid, InvoiceVoid},
}

func (st InvoiceStatus) canBecome(to InvoiceStatus) bool {
	for _, n := range invoiceMoves[st] {
		if n == to {
			return true
		}
	}
	return false
}

// MoveInvoice moves the tenant's invoice to status to — Issued (InvoiceIssued), Paid or Void —
// for the payment provider's operator: platform admins only (tenancy.ErrPlatformAdminRequired).
// An illegal move is ErrIllegalInvoiceTransition, an invoice the tenant does not have
// ErrInvoiceNotFound. Paying the last Issued invoice of a tenant whose live subscription is
// PastDue reactivates it (Active, SubscriptionActivated). The write fence does not apply: money
// records move on for a suspended or decommissioned tenant too (financial retention).
func (s *Service) MoveInvoice(ctx context.Context, c Caller, tenant tenancy.TenantID, id InvoiceID, to InvoiceStatus) (Invoice, error) {
	if err := c.RequirePlatform(); err != nil {
		return Invoice{}, err
	}
	if err := c.Reaches(tenant); err != nil {
		return Invoice{}, err
	}
	meta := events.MetaFrom(ctx)
	var out Invoice
	err := s.store.Write(ctx, sqlstore.TenantScope(tenant), tenant, func(tx *Tx) error {
		inv, err := tx.LockInvoice(ctx, id)
		if err != nil {
			return err
		}
		if !inv.Status.canBecome(to) {
			return fmt.Errorf("%w: a %s invoice cannot become %s", ErrIllegalInvoiceTransition, inv.Status, to)
		}
		now := s.cfg.Now()
		inv.Status = to
		var evs []events.Event
		switch to {
		case InvoiceIssued:
			inv.IssuedAt = &now
			ev, err := events.New(service, contracts.InvoiceIssued, string(inv.ID), tenant.String(), contracts.InvoiceIssuedData{
				TenantID: tenant.String(), InvoiceID: string(inv.ID), Number: inv.Number, TotalMinor: inv.TotalMinor,
				Currency: inv.Currency, IssuedAt: now}, meta)
			if err != nil {
				return err
			}
			evs = append(evs, ev)
		case InvoicePaid:
			inv.PaidAt = &now
		case InvoiceVoid:
			inv.VoidedAt = &now
		}
		if err := tx.SetInvoiceStatus(ctx, inv); err != nil {
			return err
		}
		if to == InvoicePaid {
			ev, err := s.reactivateIfSettled(ctx, tx, tenant, meta)
			if err != nil {
				return err
			}
			evs = append(evs, ev...)
		}
		if out, err = tx.Invoice(ctx, id); err != nil {
			return err
		}
		return outbox.Emit(ctx, tx.Tx, evs...)
	})
	return out, err
}

// reactivateIfSettled moves the tenant's PastDue subscription back to Active when it has no
// Issued invoice left (SubscriptionActivated); otherwise it does nothing.
func (s *Service) reactivateIfSettled(ctx context.Context, tx *Tx, tenant tenancy.TenantID, meta events.Meta) ([]events.Event, error) {
	live, err := tx.LiveSubscription(ctx)
	if errors.Is(err, ErrNoSubscription) {
		return nil, nil
	}
	if err != nil || live.Status != StatusPastDue {
		return nil, err
	}
	if n, err := tx.CountIssuedInvoices(ctx); err != nil || n > 0 {
		return nil, err
	}
	sub, err := tx.LockSubscription(ctx, live.ID)
	if err != nil {
		return nil, err
	}
	if sub.Status != StatusPastDue {
		return nil, nil
	}
	// Not rolled here: a period that ended is the renewal timer's (it issues the period's invoice).
	sub.Status, sub.PastDueSince = StatusActive, nil
	sub.Version, sub.UpdatedAt = sub.Version+1, s.cfg.Now()
	if err := tx.UpdateSubscription(ctx, sub); err != nil {
		return nil, err
	}
	s.invalidateAfterCommit(ctx, tx, tenant)
	ev, err := events.New(service, contracts.SubscriptionActivated, string(sub.ID), tenant.String(), subscriptionData(tenant, sub, ""), meta)
	return []events.Event{ev}, err
}

// invoiceAction serves POST /api/invoices/{id}/issue|pay|void (platform admins, ?tenantId=).
func (a *API) invoiceAction(to InvoiceStatus) echo.HandlerFunc {
	return func(c echo.Context) error {
		cl, err := httpx.CallerOf(c)
		if err != nil {
			return err
		}
		if err := cl.RequirePlatform(); err != nil {
			return err
		}
		_, tenant, err := httpx.Target(c)
		if err != nil {
			return err
		}
		id, err := pathID(c, ErrInvoiceNotFound)
		if err != nil {
			return err
		}
		inv, err := a.svc.MoveInvoice(c.Request().Context(), cl, tenant, InvoiceID(id), to)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, toInvoiceJSON(inv, true))
	}
}
