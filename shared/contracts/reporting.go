package contracts

import (
	"encoding/json"
	"time"
)

// Reporting's events (topic "reporting"). Subject: the run id, so one run's events stay in order.
// ReportRequested is also reporting's own work queue: the ReportGeneration worker consumes it.
const (
	ReportRequested = "ReportRequested"
	ReportGenerated = "ReportGenerated"
	ReportFailed    = "ReportFailed"
)

// ReportingEvents are the types the reporting service publishes.
var ReportingEvents = []string{ReportRequested, ReportGenerated, ReportFailed}

// ReportRequestedData is the data of ReportRequested: a run of a report definition was queued
// (GenerateReport). Parameters are the run's validated parameters (the source's names and
// values; never a secret: sources take dates, limits and filters).
type ReportRequestedData struct {
	TenantID    string          `json:"tenantId"`
	ReportID    string          `json:"reportId"`
	RunID       string          `json:"runId"`
	Source      string          `json:"source"`
	Format      string          `json:"format"`
	Parameters  json.RawMessage `json:"parameters"`
	RequestedBy string          `json:"requestedBy"`
	RequestedAt time.Time       `json:"requestedAt"`
}

// ReportGeneratedData is the data of ReportGenerated: the run's artifact was written (create-only)
// to the reports container under BlobName, which starts with the tenant id. SHA256 is lowercase
// hex of the artifact's bytes; ExpiresAt is when the artifact may be deleted (the retention sweep's).
type ReportGeneratedData struct {
	TenantID  string    `json:"tenantId"`
	ReportID  string    `json:"reportId"`
	RunID     string    `json:"runId"`
	Format    string    `json:"format"`
	RowCount  int64     `json:"rowCount"`
	Size      int64     `json:"size"`
	SHA256    string    `json:"sha256"`
	BlobName  string    `json:"blobName"`
	Attempts  int       `json:"attempts"`
	ExpiresAt time.Time `json:"expiresAt"`
	// GeneratedAt is when the artifact was complete.
	GeneratedAt time.Time `json:"generatedAt"`
}

// ReportFailedData is the data of ReportFailed: the run failed for good after Attempts attempts.
// ErrorClass is a stable, non-secret class ("source", "storage", "attempts-exhausted", ...), never
// an error's text.
type ReportFailedData struct {
	TenantID   string    `json:"tenantId"`
	ReportID   string    `json:"reportId"`
	RunID      string    `json:"runId"`
	Attempts   int       `json:"attempts"`
	ErrorClass string    `json:"errorClass"`
	FailedAt   time.Time `json:"failedAt"`
}
