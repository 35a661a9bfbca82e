package contracts

import "time"

// Notifications' events (topic "notifications"). Subject: the notification id, or the webhook
// endpoint id for WebhookEndpointDisabled. No event carries a body, an attachment, a recipient's
// e-mail address or a webhook secret: ids and non-secret facts only.
const (
	NotificationRequested   = "NotificationRequested"
	NotificationSent        = "NotificationSent"
	NotificationFailed      = "NotificationFailed"
	WebhookEndpointDisabled = "WebhookEndpointDisabled"
)

// NotificationsEvents are the types the notifications service publishes.
var NotificationsEvents = []string{NotificationRequested, NotificationSent, NotificationFailed, WebhookEndpointDisabled}

// NotificationRequestedData is the data of NotificationRequested: a notification was accepted
// (status Pending) and waits for its first delivery attempt (NotificationDispatch).
type NotificationRequestedData struct {
	TenantID       string `json:"tenantId"`
	NotificationID string `json:"notificationId"`
	// Channel is webhook, email or inApp.
	Channel string `json:"channel"`
	// EndpointID is the webhook endpoint, for the webhook channel.
	EndpointID string `json:"endpointId,omitempty"`
}

// NotificationSentData is the data of NotificationSent: the notification was delivered (status
// Delivered) on its attempt number Attempts.
type NotificationSentData struct {
	TenantID       string    `json:"tenantId"`
	NotificationID string    `json:"notificationId"`
	Channel        string    `json:"channel"`
	Attempts       int       `json:"attempts"`
	DeliveredAt    time.Time `json:"deliveredAt"`
}

// NotificationFailedData is the data of NotificationFailed: the notification will not be
// delivered (status Failed) — its retries ran out, the endpoint answered 410 Gone, the endpoint is
// disabled or gone, or the mail server refused it for good. ErrorClass is the last attempt's
// (timeout, connect, tls, http-4xx, http-5xx, ssrf-refused, smtp-4xx, smtp-5xx, endpoint-disabled,
// endpoint-gone).
type NotificationFailedData struct {
	TenantID       string    `json:"tenantId"`
	NotificationID string    `json:"notificationId"`
	Channel        string    `json:"channel"`
	Attempts       int       `json:"attempts"`
	ErrorClass     string    `json:"errorClass"`
	FailedAt       time.Time `json:"failedAt"`
}

// WebhookEndpointDisabledData is the data of WebhookEndpointDisabled: the endpoint stopped
// receiving deliveries. Reason is "gone" (it answered 410) or "failing" (every delivery failed
// for SPINE_NOTIFICATIONS_ENDPOINT_DISABLE_AFTER since FailingSince).
type WebhookEndpointDisabledData struct {
	TenantID     string     `json:"tenantId"`
	EndpointID   string     `json:"endpointId"`
	Reason       string     `json:"reason"`
	FailingSince *time.Time `json:"failingSince,omitempty"`
	DisabledAt   time.Time  `json:"disabledAt"`
}
