package billing

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"spine/shared/ids"
	"spine/shared/sqlstore"
	"spine/shared/testenv"
)

func newID() string { return ids.New() }

// Nothing the runtime role can run deletes or rewrites an issued invoice: it holds no DELETE (nor
// TRUNCATE) on invoices, their lines or usage records, no UPDATE on lines, and the invoice guard
// trigger refuses to change an issued invoice's money, to move it back to Draft, or to add a
// line to it. The financial records of a decommissioned tenant therefore outlive it.
func TestGrants_RuntimeRoleCannotDeleteOrRewriteAnIssuedInvoice(t *testing.T) {
	h := newHarness(t)
	f := h.tenant()
	s := h.subscribe(f, "standard")
	h.must(http.StatusOK, "POST", "/api/subscriptions/"+s.ID+"/activate", f.admin, nil)
	inv := h.invoices(f)[0]
	if _, _, err := h.svc.RecordUsage(t.Context(), Caller{Platform: true}, f.id, UsageInput{ID: newID(), Metric: "api.requests", Quantity: 3}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, sc := range []sqlstore.Scope{sqlstore.TenantScope(f.id), sqlstore.PlatformScope()} {
		for _, c := range []struct{ q, want string }{
			{`DELETE FROM invoices WHERE invoice_id = $1`, "permission denied"},
			{`DELETE FROM invoice_lines WHERE invoice_id = $1`, "permission denied"},
			{`DELETE FROM usage_records WHERE $1 <> ''`, "permission denied"},
			{`TRUNCATE invoices, invoice_lines, usage_records`, "permission denied"},
			{`UPDATE invoice_lines SET amount_minor = 0, unit_minor = 0 WHERE invoice_id = $1`, "permission denied"},
			{`UPDATE invoices SET total_minor = 0 WHERE invoice_id = $1`, "immutable"},
			{`UPDATE invoices SET currency = 'USD' WHERE invoice_id = $1`, "immutable"},
			{`UPDATE invoices SET status = 'Draft' WHERE invoice_id = $1`, "cannot become"},
			{`INSERT INTO invoice_lines (tenant_id, invoice_id, line_no, description, quantity, unit_minor, amount_minor)
				SELECT tenant_id, invoice_id, 2, 'sneaky', 1, -4900, -4900 FROM invoices WHERE invoice_id = $1`, "immutable"},
			{`DELETE FROM editions WHERE $1 <> ''`, "permission denied"},
		} {
			err := h.rt.InTx(ctx, sc, func(tx *sqlstore.Tx) error {
				args := []any{inv.ID}
				if !strings.Contains(c.q, "$1") {
					args = nil
				}
				_, err := tx.ExecContext(ctx, c.q, args...)
				return err
			})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("scope %+v, %q: %v, want %q", sc, c.q, err, c.want)
			}
		}
	}
	// The catalog takes new editions in platform scope only (PUT /api/editions/{code}): a tenant's
	// transaction is refused by the policy.
	err := h.rt.InTx(ctx, sqlstore.TenantScope(f.id), func(tx *sqlstore.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO editions SELECT 'evil', name, 0, currency, period_months, trial_days, rank, entitlements, version, updated_at FROM editions WHERE code = 'free'`)
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "row-level security") {
		t.Errorf("tenant-scoped INSERT INTO editions: %v", err)
	}
	// Paid and Void remain possible (the status moves forward), the money stays.
	err = h.rt.InTx(ctx, sqlstore.TenantScope(f.id), func(tx *sqlstore.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE invoices SET status = 'Paid', paid_at = now() WHERE invoice_id = $1`, inv.ID)
		return err
	})
	if err != nil {
		t.Fatalf("Issued → Paid: %v", err)
	}
	one := decode[invoiceJSON](t, h.must(http.StatusOK, "GET", "/api/invoices/"+inv.ID, f.reader, nil).Body)
	if one.Status != "Paid" || one.Total.AmountMinor != 4900 || len(*one.Lines) != 1 {
		t.Errorf("after the attempts: %+v", one)
	}
	// The catalog of privileges says the same, whatever the statements above tried.
	owner := testDB.OpenOwner(t, sqlstore.PoolConfig{MaxOpen: 1})
	got, err := testenv.QueryStrings(ctx, owner, `SELECT table_name || ':' || privilege_type FROM information_schema.role_table_grants
		WHERE grantee = 'billing_app' AND table_name IN ('invoices', 'invoice_lines', 'usage_records', 'editions', 'subscriptions')
		AND privilege_type IN ('DELETE', 'TRUNCATE')`)
	if err != nil || len(got) != 0 {
		t.Errorf("billing_app holds %v (%v)", got, err)
	}
}
