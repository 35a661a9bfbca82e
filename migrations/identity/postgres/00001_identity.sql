-- Identity: the platform-level permission catalog, and per tenant its users, their credentials,
-- invitations, roles, role permissions and role assignments. Runs as identity_owner after the
-- platform schema (shared/platform: outbox, inbox, idempotency_keys and the row-level-security
-- helper spine_tenant_visible), which this file uses and never creates. The runtime role
-- identity_app gets DML only and is bound by row-level security: FORCE ROW LEVEL SECURITY applies
-- the policies to the table owner too.

-- +goose Up

-- The permission catalog: platform-level (no tenant), the same for every tenant, seeded here and
-- by later migrations only. Readable by every tenant, writable by none: identity_app holds SELECT
-- alone, and row-level security (enabled, not forced, so the owner's migrations can still seed it)
-- has a SELECT policy and no other, so even a stray grant would let the runtime role change
-- nothing. A migration that adds a permission also grants it to every tenant's tenant-admin role
-- (which holds the whole catalog): it must SET LOCAL spine.platform = 'on' to see those roles.
CREATE TABLE permissions (
    code     text NOT NULL CHECK (code ~ '^[a-z][a-z0-9-]*(\.[a-z][a-z0-9-]*)+$' AND char_length(code) <= 64),
    name     text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    category text NOT NULL CHECK (char_length(category) BETWEEN 1 AND 64),
    CONSTRAINT permissions_pkey PRIMARY KEY (code)
);
INSERT INTO permissions (code, name, category) VALUES
    ('audit.read',    'Read the audit trail',            'audit'),
    ('audit.write',   'Record audit entries',            'audit'),
    ('role.assign',   'Assign and revoke roles',         'identity'),
    ('role.manage',   'Create, change and delete roles', 'identity'),
    ('role.read',     'Read roles and the catalog',      'identity'),
    ('tenant.manage', 'Change the tenant',               'tenants'),
    ('tenant.read',   'Read the tenant',                 'tenants'),
    ('user.invite',   'Invite users',                    'identity'),
    ('user.manage',   'Change, disable and enable users', 'identity'),
    ('user.read',     'Read users and their permissions', 'identity');
ALTER TABLE permissions ENABLE ROW LEVEL SECURITY;
CREATE POLICY catalog_read ON permissions FOR SELECT USING (true);

-- A tenant's users. email is kept as given; email_key is its lowercase form (the service
-- computes it), on which uniqueness within the tenant is decided. The identity user id is the
-- token subject (sub) the authorization server issues for the user.
CREATE TABLE users (
    tenant_id     uuid        NOT NULL,
    user_id       uuid        NOT NULL,
    email         text        NOT NULL CHECK (char_length(email) BETWEEN 3 AND 254),
    email_key     text        NOT NULL CHECK (char_length(email_key) BETWEEN 3 AND 254),
    display_name  text        NOT NULL CHECK (char_length(display_name) <= 200),
    status        text        NOT NULL CHECK (status IN ('Invited', 'Active', 'Disabled')),
    version       bigint      NOT NULL,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    activated_at  timestamptz,
    last_login_at timestamptz,
    CONSTRAINT users_pkey PRIMARY KEY (tenant_id, user_id),
    CONSTRAINT users_email_key UNIQUE (tenant_id, email_key)
);

-- The password a user set when accepting an invitation, as an argon2id PHC string: the
-- authorization server's sign-in verifies against it. Never read by the API.
CREATE TABLE user_credentials (
    tenant_id     uuid        NOT NULL,
    user_id       uuid        NOT NULL,
    password_hash text        NOT NULL CHECK (password_hash LIKE '$argon2id$%' AND char_length(password_hash) <= 200),
    updated_at    timestamptz NOT NULL,
    CONSTRAINT user_credentials_pkey PRIMARY KEY (tenant_id, user_id),
    CONSTRAINT user_credentials_user_fk FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, user_id)
);

-- Invitations: the token is <tenant><invitation><secret> (see handlers/identity/token.go); only the
-- SHA-256 of the secret is kept. Single use: accepted_at or revoked_at set ends it.
CREATE TABLE invitations (
    tenant_id     uuid        NOT NULL,
    invitation_id uuid        NOT NULL,
    user_id       uuid        NOT NULL,
    token_hash    bytea       NOT NULL CHECK (octet_length(token_hash) = 32),
    invited_by    text        NOT NULL CHECK (char_length(invited_by) BETWEEN 1 AND 200),
    created_at    timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL,
    accepted_at   timestamptz,
    revoked_at    timestamptz,
    CONSTRAINT invitations_pkey PRIMARY KEY (tenant_id, invitation_id),
    CONSTRAINT invitations_user_fk FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, user_id)
);
CREATE INDEX invitations_user ON invitations (tenant_id, user_id);

-- A tenant's roles. System roles (tenant-admin, member) are seeded when the tenant is provisioned
-- and cannot be changed or deleted through the API.
CREATE TABLE roles (
    tenant_id  uuid        NOT NULL,
    role_id    uuid        NOT NULL,
    code       text        NOT NULL CHECK (code ~ '^[a-z][a-z0-9-]{1,62}$'),
    name       text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    is_system  boolean     NOT NULL,
    version    bigint      NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    CONSTRAINT roles_pkey PRIMARY KEY (tenant_id, role_id),
    CONSTRAINT roles_code_key UNIQUE (tenant_id, code)
);

CREATE TABLE role_permissions (
    tenant_id       uuid NOT NULL,
    role_id         uuid NOT NULL,
    permission_code text NOT NULL,
    CONSTRAINT role_permissions_pkey PRIMARY KEY (tenant_id, role_id, permission_code),
    CONSTRAINT role_permissions_role_fk FOREIGN KEY (tenant_id, role_id) REFERENCES roles (tenant_id, role_id),
    CONSTRAINT role_permissions_permission_fk FOREIGN KEY (permission_code) REFERENCES permissions (code)
);

CREATE TABLE role_assignments (
    tenant_id   uuid        NOT NULL,
    role_id     uuid        NOT NULL,
    user_id     uuid        NOT NULL,
    assigned_by text        NOT NULL CHECK (char_length(assigned_by) BETWEEN 1 AND 200),
    assigned_at timestamptz NOT NULL,
    CONSTRAINT role_assignments_pkey PRIMARY KEY (tenant_id, role_id, user_id),
    CONSTRAINT role_assignments_role_fk FOREIGN KEY (tenant_id, role_id) REFERENCES roles (tenant_id, role_id),
    CONSTRAINT role_assignments_user_fk FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, user_id)
);
-- The effective-permission read starts from the user.
CREATE INDEX role_assignments_user ON role_assignments (tenant_id, user_id, role_id);

ALTER TABLE users ENABLE ROW LEVEL SECURITY;
ALTER TABLE users FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON users
    USING (spine_tenant_visible(tenant_id)) WITH CHECK (spine_tenant_visible(tenant_id));
ALTER TABLE user_credentials ENABLE ROW LEVEL SECURITY;
ALTER TABLE user_credentials FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON user_credentials
    USING (spine_tenant_visible(tenant_id)) WITH CHECK (spine_tenant_visible(tenant_id));
ALTER TABLE invitations ENABLE ROW LEVEL SECURITY;
ALTER TABLE invitations FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON invitations
    USING (spine_tenant_visible(tenant_id)) WITH CHECK (spine_tenant_visible(tenant_id));
ALTER TABLE roles ENABLE ROW LEVEL SECURITY;
ALTER TABLE roles FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON roles
    USING (spine_tenant_visible(tenant_id)) WITH CHECK (spine_tenant_visible(tenant_id));
ALTER TABLE role_permissions ENABLE ROW LEVEL SECURITY;
ALTER TABLE role_permissions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON role_permissions
    USING (spine_tenant_visible(tenant_id)) WITH CHECK (spine_tenant_visible(tenant_id));
ALTER TABLE role_assignments ENABLE ROW LEVEL SECURITY;
ALTER TABLE role_assignments FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON role_assignments
    USING (spine_tenant_visible(tenant_id)) WITH CHECK (spine_tenant_visible(tenant_id));

GRANT SELECT ON permissions TO identity_app;
GRANT SELECT, INSERT, UPDATE ON users, user_credentials, invitations TO identity_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON roles TO identity_app;
GRANT SELECT, INSERT, DELETE ON role_permissions, role_assignments TO identity_app;

-- +goose Down
DROP TABLE role_assignments;
DROP TABLE role_permissions;
DROP TABLE roles;
DROP TABLE invitations;
DROP TABLE user_credentials;
DROP TABLE users;
DROP TABLE permissions;
