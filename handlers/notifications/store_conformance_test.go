package notifications

import (
	"context"
	"errors"
	"testing"
	"time"

	"spine/shared/events"
	"spine/shared/ids"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
)

// runStoreConformance runs the store behaviour the service relies on against either engine.
func runStoreConformance(t *testing.T, newStore func(t *testing.T) *Store) {
	ctx := context.Background()
	at := time.Date(2026, 5, 1, 12, 0, 0, 123456000, time.UTC)
	newNotification := func(tenant tenancy.TenantID) Notification {
		next := at
		return Notification{TenantID: tenant.String(), ID: ids.New(), Channel: ChannelInApp, Recipient: ids.New(), Subject: "s",
			Body: "b", BodySize: 1, BodySHA256: "3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d",
			Status: StatusPending, NextAttemptAt: &next, CreatedAt: at, UpdatedAt: at}
	}
	create := func(t *testing.T, s *Store, n Notification, atts ...Attachment) {
		t.Helper()
		if err := s.CreateNotification(ctx, sqlstore.TenantScope(mustTenant(n.TenantID)), n, atts, nil, nil); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("a notification reads back as written, with its attachments; another tenant's scope sees nothing", func(t *testing.T) {
		s := newStore(t)
		a, b := tenancy.NewTenantID(), tenancy.NewTenantID()
		n := newNotification(a)
		att := Attachment{Name: "x.txt", ContentType: "text/plain", Size: 3, SHA256: n.BodySHA256, BlobName: a.String() + "/notifications/x"}
		create(t, s, n, att)
		d, err := s.Notification(ctx, sqlstore.TenantScope(a), a.String(), n.ID)
		if err != nil || d.ID != n.ID || d.Body != "b" || d.Status != StatusPending || !d.CreatedAt.Equal(at) || len(d.Attachments) != 1 || d.Attachments[0] != att {
			t.Fatalf("%+v %v", d, err)
		}
		// B's scope, even naming A's tenant, sees nothing.
		if _, err := s.Notification(ctx, sqlstore.TenantScope(b), a.String(), n.ID); !errors.Is(err, ErrNotFound) {
			t.Fatalf("B's scope: %v", err)
		}
		if ns, err := s.Notifications(ctx, sqlstore.TenantScope(b), a.String(), ListFilter{}, "", 10); err != nil || len(ns) != 0 {
			t.Fatalf("B lists %d of A's: %v", len(ns), err)
		}
	})

	t.Run("a blob body must start with the tenant id", func(t *testing.T) {
		s := newStore(t)
		a := tenancy.NewTenantID()
		n := newNotification(a)
		n.Body, n.BodyBlob = "", tenancy.NewTenantID().String()+"/notifications/x.body"
		if err := s.CreateNotification(ctx, sqlstore.TenantScope(a), n, nil, nil, nil); err == nil {
			t.Fatal("a body blob of another tenant's prefix was stored")
		}
	})

	t.Run("claimOne takes a due notification once; a second claim within the lease finds nothing", func(t *testing.T) {
		s := newStore(t)
		a := tenancy.NewTenantID()
		n := newNotification(a)
		create(t, s, n)
		sc := sqlstore.TenantScope(a)
		c, ok, err := s.ClaimOne(ctx, sc, a.String(), n.ID, at, at.Add(time.Minute))
		if err != nil || !ok || c.Status != StatusSending || c.Attempts != 1 || !c.NextAttemptAt.Equal(at.Add(time.Minute)) {
			t.Fatalf("%+v %v %v", c, ok, err)
		}
		if _, ok, err := s.ClaimOne(ctx, sc, a.String(), n.ID, at.Add(time.Second), at.Add(time.Minute)); ok || err != nil {
			t.Fatalf("second claim: %v %v", ok, err)
		}
		// Past the lease (a crashed attempt) it is claimed again, as attempt 2.
		if c, ok, err := s.ClaimOne(ctx, sc, a.String(), n.ID, at.Add(2*time.Minute), at.Add(3*time.Minute)); !ok || err != nil || c.Attempts != 2 {
			t.Fatalf("after the lease: %+v %v %v", c, ok, err)
		}
	})

	t.Run("claimDue skips rows another transaction holds", func(t *testing.T) {
		s := newStore(t)
		a := tenancy.NewTenantID()
		n1, n2 := newNotification(a), newNotification(a)
		create(t, s, n1)
		create(t, s, n2)
		// Hold n1 locked in an open transaction while claimDue runs.
		hold := make(chan struct{})
		held := make(chan error, 1)
		done := make(chan error, 1)
		go func() {
			done <- s.db.InTx(ctx, sqlstore.TenantScope(a), func(tx *sqlstore.Tx) error {
				if _, err := scanNotification(tx.QueryRowContext(ctx, s.q.lockNotification, a.String(), n1.ID)); err != nil {
					held <- err
					return err
				}
				held <- nil
				<-hold
				return nil
			})
		}()
		if err := <-held; err != nil {
			t.Fatal(err)
		}
		due, err := s.ClaimDue(ctx, at.Add(time.Hour), at.Add(2*time.Hour), 1000, 1000)
		close(hold)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if err != nil {
			t.Fatal(err)
		}
		var got1, got2 bool
		for _, d := range due {
			got1 = got1 || d.ID == n1.ID
			got2 = got2 || d.ID == n2.ID
		}
		if got1 || !got2 {
			t.Fatalf("claimed n1 %v (locked), n2 %v", got1, got2)
		}
	})

	t.Run("claimDue claims at most its limit", func(t *testing.T) {
		s := newStore(t)
		a := tenancy.NewTenantID()
		for range 3 * 5 {
			create(t, s, newNotification(a))
		}
		due, err := s.ClaimDue(ctx, at.Add(time.Hour), at.Add(2*time.Hour), 5, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(due) != 5 {
			t.Fatalf("claimDue(limit 5) claimed %d of 15 due", len(due))
		}
	})

	t.Run("claimDue claims at most perTenant of one tenant, so another tenant's newer row is in the batch", func(t *testing.T) {
		s := newStore(t)
		a, b := tenancy.NewTenantID(), tenancy.NewTenantID()
		for range 6 {
			create(t, s, newNotification(a))
		}
		nb := newNotification(b)
		later := at.Add(time.Minute)
		nb.NextAttemptAt = &later
		create(t, s, nb)
		due, err := s.ClaimDue(ctx, at.Add(time.Hour), at.Add(2*time.Hour), 1000, 2)
		if err != nil {
			t.Fatal(err)
		}
		var ofA, ofB int
		for _, d := range due {
			switch d.TenantID {
			case a.String():
				ofA++
			case b.String():
				ofB++
			}
		}
		if ofA != 2 || ofB != 1 {
			t.Fatalf("claimed %d of A's 6 (cap 2) and %d of B's 1", ofA, ofB)
		}
	})

	t.Run("recordAttempt ignores a stale attempt once a later one owns the notification", func(t *testing.T) {
		s := newStore(t)
		a := tenancy.NewTenantID()
		n := newNotification(a)
		create(t, s, n)
		sc := sqlstore.TenantScope(a)
		first, _, _ := s.ClaimOne(ctx, sc, a.String(), n.ID, at, at.Add(time.Minute))
		second, ok, err := s.ClaimOne(ctx, sc, a.String(), n.ID, at.Add(2*time.Minute), at.Add(3*time.Minute))
		if !ok || err != nil {
			t.Fatal(ok, err)
		}
		called := false
		err = s.RecordAttempt(ctx, sc, first, Attempt{Attempt: first.Attempts, AttemptedAt: at, LatencyMS: 1, ErrorClass: "timeout"}, at,
			func(Notification, *Endpoint) (Outcome, []events.Event, bool) {
				called = true
				return Outcome{Status: StatusFailed}, nil, false
			})
		if err != nil || called {
			t.Fatalf("stale attempt decided: %v %v", called, err)
		}
		err = s.RecordAttempt(ctx, sc, second, Attempt{Attempt: second.Attempts, AttemptedAt: at, StatusCode: 200, LatencyMS: 1}, at,
			func(Notification, *Endpoint) (Outcome, []events.Event, bool) {
				d := at
				return Outcome{Status: StatusDelivered, DeliveredAt: &d}, nil, false
			})
		d, _ := s.Notification(ctx, sc, a.String(), n.ID)
		if err != nil || d.Status != StatusDelivered || len(d.Attempts) != 2 || d.Attempts[0].ErrorClass != "timeout" || d.Attempts[1].StatusCode != 200 {
			t.Fatalf("%+v %v", d, err)
		}
	})

	t.Run("endpoints: create, update with version, delete returns the secret reference", func(t *testing.T) {
		s := newStore(t)
		a := tenancy.NewTenantID()
		sc := sqlstore.TenantScope(a)
		e := Endpoint{TenantID: a.String(), ID: ids.New(), URL: "https://x.example/h", EventTypes: []string{"a.b"}, Enabled: true, Version: 1,
			Secret: SecretRef{Vault: "https://v", Name: "webhook-x", Version: "v1"}, CreatedAt: at, UpdatedAt: at}
		if err := s.CreateEndpoint(ctx, sc, e); err != nil {
			t.Fatal(err)
		}
		got, err := s.Endpoint(ctx, sc, a.String(), e.ID)
		if err != nil || got.URL != e.URL || len(got.EventTypes) != 1 || got.Secret != e.Secret || got.EventTypes[0] != "a.b" {
			t.Fatalf("%+v %v", got, err)
		}
		up, err := s.UpdateEndpoint(ctx, sc, a.String(), e.ID, at.Add(time.Second), func(e *Endpoint) ([]events.Event, error) {
			e.EventTypes, e.Enabled, e.DisabledReason = nil, false, "manual"
			return nil, nil
		})
		if err != nil || up.Version != 2 || up.EventTypes != nil || up.Enabled {
			t.Fatalf("%+v %v", up, err)
		}
		v := int64(1)
		if _, err := s.DeleteEndpoint(ctx, sc, a.String(), e.ID, &v); !errors.Is(err, ErrVersionMismatch) {
			t.Fatalf("stale delete: %v", err)
		}
		del, err := s.DeleteEndpoint(ctx, sc, a.String(), e.ID, nil)
		if err != nil || del.Secret != e.Secret {
			t.Fatalf("%+v %v", del, err)
		}
		if _, err := s.Endpoint(ctx, sc, a.String(), e.ID); !errors.Is(err, ErrEndpointNotFound) {
			t.Fatalf("after delete: %v", err)
		}
	})
}
