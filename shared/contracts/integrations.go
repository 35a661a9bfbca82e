package contracts

import "time"

// Integrations' events (topic "integrations"). Subject: the connection id, so one connection's
// events stay in order. No event carries a secret value, a secret reference's value or the
// connection's settings: ids, the connector type, the status and non-secret facts only.
const (
	IntegrationCreated       = "IntegrationCreated"
	IntegrationUpdated       = "IntegrationUpdated"
	IntegrationSecretRotated = "IntegrationSecretRotated"
	IntegrationDeleted       = "IntegrationDeleted"
	IntegrationTested        = "IntegrationTested"
	IntegrationSyncRequested = "IntegrationSyncRequested"
)

// IntegrationsEvents are the types the integrations service publishes.
var IntegrationsEvents = []string{IntegrationCreated, IntegrationUpdated, IntegrationSecretRotated, IntegrationDeleted,
	IntegrationTested, IntegrationSyncRequested}

// IntegrationData is the data of IntegrationCreated, IntegrationUpdated, IntegrationSecretRotated
// and IntegrationDeleted: the connection, its connector type and its status after the change.
type IntegrationData struct {
	TenantID     string `json:"tenantId"`
	ConnectionID string `json:"connectionId"`
	// Type is the connector type ("http").
	Type string `json:"type"`
	// Status is Untested, Healthy, Failing or Disabled.
	Status  string    `json:"status"`
	At      time.Time `json:"at"`
	ActedBy Actor     `json:"actedBy"`
}

// IntegrationTestedData is the data of IntegrationTested: the connector's check ran. ErrorClass
// is empty when it passed, else one of timeout, connect, tls, http-4xx, http-5xx, ssrf-refused,
// secret-unavailable (never a response body).
type IntegrationTestedData struct {
	TenantID     string    `json:"tenantId"`
	ConnectionID string    `json:"connectionId"`
	Type         string    `json:"type"`
	Status       string    `json:"status"`
	ErrorClass   string    `json:"errorClass,omitempty"`
	TestedAt     time.Time `json:"testedAt"`
}

// IntegrationSyncRequestedData is the data of IntegrationSyncRequested: a sync of the connection
// was asked for; the IntegrationSync worker (a consumer of the integrations topic) runs it.
type IntegrationSyncRequestedData struct {
	TenantID     string    `json:"tenantId"`
	ConnectionID string    `json:"connectionId"`
	Type         string    `json:"type"`
	RequestedAt  time.Time `json:"requestedAt"`
	RequestedBy  Actor     `json:"requestedBy"`
}
