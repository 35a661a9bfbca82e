package reporting

import (
	"context"
	"fmt"
	"sort"
	"time"

	"spine/shared/bus"
	"spine/shared/contracts"
	"spine/shared/functions"
	"spine/shared/sqlstore"
)

// Consumer is the inbox consumer name (and Service Bus subscription) of every reporting consumer.
const Consumer = "reporting"

// readModelConsumer feeds the read models from every other service's topic (ReportingOn<Topic>Event):
// each event counts once in rm_activity_daily (tenant, the event's UTC day, its type), and
// identity's user and role events also maintain rm_users and rm_user_roles. A group consumer:
// a group's counts are one statement whatever its size; identity's events, a trickle, are applied
// one statement each, in order.
type readModelConsumer = bus.GroupConsumer

func (s *Service) newReadModelConsumer() *readModelConsumer {
	return &bus.GroupConsumer{Name: Consumer, DB: s.store.DB(), Effect: s.onEvents, Log: s.log}
}

// onEvents is the read-model consumers' group effect (tx's scope is the group's tenants).
func (s *Service) onEvents(ctx context.Context, stx *sqlstore.Tx, ds []bus.Delivery) ([]string, error) {
	type key struct{ tenant, day, typ string }
	counts := map[key]int64{}
	notes := make([]string, len(ds))
	for i, d := range ds {
		tenant := d.TenantID.String()
		counts[key{tenant, d.Event.Time.UTC().Format(time.DateOnly), d.Event.Type}]++
		tx := s.store.bind(stx, tenant)
		note, err := s.applyIdentity(ctx, tx, d)
		if err != nil {
			return nil, err
		}
		notes[i] = note
	}
	list := make([]ActivityCount, 0, len(counts))
	for k, n := range counts {
		list = append(list, ActivityCount{Tenant: k.tenant, Day: k.day, EventType: k.typ, N: n})
	}
	// A fixed order, so concurrent groups lock the same keys in the same order.
	sort.Slice(list, func(i, j int) bool {
		a, b := list[i], list[j]
		if a.Tenant != b.Tenant {
			return a.Tenant < b.Tenant
		}
		if a.Day != b.Day {
			return a.Day < b.Day
		}
		return a.EventType < b.EventType
	})
	return notes, s.store.bind(stx, "").AddActivity(ctx, list)
}

// applyIdentity applies an identity user or role event to rm_users / rm_user_roles (nothing for
// other events) and describes it for the log.
func (s *Service) applyIdentity(ctx context.Context, tx *Tx, d bus.Delivery) (string, error) {
	at := d.Event.Time.UTC()
	switch d.Event.Type {
	case contracts.UserInvited:
		var v contracts.UserInvitedData
		if err := d.Data(&v); err != nil {
			return "", err
		}
		return "user " + v.UserID + " invited", tx.UserInvited(ctx, v.UserID, v.Email, at)
	case contracts.UserActivated:
		var v contracts.UserActivatedData
		if err := d.Data(&v); err != nil {
			return "", err
		}
		act := v.ActivatedAt.UTC()
		return "user " + v.UserID + " active", tx.UserStatus(ctx, v.UserID, "Active", &act, at)
	case contracts.UserDisabled, contracts.UserEnabled:
		var v contracts.UserStatusChangedData
		if err := d.Data(&v); err != nil {
			return "", err
		}
		status := "Disabled"
		if d.Event.Type == contracts.UserEnabled {
			status = "Active"
		}
		return "user " + v.UserID + " " + status, tx.UserStatus(ctx, v.UserID, status, nil, at)
	case contracts.RoleAssigned:
		var v contracts.RoleAssignmentData
		if err := d.Data(&v); err != nil {
			return "", err
		}
		return fmt.Sprintf("user %s role %s assigned", v.UserID, v.RoleCode), tx.RoleAssigned(ctx, v.UserID, v.RoleID, v.RoleCode, at)
	case contracts.RoleRevoked:
		var v contracts.RoleAssignmentData
		if err := d.Data(&v); err != nil {
			return "", err
		}
		return fmt.Sprintf("user %s role %s revoked", v.UserID, v.RoleCode), tx.RoleRevoked(ctx, v.UserID, v.RoleID)
	}
	return "counted", nil
}

// onEvent serves every ReportingOn<Topic>Event invocation through the read-model group consumer.
func (a *API) onEvent(ctx context.Context, inv *functions.Invocation) (*functions.Result, error) {
	return a.svc.readModel.Consume(ctx, inv)
}
