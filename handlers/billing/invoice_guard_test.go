package billing

import (
	"context"
	"strings"
	"testing"

	"spine/shared/sqlstore"
)

// execAs runs one statement as the runtime role in the tenant's scope and returns its error.
func (h *harness) execAs(f tenantFixture, q string, args ...any) error {
	h.t.Helper()
	ctx := context.Background()
	return h.rt.InTx(ctx, sqlstore.TenantScope(f.id), func(tx *sqlstore.Tx) error {
		_, err := tx.ExecContext(ctx, q, args...)
		return err
	})
}

const insertDraftSQL = `INSERT INTO invoices (tenant_id, invoice_id, number, status, currency, total_minor, period_start, period_end, created_at)
	VALUES ($1, $2, $3, $4, 'EUR', $5, now(), now() + interval '1 month', now())`

// The database keeps an invoice's total honest whatever the service computes: never negative, a
// line never negative, an invoice born a Draft, and the total equal to the lines' sum (summed
// without wrap-around) when it leaves Draft — so no wrapped-around sum of lines can be issued.
func TestInvoiceGuard_RefusesNegativeTotalsAndATotalThatIsNotTheLinesSum(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	tenant := f.id.String()
	for _, c := range []struct {
		name, q, want string
		args          []any
	}{
		{"negative total", insertDraftSQL, "invoices_total_minor_check", []any{tenant, newID(), "NEG-1", "Draft", -1}},
		{"born Issued", insertDraftSQL, "created as a Draft", []any{tenant, newID(), "ISS-1", "Issued", 0}},
	} {
		if err := h.execAs(f, c.q, c.args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	// A Draft whose stated total is not the sum of its lines cannot be issued nor voided.
	bad := newID()
	if err := h.execAs(f, insertDraftSQL, tenant, bad, "BAD-1", "Draft", 100); err != nil {
		t.Fatal(err)
	}
	const line = `INSERT INTO invoice_lines (tenant_id, invoice_id, line_no, description, quantity, unit_minor, amount_minor) VALUES ($1, $2, $3, 'x', $4, $5, $6)`
	if err := h.execAs(f, line, tenant, bad, 1, 1, 9007199254740991, 9007199254740991); err != nil {
		t.Fatal(err)
	}
	if err := h.execAs(f, line, tenant, bad, 2, 1, -3, -3); err == nil || !strings.Contains(err.Error(), "check") {
		t.Errorf("a negative line: %v", err)
	}
	if err := h.execAs(f, line, tenant, bad, 2, 1, 9007199254740991, 9007199254740991); err != nil {
		t.Fatal(err)
	}
	for _, st := range []string{"Issued", "Void"} {
		if err := h.execAs(f, `UPDATE invoices SET status = $2 WHERE invoice_id = $1`, bad, st); err == nil || !strings.Contains(err.Error(), "sum of its lines") {
			t.Errorf("Draft → %s with a total that is not the lines' sum: %v", st, err)
		}
	}
	// The honest Draft (total = Σ lines) is issued.
	good := newID()
	if err := h.execAs(f, insertDraftSQL, tenant, good, "GOOD-1", "Draft", 12); err != nil {
		t.Fatal(err)
	}
	if err := h.execAs(f, line, tenant, good, 1, 3, 4, 12); err != nil {
		t.Fatal(err)
	}
	if err := h.execAs(f, `UPDATE invoices SET status = 'Issued', issued_at = now() WHERE invoice_id = $1`, good); err != nil {
		t.Errorf("Draft → Issued with total = Σ lines: %v", err)
	}
}

// A Paid invoice's payment time and a Void one's void time are history: the guard refuses to
// change them (or to give an Issued invoice one without the move).
func TestInvoiceGuard_PaidAtAndVoidedAtAreFrozen(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	paid, void, issued := h.draftInvoice(f), h.draftInvoice(f), h.draftInvoice(f)
	for id, action := range map[string][]string{paid: {"issue", "pay"}, void: {"void"}, issued: {"issue"}} {
		for _, a := range action {
			if r := h.invoiceAction(f, id, a); r.Code != 200 {
				t.Fatalf("%s: %d %s", a, r.Code, r.Body)
			}
		}
	}
	for _, c := range []struct{ id, q string }{
		{paid, `UPDATE invoices SET paid_at = paid_at - interval '1 day' WHERE invoice_id = $1`},
		{paid, `UPDATE invoices SET paid_at = NULL WHERE invoice_id = $1`},
		{paid, `UPDATE invoices SET voided_at = now() WHERE invoice_id = $1`},
		{void, `UPDATE invoices SET voided_at = voided_at + interval '1 day' WHERE invoice_id = $1`},
		{void, `UPDATE invoices SET paid_at = now() WHERE invoice_id = $1`},
		{issued, `UPDATE invoices SET paid_at = now() WHERE invoice_id = $1`},
	} {
		if err := h.execAs(f, c.q, c.id); err == nil || !strings.Contains(err.Error(), "immutable") {
			t.Errorf("%q: %v, want immutable", c.q, err)
		}
	}
}
