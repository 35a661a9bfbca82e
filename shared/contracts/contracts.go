// Package contracts holds the integration events every publishing service emits: for each, its
// CloudEvents type name and the shape of its data. Publishers build their events from these types
// and consumers decode them with the same types, so the two can never drift apart silently; the
// module list (kit.Module.Publishes) and `handler events` list the types from here.
//
// Compatibility: a published type never changes meaning. Members may be added (consumers ignore
// members they do not know); removing or retyping one is a new event type.
package contracts

import "time"

// Actor is who caused a change, as recorded in an event: a type ("user", "admin", "service",
// "system") and an id.
type Actor struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

// Resource is what an audit entry is about: a type and an id.
type Resource struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

// Tenants' events (topic "tenants"). Subject: the tenant id.
const (
	TenantRegistered     = "TenantRegistered"
	TenantProvisioned    = "TenantProvisioned"
	TenantSuspended      = "TenantSuspended"
	TenantReactivated    = "TenantReactivated"
	TenantDecommissioned = "TenantDecommissioned"
)

// TenantsEvents are the types the tenants service publishes.
var TenantsEvents = []string{TenantRegistered, TenantProvisioned, TenantSuspended, TenantReactivated, TenantDecommissioned}

// TenantRegisteredData is the data of TenantRegistered: a tenant was registered (Provisioning).
type TenantRegisteredData struct {
	TenantID    string `json:"tenantId"`
	Name        string `json:"name"`
	Slug        string `json:"slug"`
	EditionCode string `json:"editionCode"`
	// OwnerEmail is the tenant's owner contact, whom identity invites as the first tenant admin.
	OwnerEmail string `json:"ownerEmail,omitempty"`
}

// TenantProvisionedData is the data of TenantProvisioned: every provisioning step succeeded and
// the tenant is Active.
type TenantProvisionedData struct {
	TenantID      string    `json:"tenantId"`
	Slug          string    `json:"slug"`
	EditionCode   string    `json:"editionCode"`
	ProvisionedAt time.Time `json:"provisionedAt"`
	// OwnerEmail is the tenant's owner contact at the time it became Active.
	OwnerEmail string `json:"ownerEmail,omitempty"`
}

// TenantStatusChangedData is the data of TenantSuspended, TenantReactivated and
// TenantDecommissioned: the tenant's new status and the reason given, if any.
type TenantStatusChangedData struct {
	TenantID string `json:"tenantId"`
	Status   string `json:"status"`
	Reason   string `json:"reason,omitempty"`
}

// Audit's events (topic "audit"). Subject: the entry id.
const (
	AuditEntryRecorded = "AuditEntryRecorded"
	// AuditBatchExported: a range of a tenant's chain was written to the WORM archive (subject: the
	// tenant id).
	AuditBatchExported = "AuditBatchExported"
)

// AuditEvents are the types the audit service publishes.
var AuditEvents = []string{AuditEntryRecorded, AuditBatchExported}

// AuditBatchExportedData is the data of AuditBatchExported: the tenant's entries FromSeq..ToSeq
// are in the archive blob Blob ("<container>/<name>", create-only), whose bytes have SHA256 (hex);
// LastHash (hex) is the chain's hash at ToSeq, the anchor the chain is verified from once the
// exported entries are purged.
type AuditBatchExportedData struct {
	TenantID string `json:"tenantId"`
	FromSeq  int64  `json:"fromSeq"`
	ToSeq    int64  `json:"toSeq"`
	Count    int    `json:"count"`
	Blob     string `json:"blob"`
	SHA256   string `json:"sha256"`
	LastHash string `json:"lastHash"`
}

// AuditEntryRecordedData is the data of AuditEntryRecorded: an entry recorded through the API,
// with its hash, so a copy of the chain can be kept outside the audit database.
type AuditEntryRecordedData struct {
	EntryID    string    `json:"entryId"`
	TenantID   string    `json:"tenantId"`
	Seq        int64     `json:"seq"`
	OccurredAt time.Time `json:"occurredAt"`
	RecordedAt time.Time `json:"recordedAt"`
	Actor      Actor     `json:"actor"`
	Action     string    `json:"action"`
	Resource   Resource  `json:"resource"`
	TraceID    string    `json:"traceId"`
	Hash       string    `json:"hash"`
}

// Identity's events (topic "identity"). Subject: the user id for user and assignment events (so a
// user's changes stay in order), the role id for RolePermissionsChanged. Ids are canonical UUIDs.
// No event carries an invitation token or a password hash.
const (
	UserInvited            = "UserInvited"
	UserActivated          = "UserActivated"
	UserDisabled           = "UserDisabled"
	UserEnabled            = "UserEnabled"
	RoleAssigned           = "RoleAssigned"
	RoleRevoked            = "RoleRevoked"
	RolePermissionsChanged = "RolePermissionsChanged"
)

// IdentityEvents are the types the identity service publishes.
var IdentityEvents = []string{UserInvited, UserActivated, UserDisabled, UserEnabled, RoleAssigned, RoleRevoked, RolePermissionsChanged}

// UserInvitedData is the data of UserInvited: an invitation was issued to email (a new user in
// status Invited, or a re-invitation of one still Invited), with the roles it was assigned.
type UserInvitedData struct {
	TenantID     string    `json:"tenantId"`
	UserID       string    `json:"userId"`
	InvitationID string    `json:"invitationId"`
	Email        string    `json:"email"`
	RoleIDs      []string  `json:"roleIds"`
	ExpiresAt    time.Time `json:"expiresAt"`
}

// UserActivatedData is the data of UserActivated: the user accepted an invitation and is Active.
type UserActivatedData struct {
	TenantID     string    `json:"tenantId"`
	UserID       string    `json:"userId"`
	InvitationID string    `json:"invitationId"`
	ActivatedAt  time.Time `json:"activatedAt"`
	// PasswordSet says whether the acceptance set a password (never the password or its hash).
	PasswordSet bool `json:"passwordSet"`
}

// UserStatusChangedData is the data of UserDisabled and UserEnabled: the user's new status and
// the reason given, if any ("tenant-decommissioned" when the tenant's decommissioning disabled it).
type UserStatusChangedData struct {
	TenantID string `json:"tenantId"`
	UserID   string `json:"userId"`
	Status   string `json:"status"`
	Reason   string `json:"reason,omitempty"`
}

// RoleAssignmentData is the data of RoleAssigned and RoleRevoked: user gained or lost role.
// Reason is set on RoleRevoked when the role itself was deleted ("role-deleted").
type RoleAssignmentData struct {
	TenantID string `json:"tenantId"`
	UserID   string `json:"userId"`
	RoleID   string `json:"roleId"`
	RoleCode string `json:"roleCode"`
	Reason   string `json:"reason,omitempty"`
}

// RolePermissionsChangedData is the data of RolePermissionsChanged: the role's permission set
// was replaced; Permissions is the new set, Added and Removed the difference, all sorted.
type RolePermissionsChangedData struct {
	TenantID    string   `json:"tenantId"`
	RoleID      string   `json:"roleId"`
	RoleCode    string   `json:"roleCode"`
	Permissions []string `json:"permissions"`
	Added       []string `json:"added"`
	Removed     []string `json:"removed"`
}
