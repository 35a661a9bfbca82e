package contracts

import "time"

// RetentionApplied is the platform-wide event of the retention engine (shared/retention): every
// topic carries it (kit.PlatformEvents), written by the owning service in the transaction of a
// sweep's effect (rows archived, deleted, expired or exported). Its id is the evidence id of the
// maintenance ledger's evidence row; the audit trail records it. Subject: the unit (a tenant id,
// or a platform sweep's unit).
const RetentionApplied = "RetentionApplied"

// PlatformEvents are the types every service's topic may carry besides its own.
var PlatformEvents = []string{RetentionApplied}

// RetentionAppliedData is the data of RetentionApplied: which sweep did what to which range.
type RetentionAppliedData struct {
	EvidenceID string    `json:"evidenceId"`
	RunID      string    `json:"runId"`
	Sweep      string    `json:"sweep"`
	Action     string    `json:"action"` // export, archive, delete, expire
	Unit       string    `json:"unit"`
	From       string    `json:"from"`
	To         string    `json:"to"`
	Count      int       `json:"count"`
	FirstAt    time.Time `json:"firstAt"`
	LastAt     time.Time `json:"lastAt"`
	Cutoff     time.Time `json:"cutoff"`
	// Blob ("<container>/<name>") and SHA256 (hex) of the archive the rows were written to, when
	// the sweep exports.
	Blob   string `json:"blob,omitempty"`
	SHA256 string `json:"sha256,omitempty"`
}
