package identity

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"spine/shared/ids"
	"spine/shared/sqlstore"
	"spine/shared/tenancy"
)

// runStoreConformance runs the store's behaviour that the service relies on against a store of
// either engine (PostgreSQL here; SQL Server where a server is named). Each subtest works in
// tenants of its own.
func runStoreConformance(t *testing.T, newStore func(t *testing.T) *Store) {
	ctx := context.Background()
	at := time.Date(2026, 5, 1, 12, 0, 0, 123456000, time.UTC)
	write := func(t *testing.T, s *Store, tenant tenancy.TenantID, fn func(*Tx) error) {
		t.Helper()
		if err := s.Write(ctx, sqlstore.TenantScope(tenant), tenant, fn); err != nil {
			t.Fatal(err)
		}
	}
	newUser := func(tenant tenancy.TenantID, email string) User {
		return User{ID: UserID(ids.New()), Tenant: tenant, Email: Email(email), DisplayName: "D " + email, Status: StatusInvited,
			Version: 1, CreatedAt: at, UpdatedAt: at}
	}

	t.Run("users: insert, read back exactly, unique address per tenant in any case", func(t *testing.T) {
		s := newStore(t)
		a, b := tenancy.NewTenantID(), tenancy.NewTenantID()
		u := newUser(a, "Ann@Example.com")
		write(t, s, a, func(tx *Tx) error { return tx.InsertUser(ctx, u) })
		err := s.Write(ctx, sqlstore.TenantScope(a), a, func(tx *Tx) error { return tx.InsertUser(ctx, newUser(a, "ann@example.COM")) })
		if !errors.Is(err, ErrUserExists) {
			t.Fatalf("same address, other case: %v", err)
		}
		write(t, s, b, func(tx *Tx) error { return tx.InsertUser(ctx, newUser(b, "ann@example.com")) }) // another tenant may
		write(t, s, a, func(tx *Tx) error {
			got, err := tx.LockUserByEmail(ctx, "ANN@example.com")
			if err != nil {
				return err
			}
			if got.ID != u.ID || got.Email != u.Email || !got.CreatedAt.Equal(at) || got.ActivatedAt != nil || got.Version != 1 {
				t.Errorf("read back %+v", got)
			}
			now := at.Add(time.Hour)
			got.Status, got.Version, got.UpdatedAt, got.ActivatedAt = StatusActive, 2, now, &now
			if err := tx.UpdateUser(ctx, got); err != nil {
				return err
			}
			if err := tx.TouchLogin(ctx, got.ID, now); err != nil {
				return err
			}
			again, err := tx.User(ctx, got.ID)
			if err != nil || again.Status != StatusActive || again.ActivatedAt == nil || !again.ActivatedAt.Equal(now) || again.LastLoginAt == nil {
				t.Errorf("updated %+v %v", again, err)
			}
			if _, err := tx.User(ctx, UserID(ids.New())); !errors.Is(err, ErrUserNotFound) {
				t.Errorf("unknown user: %v", err)
			}
			return nil
		})
	})

	t.Run("users: list pages in id order with filters", func(t *testing.T) {
		s := newStore(t)
		a := tenancy.NewTenantID()
		var ids []UserID
		write(t, s, a, func(tx *Tx) error {
			for _, e := range []string{"u1@x.example", "u2@x.example", "u3@x.example", "u4@x.example", "u5@x.example"} {
				u := newUser(a, e)
				if e == "u3@x.example" {
					u.Status = StatusActive
				}
				ids = append(ids, u.ID)
				if err := tx.InsertUser(ctx, u); err != nil {
					return err
				}
			}
			return nil
		})
		var got []UserID
		after := UserID("")
		for {
			var page []User
			write(t, s, a, func(tx *Tx) error {
				var err error
				page, err = tx.ListUsers(ctx, UserQuery{After: after, Limit: 2})
				return err
			})
			for _, u := range page {
				got = append(got, u.ID)
			}
			if len(page) < 2 {
				break
			}
			after = page[len(page)-1].ID
		}
		if !slices.Equal(got, ids) {
			t.Fatalf("paged %v, want %v", got, ids)
		}
		write(t, s, a, func(tx *Tx) error {
			act, err := tx.ListUsers(ctx, UserQuery{Status: StatusActive, Limit: 10})
			if err != nil || len(act) != 1 || act[0].Email != "u3@x.example" {
				t.Errorf("status filter %v %v", act, err)
			}
			byMail, err := tx.ListUsers(ctx, UserQuery{Email: "U4@X.example", Limit: 10})
			if err != nil || len(byMail) != 1 || byMail[0].ID != ids[3] {
				t.Errorf("email filter %v %v", byMail, err)
			}
			disabled, err := tx.DisableLiveUsers(ctx, at.Add(time.Hour))
			sorted := slices.Sorted(slices.Values(ids))
			if err != nil || !slices.Equal(disabled, sorted) {
				t.Errorf("disabled %v %v, want %v", disabled, err, sorted)
			}
			for _, id := range ids {
				if u, err := tx.User(ctx, id); err != nil || u.Status != StatusDisabled || u.Version != 2 || !u.UpdatedAt.Equal(at.Add(time.Hour)) {
					t.Errorf("after DisableLiveUsers: %+v %v", u, err)
				}
			}
			if again, err := tx.DisableLiveUsers(ctx, at); err != nil || len(again) != 0 {
				t.Errorf("again: %v %v", again, err)
			}
			return nil
		})
	})

	t.Run("roles, permissions, assignments and the effective set", func(t *testing.T) {
		s := newStore(t)
		a := tenancy.NewTenantID()
		u := newUser(a, "eff@x.example")
		u.Status = StatusActive
		r1 := Role{ID: RoleID(ids.New()), Tenant: a, Code: "r-one", Name: "One", Version: 1, CreatedAt: at, UpdatedAt: at,
			Permissions: []PermissionCode{"user.read", "role.read"}}
		r2 := Role{ID: RoleID(ids.New()), Tenant: a, Code: "r-two", Name: "Two", IsSystem: true, Version: 1, CreatedAt: at, UpdatedAt: at,
			Permissions: []PermissionCode{"user.read", "audit.read"}}
		write(t, s, a, func(tx *Tx) error {
			if err := tx.InsertUser(ctx, u); err != nil {
				return err
			}
			if err := tx.InsertRole(ctx, r1); err != nil {
				return err
			}
			return tx.InsertRole(ctx, r2)
		})
		err := s.Write(ctx, sqlstore.TenantScope(a), a, func(tx *Tx) error {
			return tx.InsertRole(ctx, Role{ID: RoleID(ids.New()), Code: "r-one", Name: "Dup", Version: 1, CreatedAt: at, UpdatedAt: at})
		})
		if !errors.Is(err, ErrRoleCodeTaken) {
			t.Fatalf("duplicate code: %v", err)
		}
		err = s.Write(ctx, sqlstore.TenantScope(a), a, func(tx *Tx) error { return tx.AddRolePermission(ctx, r1.ID, "billing.pay") })
		if !errors.Is(err, ErrUnknownPermission) {
			t.Fatalf("unknown permission: %v", err)
		}
		write(t, s, a, func(tx *Tx) error {
			for _, r := range []RoleID{r1.ID, r2.ID} {
				if ok, err := tx.Assign(ctx, r, u.ID, "user:x", at); err != nil || !ok {
					t.Errorf("assign %s: %v %v", r, ok, err)
				}
			}
			if ok, err := tx.Assign(ctx, r1.ID, u.ID, "user:x", at); err != nil || ok {
				t.Errorf("assign twice: %v %v", ok, err)
			}
			got, err := tx.Role(ctx, r2.ID)
			if err != nil || !got.IsSystem || got.Code != "r-two" || !slices.Equal(got.Permissions, []PermissionCode{"audit.read", "user.read"}) {
				t.Errorf("role %+v %v", got, err)
			}
			if byCode, err := tx.RoleByCode(ctx, "r-one"); err != nil || byCode.ID != r1.ID {
				t.Errorf("by code %+v %v", byCode, err)
			}
			roles, err := tx.UserRoles(ctx, u.ID)
			want := []RoleID{r1.ID, r2.ID}
			slices.Sort(want)
			if err != nil || !slices.Equal(roles, want) {
				t.Errorf("user roles %v %v", roles, err)
			}
			holders, err := tx.RoleHolders(ctx, r1.ID)
			if err != nil || !slices.Equal(holders, []UserID{u.ID}) {
				t.Errorf("holders %v %v", holders, err)
			}
			list, err := tx.ListRoles(ctx, "", 10)
			if err != nil || len(list) != 2 {
				t.Errorf("list %v %v", list, err)
			}
			for _, r := range list { // the page carries its permissions
				want := map[RoleID][]PermissionCode{r1.ID: {"role.read", "user.read"}, r2.ID: {"audit.read", "user.read"}}[r.ID]
				if !slices.Equal(r.Permissions, want) {
					t.Errorf("listed role %s: permissions %v, want %v", r.Code, r.Permissions, want)
				}
			}
			return nil
		})
		eff, err := s.Effective(ctx, a, u.ID)
		if err != nil || !slices.Equal(eff, []string{"audit.read", "role.read", "user.read"}) {
			t.Fatalf("effective %v %v", eff, err)
		}
		write(t, s, a, func(tx *Tx) error {
			if err := tx.RemoveRolePermission(ctx, r2.ID, "audit.read"); err != nil {
				return err
			}
			if err := tx.Unassign(ctx, r1.ID, u.ID); err != nil {
				return err
			}
			if err := tx.Unassign(ctx, r1.ID, u.ID); !errors.Is(err, ErrAssignmentNotFound) {
				t.Errorf("unassign twice: %v", err)
			}
			return nil
		})
		if eff, _ := s.Effective(ctx, a, u.ID); !slices.Equal(eff, []string{"user.read"}) {
			t.Fatalf("effective after changes %v", eff)
		}
		write(t, s, a, func(tx *Tx) error { return tx.DeleteRole(ctx, r2.ID) })
		if eff, _ := s.Effective(ctx, a, u.ID); len(eff) != 0 {
			t.Fatalf("effective after the role's deletion %v", eff)
		}
		// Only Active users hold permissions.
		write(t, s, a, func(tx *Tx) error {
			if _, err := tx.Assign(ctx, r1.ID, u.ID, "user:x", at); err != nil {
				return err
			}
			u.Status, u.Version = StatusDisabled, 2
			return tx.UpdateUser(ctx, u)
		})
		if eff, _ := s.Effective(ctx, a, u.ID); len(eff) != 0 {
			t.Fatalf("a disabled user's set %v", eff)
		}
	})

	t.Run("invitations and credentials", func(t *testing.T) {
		s := newStore(t)
		a := tenancy.NewTenantID()
		u := newUser(a, "inv@x.example")
		_, hash := newInvitationToken(a, "0190c5d6-7a44-7b36-9c1e-1c0c3e2d4a5b")
		i1 := Invitation{ID: InvitationID(ids.New()), User: u.ID, TokenHash: hash, InvitedBy: "user:x", CreatedAt: at, ExpiresAt: at.Add(time.Hour)}
		i2 := Invitation{ID: InvitationID(ids.New()), User: u.ID, TokenHash: hash, InvitedBy: "user:x", CreatedAt: at, ExpiresAt: at.Add(time.Hour)}
		write(t, s, a, func(tx *Tx) error {
			if err := tx.InsertUser(ctx, u); err != nil {
				return err
			}
			if err := tx.InsertInvitation(ctx, i1); err != nil {
				return err
			}
			if err := tx.RevokeUserInvitations(ctx, u.ID, at); err != nil {
				return err
			}
			return tx.InsertInvitation(ctx, i2)
		})
		write(t, s, a, func(tx *Tx) error {
			got1, err := tx.Invitation(ctx, i1.ID)
			if err != nil || got1.RevokedAt == nil || got1.User != u.ID || string(got1.TokenHash) != string(hash) {
				t.Errorf("revoked %+v %v", got1, err)
			}
			got2, err := tx.LockInvitation(ctx, i2.ID)
			if err != nil || !got2.Pending(at) || got2.Pending(at.Add(time.Hour)) {
				t.Errorf("pending %+v %v", got2, err)
			}
			if ok, err := tx.EndInvitation(ctx, i2.ID, true, at); err != nil || !ok {
				t.Errorf("accept: %v %v", ok, err)
			}
			if ok, err := tx.EndInvitation(ctx, i2.ID, false, at); err != nil || ok {
				t.Errorf("revoke after accept: %v %v", ok, err)
			}
			if _, err := tx.Invitation(ctx, InvitationID(ids.New())); !errors.Is(err, ErrInvitationNotFound) {
				t.Errorf("unknown: %v", err)
			}
			if h, err := tx.PasswordHash(ctx, u.ID); err != nil || h != "" {
				t.Errorf("no password yet: %q %v", h, err)
			}
			if err := tx.SetPassword(ctx, u.ID, "$argon2id$v=19$m=1,t=1,p=1$c2FsdA$aGFzaA", at); err != nil {
				return err
			}
			if err := tx.SetPassword(ctx, u.ID, "$argon2id$v=19$m=2,t=1,p=1$c2FsdA$aGFzaA", at); err != nil {
				return err
			}
			if h, err := tx.PasswordHash(ctx, u.ID); err != nil || h != "$argon2id$v=19$m=2,t=1,p=1$c2FsdA$aGFzaA" {
				t.Errorf("password %q %v", h, err)
			}
			return tx.RevokeTenantInvitations(ctx, at)
		})
	})

	t.Run("the catalog", func(t *testing.T) {
		s := newStore(t)
		ps, err := s.Catalog(ctx)
		if err != nil || len(ps) != 17 || ps[0].Code != "audit.read" || ps[0].Category != "audit" {
			t.Fatalf("catalog %v %v", ps, err)
		}
	})
}

func TestPostgresStore_Conformance(t *testing.T) {
	runStoreConformance(t, func(t *testing.T) *Store { return NewStore(testDB.OpenRuntime(t, sqlstore.PoolConfig{})) })
}
