package reporting

import (
	"encoding/json"
	"time"
)

// service is the service's name: its database, topic, blob container owner and settings prefix.
const service = "reporting"

// Container is the blob container the artifacts live in (created by infra; EnsureContainer locally).
const Container = "reports"

// Format is a report's output format.
type Format string

// The output formats. JSON is JSON Lines (one object per row, "\n"-terminated): it streams
// without a closing bracket to hold back, and every line stands alone for tools such as jq.
const (
	FormatCSV  Format = "csv"
	FormatJSON Format = "json"
	FormatXLSX Format = "xlsx"
)

// Valid reports whether f is one of the formats.
func (f Format) Valid() bool { return f == FormatCSV || f == FormatJSON || f == FormatXLSX }

// ContentType is the artifact's content type.
func (f Format) ContentType() string {
	switch f {
	case FormatJSON:
		return "application/x-ndjson"
	case FormatXLSX:
		return "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
	}
	return "text/csv; charset=utf-8"
}

// Ext is the artifact's file extension (JSON Lines: .jsonl).
func (f Format) Ext() string {
	if f == FormatJSON {
		return "jsonl"
	}
	return string(f)
}

// Report is a report definition: a built-in source, its default parameters and the output format.
type Report struct {
	ID         string
	Name       string
	Source     string
	Parameters map[string]string
	Format     Format
	CreatedBy  string
	Version    int64
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// RunStatus is where a run is: Queued → Running → Succeeded | Failed, and Succeeded → Expired
// when the ReportArtifactLifecycle sweep deleted its artifact past its expiry.
type RunStatus string

// The run statuses.
const (
	RunQueued    RunStatus = "Queued"
	RunRunning   RunStatus = "Running"
	RunSucceeded RunStatus = "Succeeded"
	RunFailed    RunStatus = "Failed"
	RunExpired   RunStatus = "Expired"
)

// MaxAttempts is how often the worker claims a run before it fails it for good.
const MaxAttempts = 3

// Run is one generation of a report: what it ran (source, format, parameters as merged and
// validated at request time), its state, and once Succeeded its artifact.
type Run struct {
	ID          string
	ReportID    string
	Status      RunStatus
	Source      string
	Format      Format
	Parameters  map[string]string
	RequestedBy string
	Attempts    int
	LeaseUntil  *time.Time
	RowCount    *int64
	BlobName    string
	SHA256      string
	Size        *int64
	ErrorClass  string
	CreatedAt   time.Time
	StartedAt   *time.Time
	FinishedAt  *time.Time
	ExpiresAt   *time.Time
	ExpiredAt   *time.Time // when the lifecycle sweep deleted the artifact (Expired)
}

// parametersJSON is the stored form of parameters (a JSON object of strings).
func parametersJSON(p map[string]string) string {
	if p == nil {
		p = map[string]string{}
	}
	b, _ := json.Marshal(p) // a map of strings always marshals
	return string(b)
}
