package notifications

import (
	"context"
	"errors"

	"spine/shared/contracts"
	"spine/shared/kit"
	spinemail "spine/shared/mail"
	"spine/shared/problem"
)

// service is the module's name: its database, topic and telemetry attribute.
const service = "notifications"

// Module is Notifications as the binary serves it (kit.Module): webhook, e-mail and in-app
// notifications delivered by Service Bus-triggered workers, webhook endpoints whose secrets live
// in Key Vault, bodies and attachments in Blob.
var Module = kit.Module{
	Name:      service,
	Publishes: contracts.NotificationsEvents,
	Declare:   &API{},
	New:       newModule,
}

var _ kit.Service = (*API)(nil)

func newModule(ctx context.Context, d kit.Deps) (kit.Service, error) {
	if d.Config.StorageConnectionString != "" {
		// Local stacks (Azurite) get their containers here; in Azure, Pulumi creates them.
		for _, c := range []string{BodiesContainer, AttachmentsContainer, ArchiveContainer} {
			if err := d.Blobs.EnsureContainer(ctx, c); err != nil {
				d.Log.Warn("blob: cannot create container; notifications with large bodies or attachments fail until storage is reachable",
					"container", c, "error", err)
			}
		}
	}
	if d.Secrets == nil {
		// config refuses this already (SPINE_KEYVAULT_URL is required for notifications).
		return nil, errors.New("SPINE_KEYVAULT_URL: required when the notifications service is enabled (webhook secrets live in Key Vault)")
	}
	n := d.Config.Notifications
	var sender spinemail.Sender
	if n.SMTPAddr != "" {
		sender = spinemail.NewSMTP(spinemail.SMTPConfig{Addr: n.SMTPAddr, Username: n.SMTPUsername, Password: n.SMTPPassword})
	}
	svc := NewService(NewStore(d.DB), d.Blobs, d.Secrets, sender, d.Directory, nil, ServiceConfig{
		InlineBodyMax: n.InlineBodyMax, RetryScale: n.RetryScale, EndpointDisableAfter: n.EndpointDisableAfter,
		AllowLoopback: d.Config.EgressAllowLoopback, VaultName: d.Config.KeyVaultURL, MailFrom: n.SMTPFrom}, d.Log)
	a := NewAPI(svc, d.DB)
	if d.Retention != nil {
		if err := d.Retention.Register(svc.ArchiveSweep(ArchiveSweep)); err != nil {
			return nil, err
		}
		a.retention = d.Retention
	} else {
		d.Log.Warn("notifications: no retention engine; NotificationArchive fails until one is configured")
	}
	return a, nil
}

// MapError implements kit.Service.
func (a *API) MapError(err error) *problem.Problem { return MapError(err) }
