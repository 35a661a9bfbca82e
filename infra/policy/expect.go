package policy

import (
	"spine/infra/spine"
)

// Expectations are what a stack's configuration asks for, in the terms the
// checks need.
type Expectations struct {
	Environment string
	Services    []string
	Engine      string
	ElasticPool bool
	// LockRequired and LockForbidden: prod's audit archive must be locked and
	// dev's must not be; staging follows its configuration (Locked).
	LockRequired  bool
	LockForbidden bool
	Locked        bool

	ImmutabilityDays    int
	ReportRetentionDays int
	// ReportBackstopDays is the reports lifecycle rule's age: the artifact
	// lifetime and the grace after it.
	ReportBackstopDays           int
	NotificationCoolAfterDays    int
	NotificationArchiveAfterDays int
	AuditColdAfterDays           int
	AuditArchiveAfterDays        int

	MaxDeliveryCount         int
	DuplicateDetectionWindow string
	Topics                   []spine.Topic
	Subscriptions            []spine.SubscriptionSpec
}

// ExpectFrom derives the expectations of a stack from its configuration and the
// service catalog.
func ExpectFrom(cfg spine.Config) Expectations {
	s := cfg.Storage
	return Expectations{
		Environment:                  cfg.Environment,
		Services:                     cfg.Services,
		Engine:                       cfg.Database.Engine,
		ElasticPool:                  cfg.Database.Engine == spine.EngineSQLServer && cfg.Database.SQL.ElasticPool != nil,
		LockRequired:                 cfg.Environment == spine.EnvProd,
		LockForbidden:                cfg.Environment == spine.EnvDev,
		Locked:                       s.AuditArchive.Locked,
		ImmutabilityDays:             s.AuditArchive.ImmutabilityDays,
		ReportRetentionDays:          s.ReportRetentionDays,
		ReportBackstopDays:           s.ReportRetentionDays + spine.ReportBackstopGraceDays,
		NotificationCoolAfterDays:    s.NotificationCoolAfterDays,
		NotificationArchiveAfterDays: s.NotificationArchiveAfterDays,
		AuditColdAfterDays:           s.AuditArchive.ColdAfterDays,
		AuditArchiveAfterDays:        s.AuditArchive.ArchiveAfterDays,
		MaxDeliveryCount:             cfg.ServiceBus.MaxDeliveryCount,
		DuplicateDetectionWindow:     cfg.ServiceBus.DuplicateDetectionWindow,
		Topics:                       spine.Topics(cfg.Services),
		Subscriptions:                spine.Subscriptions(cfg.Services),
	}
}
