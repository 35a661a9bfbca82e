// Package inbox makes Service Bus consumers idempotent: a consumer records each event id in its
// own database's inbox table in the same transaction as the event's effect, so a redelivered or
// duplicated message finds its id already there and has no second effect.
//
// The platform schema (shared/platform) creates the table in every service's database (same
// shape on both engines):
//
//	inbox (tenant_id uuid, event_id uuid, consumer text, event_type text, received_at timestamptz,
//	       PRIMARY KEY (tenant_id, consumer, event_id))  -- with the tenant row-level-security policy
package inbox

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"spine/shared/sqlstore"
)

// Claim claims eventID for consumer inside tx, in the tenant of tx's scope (the inbox row is
// tenant-owned: call it in the event's tenant's scope, as the consumer's effect runs), or, in
// platform scope, under PlatformTenant (a platform-level event's claim). It returns
// true when this is the first delivery (apply the effect, then commit) and false when the event
// was already processed (skip the effect and commit, so the message is acknowledged). Concurrent
// deliveries of the same event serialize on the primary key; the loser waits for the winner's
// commit and then sees false. It is ClaimAll for a group of one.
func Claim(ctx context.Context, tx *sqlstore.Tx, consumer, eventID, eventType string) (bool, error) {
	tenant, err := scopeTenant(tx, eventID)
	if err != nil {
		return false, err
	}
	first, err := ClaimAll(ctx, tx, consumer, []Item{{Tenant: tenant, EventID: eventID, EventType: eventType}})
	if err != nil {
		return false, err
	}
	return first[0], nil
}

// Seen reports whether consumer has already claimed eventID, in the tenant of tx's scope (under
// PlatformTenant in platform scope), without claiming it. It only reads: a consumer whose work
// calls out before its effect's transaction (which must not call out) asks it first, so a
// redelivery of an event already processed does not repeat the call; the Claim in the effect's
// transaction stays the one that decides (two first deliveries running at once may both see
// false, and then only one claims).
func Seen(ctx context.Context, tx *sqlstore.Tx, consumer, eventID string) (bool, error) {
	tenant, err := scopeTenant(tx, eventID)
	if err != nil {
		return false, err
	}
	var n int
	if err := tx.QueryRowContext(ctx, seenSQL[tx.Dialect], tenant, consumer, strings.ToLower(eventID)).Scan(&n); err != nil {
		return false, fmt.Errorf("inbox: look up %s: %w", eventID, sqlstore.Translate(tx.Dialect, err))
	}
	return n == 1, nil
}

// scopeTenant is the tenant an inbox row of tx's scope is recorded under.
func scopeTenant(tx *sqlstore.Tx, eventID string) (string, error) {
	tenant := tx.Scope().Tenant
	if tenant == "" && tx.Scope().Platform {
		tenant = PlatformTenant
	}
	if tenant == "" {
		return "", fmt.Errorf("inbox: event %s outside a tenant or platform scope", eventID)
	}
	return strings.ToLower(tenant), nil
}

// seenSQL answers 1 when the claim ($1/@p1 tenant, $2/@p2 consumer, $3/@p3 event id) exists, else 0.
var seenSQL = map[sqlstore.Dialect]string{
	sqlstore.Postgres: `SELECT CASE WHEN EXISTS (SELECT 1 FROM inbox
		WHERE tenant_id = $1::uuid AND consumer = $2 AND event_id = $3::uuid) THEN 1 ELSE 0 END`,
	sqlstore.SQLServer: `SELECT CASE WHEN EXISTS (SELECT 1 FROM dbo.inbox
		WHERE tenant_id = @p1 AND consumer = @p2 AND event_id = @p3) THEN 1 ELSE 0 END`,
}

// PlatformTenant is the tenant a platform-level event (one without a tenant) is claimed under:
// the nil UUID, as shared/outbox records such events. Its rows are visible in platform scope only
// (no tenant has the nil UUID as its id).
const PlatformTenant = "00000000-0000-0000-0000-000000000000"

// Item is one event a group claims: its tenant (canonical id, or PlatformTenant), id and type.
type Item struct {
	Tenant, EventID, EventType string
}

// ClaimAll claims items for consumer inside tx with one statement, and reports, in items' order,
// which are first deliveries (apply their effect) and which were processed before (skip them).
// tx's scope must admit every item's tenant: a set scope over the group's tenants
// (sqlstore.TenantSetScope) or the one tenant's scope, or platform scope for PlatformTenant's
// items; row-level security refuses any other tenant's row. An event listed twice is first at most once, at its first position. Concurrent
// claims of the same event serialize on the primary key, as Claim's do.
func ClaimAll(ctx context.Context, tx *sqlstore.Tx, consumer string, items []Item) ([]bool, error) {
	first := make([]bool, len(items))
	if len(items) == 0 {
		return first, nil
	}
	type row struct {
		Tenant    string `json:"tenant_id"`
		EventID   string `json:"event_id"`
		EventType string `json:"event_type"`
	}
	rows := make([]row, len(items))
	for i, it := range items {
		rows[i] = row{Tenant: strings.ToLower(it.Tenant), EventID: strings.ToLower(it.EventID), EventType: storableType(it.EventType)}
	}
	// One order for every group, so two groups claiming some of the same events lock their keys in
	// the same order and cannot deadlock; first[] still follows items' order.
	order := make([]row, len(rows))
	copy(order, rows)
	slices.SortFunc(order, func(a, b row) int {
		return cmp.Or(strings.Compare(a.Tenant, b.Tenant), strings.Compare(a.EventID, b.EventID))
	})
	doc, err := json.Marshal(order)
	if err != nil {
		return nil, fmt.Errorf("inbox: encode claims: %w", err)
	}
	rs, err := tx.QueryContext(ctx, claimAllSQL[tx.Dialect], consumer, string(doc), sqlstore.Now())
	if err != nil {
		return nil, fmt.Errorf("inbox: claim %d events: %w", len(items), sqlstore.Translate(tx.Dialect, err))
	}
	defer rs.Close()
	claimed := map[string]bool{}
	for rs.Next() {
		var tenant, id string
		if err := rs.Scan(&tenant, &id); err != nil {
			return nil, fmt.Errorf("inbox: claim %d events: %w", len(items), sqlstore.Translate(tx.Dialect, err))
		}
		claimed[tenant+"/"+id] = true
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("inbox: claim %d events: %w", len(items), sqlstore.Translate(tx.Dialect, err))
	}
	for i, r := range rows {
		key := r.Tenant + "/" + r.EventID
		if claimed[key] {
			first[i] = true
			delete(claimed, key) // a second listing of the same event is not first
		}
	}
	return first, nil
}

// maxEventType is the inbox's event_type bound (characters), on both engines.
const maxEventType = 128

// storableType is an event type as the inbox stores it: valid UTF-8 without NUL (which neither
// engine's text holds), clipped to maxEventType characters. The type is only a label of the claim;
// the claim is keyed by the event id, so an event with an unusual type is still claimed exactly
// once rather than failing on every delivery.
func storableType(t string) string {
	t = strings.ReplaceAll(strings.ToValidUTF8(t, "\uFFFD"), "\x00", "\uFFFD")
	if utf8.RuneCountInString(t) > maxEventType {
		t = string([]rune(t)[:maxEventType])
	}
	if t == "" {
		t = "-"
	}
	return t
}

// claimAllSQL inserts the claims listed in a JSON array ($2/@p2: tenant_id, event_id,
// event_type) and returns the (tenant, event id) of those that were not there yet, as lowercase
// canonical text.
var claimAllSQL = map[sqlstore.Dialect]string{
	sqlstore.Postgres: `INSERT INTO inbox (tenant_id, consumer, event_id, event_type, received_at)
		SELECT x.tenant_id, $1, x.event_id, x.event_type, $3
		FROM jsonb_to_recordset($2::jsonb) AS x(tenant_id uuid, event_id uuid, event_type text)
		ON CONFLICT DO NOTHING
		RETURNING tenant_id::text, event_id::text`,
	sqlstore.SQLServer: `INSERT INTO dbo.inbox (tenant_id, consumer, event_id, event_type, received_at)
		OUTPUT LOWER(CONVERT(char(36), inserted.tenant_id)), LOWER(CONVERT(char(36), inserted.event_id))
		SELECT x.tenant_id, @p1, x.event_id, MIN(x.event_type), @p3
		FROM OPENJSON(@p2) WITH (tenant_id uniqueidentifier, event_id uniqueidentifier, event_type varchar(128)) AS x
		WHERE NOT EXISTS (SELECT 1 FROM dbo.inbox AS i WITH (UPDLOCK, HOLDLOCK)
			WHERE i.tenant_id = x.tenant_id AND i.consumer = @p1 AND i.event_id = x.event_id)
		GROUP BY x.tenant_id, x.event_id`,
}
