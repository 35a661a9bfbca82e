package retention

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
)

// The ledger's own retention: sweep runs and evidence rows older than LedgerRetentionPeriod are
// deleted by the LedgerRetention sweep (daily), in single-partition batches. Watermarks, legal
// holds and overrides are state, not history: they are kept. Its evidence is under "platform";
// it emits no event (the ledger has no outbox), which the README says.
const (
	LedgerRetention         = "LedgerRetention"
	LedgerRetentionSchedule = "0 45 3 * * *"
	LedgerRetentionPeriod   = 365 * 24 * time.Hour
)

// LedgerSweep is the ledger's own retention sweep over l.
func LedgerSweep(l *Ledger) Sweep {
	return Sweep{Name: LedgerRetention, Service: "platform", Schedule: LedgerRetentionSchedule, Action: ActionDelete,
		Platform: true, Retention: LedgerRetentionPeriod, BatchSize: 5000,
		Units:  func(context.Context, time.Time) ([]string, error) { return []string{TableRuns, TableEvidence}, nil },
		Target: ledgerTarget{l: l}}
}

type ledgerTarget struct {
	NoExport
	l *Ledger
}

var _ Target = ledgerTarget{}

// oldFilter selects table's rows older than cutoff by their RowKey: runs are keyed newest first
// (inverted time), evidence oldest first.
func oldFilter(table string, cutoff time.Time) string {
	if table == TableRuns {
		return "RowKey gt " + odata(invertedKey(cutoff))
	}
	return "RowKey lt " + odata(timeKey(cutoff))
}

// tableKeys are an entity's keys.
type tableKeys struct {
	PartitionKey string `json:"PartitionKey"`
	RowKey       string `json:"RowKey"`
}

// keys lists the keys of unit's rows matching filter in key order (PartitionKey, RowKey), at most
// limit (0: all).
func (t ledgerTarget) keys(ctx context.Context, unit, filter string, limit int) ([]tableKeys, error) {
	sel := "PartitionKey,RowKey"
	var out []tableKeys
	err := t.l.scan(ctx, unit, &aztables.ListEntitiesOptions{Filter: &filter, Select: &sel}, func(raw []byte) (bool, error) {
		var k tableKeys
		if err := json.Unmarshal(raw, &k); err != nil {
			return true, fmt.Errorf("retention: ledger keys: %w", err)
		}
		out = append(out, k)
		return limit > 0 && len(out) == limit, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Next selects the oldest rows older than cutoff, at most limit, in key order; the range ends at
// the last one's keys (To: the JSON pair [PartitionKey, RowKey]), so a rerun after a crash deletes
// exactly these rows and no others.
// notHeld excludes, from the evidence table, the partitions of tenants under an active legal hold:
// the evidence of what was done to a held tenant's data is kept as long as the hold (litigation
// needs exactly it). Runs are per sweep, not per tenant: none is held.
func (t ledgerTarget) notHeld(ctx context.Context, unit string) (string, error) {
	if unit != TableEvidence {
		return "", nil
	}
	hs, err := t.l.Holds(ctx, "")
	if err != nil {
		return "", err
	}
	var b strings.Builder
	seen := map[string]bool{}
	for _, h := range hs {
		if h.Active() && !seen[h.TenantID] {
			seen[h.TenantID] = true
			b.WriteString(" and PartitionKey ne " + odata(h.TenantID))
		}
	}
	return b.String(), nil
}

func (t ledgerTarget) Next(ctx context.Context, unit, _ string, cutoff time.Time, limit int) (Range, bool, error) {
	held, err := t.notHeld(ctx, unit)
	if err != nil {
		return Range{}, false, err
	}
	ks, err := t.keys(ctx, unit, "("+oldFilter(unit, cutoff)+")"+held, limit)
	if err != nil || len(ks) == 0 {
		return Range{}, false, err
	}
	last := ks[len(ks)-1]
	to, err := json.Marshal([2]string{last.PartitionKey, last.RowKey})
	if err != nil {
		return Range{}, false, err
	}
	return Range{From: "", To: string(to), Count: len(ks), LastAt: cutoff.UTC(), Label: unit}, true, nil
}

// Apply deletes the range's rows (older than the cutoff, up to the range's last keys), partition by
// partition, in batches of 100, and answers the range's count: every row of it is gone, whether
// this attempt or a crashed one deleted it (the deletes are not one transaction).
func (t ledgerTarget) Apply(ctx context.Context, unit string, r Range, ev Evidence) (int, error) {
	var last [2]string
	if err := json.Unmarshal([]byte(r.To), &last); err != nil {
		return 0, fmt.Errorf("retention: %s: malformed range end %q", LedgerRetention, r.To)
	}
	held, err := t.notHeld(ctx, unit)
	if err != nil {
		return 0, err
	}
	f := "(" + oldFilter(unit, ev.Cutoff) + ") and (PartitionKey lt " + odata(last[0]) +
		" or (PartitionKey eq " + odata(last[0]) + " and RowKey le " + odata(last[1]) + "))" + held
	ks, err := t.keys(ctx, unit, f, 0)
	if err != nil {
		return 0, err
	}
	var batch []aztables.TransactionAction
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		end := op(ctx, "batch", unit, "")
		_, err := t.l.t[unit].SubmitTransaction(ctx, batch, nil)
		end(err)
		batch = batch[:0]
		return translate(err)
	}
	pk := ""
	for _, k := range ks {
		// One partition per batch: Azure refuses cross-partition batches (Azurite does not).
		if k.PartitionKey != pk || len(batch) == 100 {
			if err := flush(); err != nil {
				return 0, err
			}
			pk = k.PartitionKey
		}
		ent, err := json.Marshal(k)
		if err != nil {
			return 0, err
		}
		batch = append(batch, aztables.TransactionAction{ActionType: aztables.TransactionTypeDelete, Entity: ent})
	}
	if err := flush(); err != nil {
		return 0, err
	}
	return r.Count, nil
}
