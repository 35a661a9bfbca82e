// Package retention is the one retention engine of the platform: every sweep (audit export to the
// WORM archive, the 90-day notification archive, report artifact lifecycle, token pruning, the
// idempotency records and the inboxes) is declared by its owning service as a Sweep and run by
// the Engine on that sweep's timer, with a maintenance ledger in Azure Table Storage (ledger.go).
//
// A run is bounded (MaxRows and MaxDuration per invocation, well inside the Functions timeout),
// fair (units — tenants, or services for platform sweeps — take one batch each per round, the
// least recently served first) and resumable: before a batch changes anything, its intent (the
// exact range, the evidence id) is written to the unit's watermark in the ledger; a crash at any
// point leaves the intent there, and the next run finishes exactly that range before it selects a
// new one. So exports are create-only blobs named by their range (a rerun finds the blob it wrote
// and checks its SHA-256), effects are applied to exactly the range that was exported, the
// evidence row and the event keep the intent's id, and nothing is lost or repeated.
//
// The order of one batch:
//
//  1. Target.Next selects the range (bounded, keyset-paged).
//  2. ledger: the unit's watermark gets Pending = {range, evidence id}          (intent)
//  3. Target.Export writes the artifact create-only; ledger: Pending.Artifact   (exported)
//  4. Target.Apply deletes/marks exactly the range, with the RetentionApplied event, in one
//     transaction (affected = 0 when a previous attempt already committed)
//  5. ledger: the evidence row (upsert by the intent's id)
//  6. ledger: the watermark advances to the range's end, Pending cleared
//
// Legal holds (ledger.go) are read when a run starts (a held unit is skipped and counted) and
// again before each batch's effect (a hold placed during the run stops the tenant's next effect;
// its intent waits for the release).
package retention

import (
	"context"
	"time"
)

// Range is one batch of a sweep within one unit: the rows from From to To inclusive, in the
// target's keyset order. From and To are the target's own keys (opaque to the engine, kept in the
// ledger as they are: the watermark is To), so a target can find exactly this range again after a
// crash.
type Range struct {
	From  string `json:"from"`
	To    string `json:"to"`
	Count int    `json:"count"` // rows in the range when it was selected
	// FirstAt and LastAt are the data times of the range's first and last rows (evidence).
	FirstAt time.Time `json:"firstAt"`
	LastAt  time.Time `json:"lastAt"`
	// Label names the range in artifacts (e.g. "17-512" for audit sequence numbers, "2026-08" for a
	// month); optional.
	Label string `json:"label,omitempty"`
	// More says the target stopped the range short of limit at a boundary of its own (a month)
	// with due rows after it: the unit gets another batch in this run. (A range of limit rows
	// implies it.)
	More bool `json:"more,omitempty"`
}

// Artifact is what an export wrote: a create-only blob and the SHA-256 of its bytes.
type Artifact struct {
	Container string `json:"container"`
	Name      string `json:"name"`
	SHA256    string `json:"sha256"` // lowercase hex
	Size      int64  `json:"size"`
}

// Evidence is the record of one batch's effect: the ledger's evidence row and the data of the
// RetentionApplied event. ID is fixed when the intent is written and kept across crashes: the
// evidence row's key and the event's id.
type Evidence struct {
	ID       string    `json:"id"`
	RunID    string    `json:"runId"`
	Sweep    string    `json:"sweep"`
	Service  string    `json:"service"`
	Tenant   string    `json:"tenantId,omitempty"` // "" for platform sweeps
	Unit     string    `json:"unit"`
	Action   Action    `json:"action"`
	Range    Range     `json:"range"`
	Artifact *Artifact `json:"artifact,omitempty"`
	// Affected is what Apply changed (rows deleted or marked); Exported is Range.Count when an
	// artifact was written. Both are final in the evidence row.
	Affected int       `json:"affected"`
	Cutoff   time.Time `json:"cutoff"`
	At       time.Time `json:"at"`
}

// Action is what a sweep does to the rows it selects.
type Action string

// The actions.
const (
	ActionExport  Action = "export"  // written to an archive, kept (audit export)
	ActionArchive Action = "archive" // written to an archive, then removed (notifications)
	ActionDelete  Action = "delete"  // removed (tokens, idempotency records, inbox, purged audit entries)
	ActionExpire  Action = "expire"  // blob removed, the row kept and marked (report artifacts)
)

// Target is what a sweep acts on, implemented by the owning service over its own store. The
// engine calls one unit's methods from one goroutine at a time; different units may be swept
// concurrently by different instances only through the watermark's optimistic concurrency (one
// of them wins the intent, the other skips the unit).
type Target interface {
	// Next selects the next range of unit after the position after ("" = from the start) whose
	// rows are due before cutoff (older than the retention; the zero cutoff when the sweep has no
	// retention, as an export), at most limit rows, in the target's keyset order. ok is false when
	// nothing is due. It must not change anything.
	Next(ctx context.Context, unit, after string, cutoff time.Time, limit int) (r Range, ok bool, err error)
	// Export writes the range's artifact create-only and returns it, or nil when the sweep exports
	// nothing. Called again for the same range after a crash: when the blob exists it must check
	// that it holds what the range's rows would produce (same SHA-256) and return it, never write
	// a second blob for the range; ev carries the evidence id and run for the artifact's manifest.
	Export(ctx context.Context, unit string, r Range, ev Evidence) (*Artifact, error)
	// Apply makes the effect on exactly the range — what Next selected, nothing added later — in
	// one transaction together with the evidence event (EvidenceEvent), and returns the rows it
	// changed. Idempotent: after a previous attempt committed it changes nothing, emits nothing
	// and returns 0.
	Apply(ctx context.Context, unit string, r Range, ev Evidence) (affected int, err error)
}

// NoExport is embedded by the Target of a sweep that exports nothing (delete, expire): its Export
// writes no artifact.
type NoExport struct{}

// Export implements Target: nothing to write.
func (NoExport) Export(context.Context, string, Range, Evidence) (*Artifact, error) { return nil, nil }

// Sweep is one retention sweep, declared by its owning service and registered with the Engine
// (Engine.Register) when the service is built. Its timer function (Name, Schedule) is declared by
// the service's Functions with Engine.Timer as its handler.
type Sweep struct {
	// Name is the sweep's name and its timer function's (PascalCase: "NotificationArchive").
	Name string
	// Service is the owning service (module name).
	Service string
	// Schedule is the timer's six-field NCRONTAB schedule.
	Schedule string
	// Action is what the sweep does (evidence and the ops view).
	Action Action
	// DataScope is the legal-hold scope of the data ("audit", "notifications", "reports"); a hold
	// on the tenant with this scope or ScopeAll skips the tenant. Ignored for Platform sweeps.
	DataScope string
	// RetentionKind is the entitlements key a tenant's edition may override the retention with
	// (entitlements.Entitlements.Retention; billing's retentionDays), "" for none.
	RetentionKind string
	// Retention is the default retention (the storage map's); 0 means rows are due at once (an
	// export, or rows whose own expiry Next checks). Scaled by the engine's Scale.
	Retention time.Duration
	// Platform sweeps act on platform records, not tenant data (idempotency records, inbox ids,
	// token records): their units are services or tables, no legal hold or edition applies, and
	// evidence is kept under the "platform" partition.
	Platform bool
	// Units lists the units with possibly due rows: tenant ids (tenant sweeps), or the platform
	// sweep's own unit names. before is the latest cutoff any unit can have — every unit with a row
	// older than before must be listed; now when an edition may shorten the retention (a hint:
	// returning more units is correct, only slower).
	Units func(ctx context.Context, before time.Time) ([]string, error)
	// Target acts on one unit's rows.
	Target Target
	// BatchSize is the most rows one batch selects (default 500, at most 5000).
	BatchSize int
}

// Legal-hold scopes: ScopeAll holds every sweep's data of the tenant.
const ScopeAll = "all"

// PlatformPartition is the evidence partition of platform sweeps.
const PlatformPartition = "platform"

// Fault points (Config.Fault): a test hook called at each step of a batch, so crash-injection
// tests can stop a run (panic, os.Exit) exactly there.
const (
	FaultAfterIntent   = "after-intent"   // step 2 written, nothing exported
	FaultAfterExport   = "after-export"   // the blob written, the ledger not told
	FaultAfterApply    = "after-apply"    // the effect committed, no evidence row
	FaultAfterEvidence = "after-evidence" // evidence written, watermark not advanced
)
