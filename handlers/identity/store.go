package identity

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"spine/shared/sqlstore"
	"spine/shared/tenancy"
)

// Store is the identity service's persistence on either engine: each method is written once,
// here, and sends its engine's statements (statements.go; pgStatements or msStatements).
// Whatever differs between the engines is statement text; the Go below never asks which engine
// it talks to.
//
// The service's rules run inside the store's transactions: Write and Read hand a closure a Tx, a
// transaction in the row-level-security scope given (the tenant's, for every tenant-level
// operation), whose methods are the service's statements for that one tenant. Every statement
// names the tenant and row-level security checks it again. Events go to the outbox through the
// same transaction (outbox.Emit(ctx, tx.Tx, ...)).
//
// It passes every time in UTC (SQL Server keeps a datetimeoffset's clock reading in a datetime2
// column), ids as canonical text, and nullable values as sql.Null*, as the statement sets expect.
type Store struct {
	db *sqlstore.DB
	q  *statements
}

// NewStore returns the store over db (the runtime role's connection), with the statements of
// db's engine.
func NewStore(db *sqlstore.DB) *Store {
	q := &pgStatements
	if db.Dialect == sqlstore.SQLServer {
		q = &msStatements
	}
	return &Store{db: db, q: q}
}

// DB is the store's database (the idempotency middleware records its keys there).
func (s *Store) DB() *sqlstore.DB { return s.db }

// Tx is one transaction of the store, working on one tenant's rows.
type Tx struct {
	*sqlstore.Tx
	q      *statements
	tenant string
}

// Write runs fn in a transaction in scope sc working on tenant's rows; it commits when fn returns
// nil. fn may run more than once (serialization retries), so it must have no effect outside tx.
func (s *Store) Write(ctx context.Context, sc sqlstore.Scope, tenant tenancy.TenantID, fn func(*Tx) error) error {
	return s.db.InTx(ctx, sc, func(tx *sqlstore.Tx) error {
		return fn(&Tx{Tx: tx, q: s.q, tenant: tenant.String()})
	})
}

// Read is Write in a read-only transaction.
func (s *Store) Read(ctx context.Context, sc sqlstore.Scope, tenant tenancy.TenantID, fn func(*Tx) error) error {
	return s.db.InReadTx(ctx, sc, func(tx *sqlstore.Tx) error {
		return fn(&Tx{Tx: tx, q: s.q, tenant: tenant.String()})
	})
}

// Bind returns the store's Tx over an open transaction (a consumer's, which bus.Consumer opened
// in the event's tenant's scope).
func (s *Store) Bind(tx *sqlstore.Tx, tenant tenancy.TenantID) *Tx {
	return &Tx{Tx: tx, q: s.q, tenant: tenant.String()}
}

// Catalog returns the permission catalog, by code in byte order (platform-level rows: any scope
// reads them).
func (s *Store) Catalog(ctx context.Context) ([]Permission, error) {
	var out []Permission
	err := s.db.InReadTx(ctx, sqlstore.Scope{}, func(tx *sqlstore.Tx) error {
		rows, err := tx.QueryContext(ctx, s.q.catalog)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var p Permission
			if err := rows.Scan(&p.Code, &p.Name, &p.Category); err != nil {
				return err
			}
			out = append(out, p)
		}
		return rows.Err()
	})
	slices.SortFunc(out, func(a, b Permission) int { return strings.Compare(string(a.Code), string(b.Code)) })
	return out, err
}

// Effective returns the permission codes user holds in tenant (none unless Active), sorted in
// byte order. The order is Go's, not the engine's: a database collation such as en_US.utf8
// ignores '.' and '-', and the check binary-searches the set.
func (s *Store) Effective(ctx context.Context, tenant tenancy.TenantID, user UserID) ([]string, error) {
	var out []string
	err := s.Read(ctx, sqlstore.TenantScope(tenant), tenant, func(tx *Tx) error {
		var err error
		out, err = tx.strings(ctx, tx.q.effective, tx.tenant, string(user))
		return err
	})
	if out == nil {
		out = []string{}
	}
	// Sorted here, bytewise, not by the ORDER BY: Allowed binary-searches the set, and a
	// database's collation (en_US on Azure Database for PostgreSQL, SQL Server's default
	// Latin1_General) orders '.' and '-' unlike Go ("a.b" after "a-c.d" bytewise, before it there).
	slices.Sort(out)
	return out, err
}

// ---- users ----

// User returns the user, or ErrUserNotFound.
func (tx *Tx) User(ctx context.Context, id UserID) (User, error) {
	return tx.scanUser(tx.QueryRowContext(ctx, tx.q.userByID, tx.tenant, string(id)))
}

// LockUser returns the user locked until the transaction ends, or ErrUserNotFound.
func (tx *Tx) LockUser(ctx context.Context, id UserID) (User, error) {
	return tx.scanUser(tx.QueryRowContext(ctx, tx.q.lockUser, tx.tenant, string(id)))
}

// LockUserByEmail returns the user with this address (compared on its key), locked, or
// ErrUserNotFound.
func (tx *Tx) LockUserByEmail(ctx context.Context, email Email) (User, error) {
	return tx.scanUser(tx.QueryRowContext(ctx, tx.q.lockUserByEmail, tx.tenant, email.Key()))
}

// UserByEmail returns the user with this address (compared on its key), or ErrUserNotFound.
func (tx *Tx) UserByEmail(ctx context.Context, email Email) (User, error) {
	return tx.scanUser(tx.QueryRowContext(ctx, tx.q.userByEmail, tx.tenant, email.Key()))
}

// DisableLiveUsers sets every Invited or Active user Disabled (version + 1, updated at at) in one
// statement and returns their ids, in id order.
func (tx *Tx) DisableLiveUsers(ctx context.Context, at time.Time) ([]UserID, error) {
	ss, err := tx.strings(ctx, tx.q.disableLiveUsers, tx.tenant, sqlstore.UTC(at))
	out := make([]UserID, len(ss))
	for i, s := range ss {
		out[i] = UserID(s)
	}
	slices.Sort(out)
	return out, err
}

// InsertUser inserts u; an address the tenant has already is ErrUserExists, and the
// transaction stays usable: a concurrent insert of the address is waited for, and when it
// commits this inserts nothing (no unique violation, which would abort a PostgreSQL
// transaction), so the caller can lock the row it now sees.
func (tx *Tx) InsertUser(ctx context.Context, u User) error {
	res, err := tx.ExecContext(ctx, tx.q.insertUser, tx.tenant, string(u.ID), string(u.Email), u.Email.Key(), u.DisplayName,
		string(u.Status), u.Version, sqlstore.UTC(u.CreatedAt), sqlstore.UTC(u.UpdatedAt))
	if errors.Is(sqlstore.Translate(tx.Dialect, err), sqlstore.ErrUniqueViolation) {
		return ErrUserExists
	}
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return ErrUserExists
	}
	return nil
}

// UpdateUser writes u's display name, status, version, updated and activated times.
func (tx *Tx) UpdateUser(ctx context.Context, u User) error {
	return tx.execOne(ctx, ErrUserNotFound, tx.q.updateUser, tx.tenant, string(u.ID), u.DisplayName, string(u.Status), u.Version,
		sqlstore.UTC(u.UpdatedAt), sqlstore.NullUTC(u.ActivatedAt))
}

// TouchLogin records a sign-in at at.
func (tx *Tx) TouchLogin(ctx context.Context, id UserID, at time.Time) error {
	return tx.execOne(ctx, ErrUserNotFound, tx.q.touchLogin, tx.tenant, string(id), sqlstore.UTC(at))
}

// UserQuery selects a page of users.
type UserQuery struct {
	After  UserID     // "" for the first page
	Status UserStatus // "" for any
	Email  Email      // "" for any (compared on its key)
	Limit  int
}

// ListUsers returns up to q.Limit users after q.After, in id order.
func (tx *Tx) ListUsers(ctx context.Context, q UserQuery) ([]User, error) {
	after := string(q.After)
	if after == "" {
		after = zeroID
	}
	email := ""
	if q.Email != "" {
		email = q.Email.Key()
	}
	rows, err := tx.QueryContext(ctx, tx.q.listUsers, tx.tenant, after, string(q.Status), email, q.Limit)
	if err != nil {
		return nil, err
	}
	return tx.scanUsers(rows)
}

// UserRoles returns the ids of the user's roles, in id order.
func (tx *Tx) UserRoles(ctx context.Context, id UserID) ([]RoleID, error) {
	ss, err := tx.strings(ctx, tx.q.userRoles, tx.tenant, string(id))
	out := make([]RoleID, len(ss))
	for i, s := range ss {
		out[i] = RoleID(s)
	}
	return out, err
}

// SetPassword stores the password hash (a PHC string) of the user, replacing any.
func (tx *Tx) SetPassword(ctx context.Context, id UserID, hash string, at time.Time) error {
	_, err := tx.ExecContext(ctx, tx.q.upsertCredential, tx.tenant, string(id), hash, sqlstore.UTC(at))
	return err
}

// PasswordHash returns the user's password hash, or "" when it has none.
func (tx *Tx) PasswordHash(ctx context.Context, id UserID) (string, error) {
	var h string
	err := tx.QueryRowContext(ctx, tx.q.credential, tx.tenant, string(id)).Scan(&h)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return h, err
}

// ---- invitations ----

// InsertInvitation inserts inv.
func (tx *Tx) InsertInvitation(ctx context.Context, inv Invitation) error {
	_, err := tx.ExecContext(ctx, tx.q.insertInvitation, tx.tenant, string(inv.ID), string(inv.User), inv.TokenHash,
		inv.InvitedBy, sqlstore.UTC(inv.CreatedAt), sqlstore.UTC(inv.ExpiresAt))
	return err
}

// Invitation returns the invitation, or ErrInvitationNotFound.
func (tx *Tx) Invitation(ctx context.Context, id InvitationID) (Invitation, error) {
	return tx.scanInvitation(tx.QueryRowContext(ctx, tx.q.invitation, tx.tenant, string(id)))
}

// LockInvitation returns the invitation locked until the transaction ends, or
// ErrInvitationNotFound.
func (tx *Tx) LockInvitation(ctx context.Context, id InvitationID) (Invitation, error) {
	return tx.scanInvitation(tx.QueryRowContext(ctx, tx.q.lockInvitation, tx.tenant, string(id)))
}

// EndInvitation marks a pending invitation accepted (accepted=true) or revoked at at; it reports
// whether it was still pending.
func (tx *Tx) EndInvitation(ctx context.Context, id InvitationID, accepted bool, at time.Time) (bool, error) {
	acc, rev := sql.NullTime{}, sql.NullTime{}
	if accepted {
		acc = sql.NullTime{Time: sqlstore.UTC(at), Valid: true}
	} else {
		rev = sql.NullTime{Time: sqlstore.UTC(at), Valid: true}
	}
	res, err := tx.ExecContext(ctx, tx.q.endInvitation, tx.tenant, string(id), acc, rev)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// RevokeUserInvitations revokes the user's pending invitations.
func (tx *Tx) RevokeUserInvitations(ctx context.Context, id UserID, at time.Time) error {
	_, err := tx.ExecContext(ctx, tx.q.revokeUserInvitations, tx.tenant, string(id), sqlstore.UTC(at))
	return err
}

// RevokeTenantInvitations revokes every pending invitation of the tenant.
func (tx *Tx) RevokeTenantInvitations(ctx context.Context, at time.Time) error {
	_, err := tx.ExecContext(ctx, tx.q.revokeTenantInvitations, tx.tenant, sqlstore.UTC(at))
	return err
}

// ---- roles ----

// Role returns the role with its permissions, or ErrRoleNotFound.
func (tx *Tx) Role(ctx context.Context, id RoleID) (Role, error) {
	r, err := tx.scanRole(tx.QueryRowContext(ctx, tx.q.role, tx.tenant, string(id)))
	if err != nil {
		return Role{}, err
	}
	r.Permissions, err = tx.RolePermissions(ctx, id)
	return r, err
}

// LockRole returns the role (without its permissions) locked until the transaction ends, or
// ErrRoleNotFound.
func (tx *Tx) LockRole(ctx context.Context, id RoleID) (Role, error) {
	return tx.scanRole(tx.QueryRowContext(ctx, tx.q.lockRole, tx.tenant, string(id)))
}

// RoleByCode returns the role (without its permissions) with this code, or ErrRoleNotFound.
func (tx *Tx) RoleByCode(ctx context.Context, code RoleCode) (Role, error) {
	return tx.scanRole(tx.QueryRowContext(ctx, tx.q.roleByCode, tx.tenant, string(code)))
}

// InsertRole inserts r and its permissions; a code the tenant has already is ErrRoleCodeTaken,
// a permission the catalog does not have ErrUnknownPermission.
func (tx *Tx) InsertRole(ctx context.Context, r Role) error {
	_, err := tx.ExecContext(ctx, tx.q.insertRole, tx.tenant, string(r.ID), string(r.Code), r.Name, r.IsSystem, r.Version,
		sqlstore.UTC(r.CreatedAt), sqlstore.UTC(r.UpdatedAt))
	if err != nil {
		if errors.Is(sqlstore.Translate(tx.Dialect, err), sqlstore.ErrUniqueViolation) {
			return ErrRoleCodeTaken
		}
		return err
	}
	for _, p := range r.Permissions {
		if err := tx.AddRolePermission(ctx, r.ID, p); err != nil {
			return err
		}
	}
	return nil
}

// UpdateRole writes r's name, version and updated time.
func (tx *Tx) UpdateRole(ctx context.Context, r Role) error {
	return tx.execOne(ctx, ErrRoleNotFound, tx.q.updateRole, tx.tenant, string(r.ID), r.Name, r.Version, sqlstore.UTC(r.UpdatedAt))
}

// DeleteRole deletes the role with its permissions and assignments.
func (tx *Tx) DeleteRole(ctx context.Context, id RoleID) error {
	if _, err := tx.ExecContext(ctx, tx.q.deleteRoleAssignments, tx.tenant, string(id)); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, tx.q.deleteRolePermissions, tx.tenant, string(id)); err != nil {
		return err
	}
	return tx.execOne(ctx, ErrRoleNotFound, tx.q.deleteRole, tx.tenant, string(id))
}

// ListRoles returns up to limit roles with their permissions (sorted) after after ("" for the
// first page), in id order, in one statement.
func (tx *Tx) ListRoles(ctx context.Context, after RoleID, limit int) ([]Role, error) {
	a := string(after)
	if a == "" {
		a = zeroID
	}
	rows, err := tx.QueryContext(ctx, tx.q.listRoles, tx.tenant, a, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Role
	for rows.Next() {
		var perms string
		r, err := tx.scanRole(rows, &perms)
		if err != nil {
			return nil, err
		}
		r.Permissions = []PermissionCode{}
		if perms != "" {
			for _, p := range strings.Split(perms, ",") {
				r.Permissions = append(r.Permissions, PermissionCode(p))
			}
			slices.Sort(r.Permissions)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// RolePermissions returns the role's permission codes, sorted in byte order (Go's, whatever the
// engine's collation).
func (tx *Tx) RolePermissions(ctx context.Context, id RoleID) ([]PermissionCode, error) {
	ss, err := tx.strings(ctx, tx.q.rolePermissions, tx.tenant, string(id))
	out := make([]PermissionCode, len(ss))
	for i, s := range ss {
		out[i] = PermissionCode(s)
	}
	slices.Sort(out)
	return out, err
}

// AddRolePermission grants the role a permission; one the catalog does not have is
// ErrUnknownPermission.
func (tx *Tx) AddRolePermission(ctx context.Context, id RoleID, p PermissionCode) error {
	_, err := tx.ExecContext(ctx, tx.q.insertRolePermission, tx.tenant, string(id), string(p))
	if err != nil {
		if terr := sqlstore.Translate(tx.Dialect, err); errors.Is(terr, sqlstore.ErrForeignKey) &&
			sqlstore.Constraint(terr) == "role_permissions_permission_fk" {
			return fmt.Errorf("%w: %s", ErrUnknownPermission, p)
		}
	}
	return err
}

// GrantCatalog grants a role that holds no permission yet every permission of the catalog, read
// in this transaction.
func (tx *Tx) GrantCatalog(ctx context.Context, id RoleID) error {
	_, err := tx.ExecContext(ctx, tx.q.grantCatalog, tx.tenant, string(id))
	return err
}

// RemoveRolePermission takes a permission from the role.
func (tx *Tx) RemoveRolePermission(ctx context.Context, id RoleID, p PermissionCode) error {
	_, err := tx.ExecContext(ctx, tx.q.deleteRolePermission, tx.tenant, string(id), string(p))
	return err
}

// RoleHolders returns the ids of the users assigned the role, in id order.
func (tx *Tx) RoleHolders(ctx context.Context, id RoleID) ([]UserID, error) {
	ss, err := tx.strings(ctx, tx.q.roleHolders, tx.tenant, string(id))
	out := make([]UserID, len(ss))
	for i, s := range ss {
		out[i] = UserID(s)
	}
	return out, err
}

// Assign assigns the role to the user; it reports false when the user held it already.
func (tx *Tx) Assign(ctx context.Context, role RoleID, user UserID, by string, at time.Time) (bool, error) {
	res, err := tx.ExecContext(ctx, tx.q.insertAssignment, tx.tenant, string(role), string(user), by, sqlstore.UTC(at))
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// Unassign takes the role from the user, or ErrAssignmentNotFound.
func (tx *Tx) Unassign(ctx context.Context, role RoleID, user UserID) error {
	return tx.execOne(ctx, ErrAssignmentNotFound, tx.q.deleteAssignment, tx.tenant, string(role), string(user))
}

// ---- scanning and helpers ----

// zeroID is the first page's "after": lower than every id.
const zeroID = "00000000-0000-0000-0000-000000000000"

// rowScanner is *sql.Row or *sql.Rows.
type rowScanner interface{ Scan(dest ...any) error }

func (tx *Tx) scanUser(r rowScanner) (User, error) {
	var u User
	var id, email, status string
	var act, login sql.NullTime
	err := r.Scan(&id, &email, &u.DisplayName, &status, &u.Version, &u.CreatedAt, &u.UpdatedAt, &act, &login)
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, ErrUserNotFound
	}
	if err != nil {
		return User{}, err
	}
	u.ID, u.Email, u.Status = UserID(id), Email(email), UserStatus(status)
	u.Tenant = tenancy.MustParseTenantID(tx.tenant)
	u.CreatedAt, u.UpdatedAt = u.CreatedAt.UTC(), u.UpdatedAt.UTC()
	u.ActivatedAt, u.LastLoginAt = sqlstore.PtrUTC(act), sqlstore.PtrUTC(login)
	return u, nil
}

func (tx *Tx) scanUsers(rows *sql.Rows) ([]User, error) {
	defer rows.Close()
	var out []User
	for rows.Next() {
		u, err := tx.scanUser(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

func (tx *Tx) scanInvitation(r rowScanner) (Invitation, error) {
	var inv Invitation
	var id, user string
	var acc, rev sql.NullTime
	err := r.Scan(&id, &user, &inv.TokenHash, &inv.InvitedBy, &inv.CreatedAt, &inv.ExpiresAt, &acc, &rev)
	if errors.Is(err, sql.ErrNoRows) {
		return Invitation{}, ErrInvitationNotFound
	}
	if err != nil {
		return Invitation{}, err
	}
	inv.ID, inv.User = InvitationID(id), UserID(user)
	inv.Tenant = tenancy.MustParseTenantID(tx.tenant)
	inv.CreatedAt, inv.ExpiresAt = inv.CreatedAt.UTC(), inv.ExpiresAt.UTC()
	inv.AcceptedAt, inv.RevokedAt = sqlstore.PtrUTC(acc), sqlstore.PtrUTC(rev)
	return inv, nil
}

// scanRole reads roleColumns, then into extra whatever columns follow them.
func (tx *Tx) scanRole(r rowScanner, extra ...any) (Role, error) {
	var ro Role
	var id, code string
	err := r.Scan(append([]any{&id, &code, &ro.Name, &ro.IsSystem, &ro.Version, &ro.CreatedAt, &ro.UpdatedAt}, extra...)...)
	if errors.Is(err, sql.ErrNoRows) {
		return Role{}, ErrRoleNotFound
	}
	if err != nil {
		return Role{}, err
	}
	ro.ID, ro.Code = RoleID(id), RoleCode(code)
	ro.Tenant = tenancy.MustParseTenantID(tx.tenant)
	ro.CreatedAt, ro.UpdatedAt = ro.CreatedAt.UTC(), ro.UpdatedAt.UTC()
	return ro, nil
}

// strings runs a query of one text column.
func (tx *Tx) strings(ctx context.Context, query string, args ...any) ([]string, error) {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// execOne runs a statement that must change one row; none is notFound.
func (tx *Tx) execOne(ctx context.Context, notFound error, query string, args ...any) error {
	res, err := tx.ExecContext(ctx, query, args...)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return notFound
	}
	return nil
}
