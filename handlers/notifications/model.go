package notifications

import (
	"math/rand/v2"
	"regexp"
	"time"
)

// Channel is how a notification is delivered.
type Channel string

// The channels.
const (
	ChannelWebhook Channel = "webhook"
	ChannelEmail   Channel = "email"
	ChannelInApp   Channel = "inApp"
)

// Status is a notification's delivery state: Pending → Sending → Delivered | Failed (Sending →
// Pending is not a state change: a failed attempt leaves it Sending with its next attempt due).
type Status string

// The statuses.
const (
	StatusPending   Status = "Pending"
	StatusSending   Status = "Sending"
	StatusDelivered Status = "Delivered"
	StatusFailed    Status = "Failed"
)

// Notification is one notification as stored (the body inline, or a blob reference).
type Notification struct {
	TenantID  string
	ID        string
	Channel   Channel
	Recipient string
	EventType string
	Subject   string
	// Body is set when BodyBlob is empty.
	Body       string
	BodyBlob   string
	BodySize   int64
	BodySHA256 string
	Status     Status
	Attempts   int
	// NextAttemptAt is when the next attempt is due (nil once Delivered or Failed).
	NextAttemptAt  *time.Time
	LastErrorClass string
	CreatedAt      time.Time
	UpdatedAt      time.Time
	DeliveredAt    *time.Time
	FailedAt       *time.Time
}

// Attachment is an attachment's metadata; its content is the blob BlobName in
// notification-attachments.
type Attachment struct {
	Name        string
	ContentType string
	Size        int64
	SHA256      string
	BlobName    string
}

// Attempt is one row of the delivery log. Never a response body.
type Attempt struct {
	Attempt     int
	AttemptedAt time.Time
	StatusCode  int // 0: no HTTP/SMTP answer
	LatencyMS   int
	ErrorClass  string // "" on success
}

// SecretRef is where a webhook endpoint's signing secret lives: a Key Vault, a secret name and the
// version in use. The secret's value is never stored anywhere else.
type SecretRef struct {
	Vault   string `json:"vault"`
	Name    string `json:"name"`
	Version string `json:"version"`
}

// Endpoint is a tenant's webhook endpoint.
type Endpoint struct {
	TenantID    string
	ID          string
	URL         string
	Description string
	// EventTypes, when non-nil, are the notification event types the endpoint accepts.
	EventTypes     []string
	Secret         SecretRef
	Enabled        bool
	FailingSince   *time.Time
	DisabledReason string
	DisabledAt     *time.Time
	Version        int64
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// Accepts reports whether the endpoint takes notifications of eventType.
func (e Endpoint) Accepts(eventType string) bool {
	if e.EventTypes == nil {
		return true
	}
	for _, t := range e.EventTypes {
		if t == eventType {
			return true
		}
	}
	return false
}

// attachmentNameRE is the attachment name rule: 1–100 of [A-Za-z0-9._-], no leading dot (so no
// "." or ".." and no hidden files); the name becomes the last element of a blob name.
var attachmentNameRE = regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}$`)

// retrySchedule is the Svix schedule: the delay before attempt 2, 3, … 8 (attempt 1 is
// immediate). After the 8th attempt fails the notification is Failed.
var retrySchedule = []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour,
	5 * time.Hour, 10 * time.Hour, 10 * time.Hour}

// MaxAttempts is how many attempts a notification gets.
var MaxAttempts = len(retrySchedule) + 1

// retryDelay is the delay after failed attempt n (1-based) — the schedule's entry scaled by scale
// with ±10% jitter — and false when n was the last attempt.
func retryDelay(n int, scale float64) (time.Duration, bool) {
	if n < 1 || n > len(retrySchedule) {
		return 0, false
	}
	d := float64(retrySchedule[n-1]) * scale
	d *= 0.9 + 0.2*rand.Float64()
	return time.Duration(d), true
}

// attemptLease is how long a started attempt holds its notification: past it (a crashed
// instance), the retry timer starts the next attempt. Longer than any delivery's timeout.
const attemptLease = 2 * time.Minute
