package retention

import (
	"context"
	"encoding/json"
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
		Target: ledgerTarget{l}}
}

type ledgerTarget struct{ l *Ledger }

var _ Target = ledgerTarget{}

// oldFilter selects table's rows older than cutoff by their RowKey: runs are keyed newest first
// (inverted time), evidence oldest first.
func oldFilter(table string, cutoff time.Time) string {
	if table == TableRuns {
		return "RowKey gt " + odata(invertedKey(cutoff))
	}
	return "RowKey lt " + odata(timeKey(cutoff))
}

// Next counts the old rows (up to limit); the range is "everything older than cutoff", which no
// later write can enter (rows are keyed by their time).
func (t ledgerTarget) Next(ctx context.Context, unit, _ string, cutoff time.Time, limit int) (Range, bool, error) {
	sel := "PartitionKey,RowKey"
	f := oldFilter(unit, cutoff)
	p := t.l.t[unit].NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &f, Select: &sel})
	n := 0
	for p.More() && n < limit {
		page, err := p.NextPage(ctx)
		if err != nil {
			return Range{}, false, translate(err)
		}
		n += len(page.Entities)
	}
	if n == 0 {
		return Range{}, false, nil
	}
	return Range{From: "", To: cutoff.UTC().Format(time.RFC3339Nano), Count: min(n, limit), LastAt: cutoff.UTC(), Label: unit}, true, nil
}

func (ledgerTarget) Export(context.Context, string, Range, Evidence) (*Artifact, error) {
	return nil, nil
}

// Apply deletes up to the range's count of old rows, partition by partition, in batches of 100.
func (t ledgerTarget) Apply(ctx context.Context, unit string, r Range, ev Evidence) (int, error) {
	sel := "PartitionKey,RowKey"
	f := oldFilter(unit, ev.Cutoff)
	p := t.l.t[unit].NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &f, Select: &sel})
	type keys struct {
		PartitionKey string `json:"PartitionKey"`
		RowKey       string `json:"RowKey"`
	}
	var batch []aztables.TransactionAction
	var pk string
	n := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		end := op(ctx, "batch", unit, "")
		_, err := t.l.t[unit].SubmitTransaction(ctx, batch, nil)
		end(err)
		if err != nil {
			return translate(err)
		}
		n += len(batch)
		batch = batch[:0]
		return nil
	}
	for p.More() && n+len(batch) < r.Count {
		page, err := p.NextPage(ctx)
		if err != nil {
			return n, translate(err)
		}
		for _, raw := range page.Entities {
			if n+len(batch) >= r.Count {
				break
			}
			var k keys
			if err := json.Unmarshal(raw, &k); err != nil {
				return n, err
			}
			// One partition per batch: Azure refuses cross-partition batches (Azurite does not).
			if k.PartitionKey != pk || len(batch) == 100 {
				if err := flush(); err != nil {
					return n, err
				}
				pk = k.PartitionKey
			}
			ent, _ := json.Marshal(k)
			batch = append(batch, aztables.TransactionAction{ActionType: aztables.TransactionTypeDelete, Entity: ent})
		}
	}
	return n, flush()
}
