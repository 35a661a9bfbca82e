-- Authz, the authorization server: per tenant its OAuth clients, the authorization codes, refresh
-- tokens and revoked access tokens it issued, and users' consents; and one platform-level table,
-- client_directory, that tells the token endpoint which tenant a client id belongs to. Runs as
-- authz_owner after the platform schema (shared/platform: outbox, inbox, idempotency_keys and the
-- row-level-security helper spine_tenant_visible), which this file uses and never creates. The
-- runtime role authz_app gets DML only and is bound by row-level security (FORCE: the owner too).
--
-- Platform clients and what they own carry the tenant id 00000000-0000-0000-0000-000000000000
-- (handlers/authz PlatformTenant), visible only in platform scope.
--
-- No token or secret is stored: authorization codes, refresh tokens and client secrets are kept as
-- their SHA-256 (32 bytes), so a dump of this database holds nothing a client could present.
-- Lists (redirect URIs, grant types, scopes, audience, amr) are JSON arrays of strings, the same
-- text on both engines.

-- +goose Up

-- A tenant's (or the platform's) OAuth clients. client_id is the OAuth client_id (the uuid's
-- canonical text). Never deleted: DELETE /api/clients soft-deletes (deleted_at, and the secret's
-- hash is cleared), so an id is never reused and the directory row stays valid.
CREATE TABLE clients (
    tenant_id                 uuid        NOT NULL,
    client_id                 uuid        NOT NULL,
    name                      text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    client_type               text        NOT NULL CHECK (client_type IN ('confidential', 'public')),
    redirect_uris             jsonb       NOT NULL CHECK (jsonb_typeof(redirect_uris) = 'array'),
    post_logout_redirect_uris jsonb       NOT NULL CHECK (jsonb_typeof(post_logout_redirect_uris) = 'array'),
    grant_types               jsonb       NOT NULL CHECK (jsonb_typeof(grant_types) = 'array'),
    scopes                    jsonb       NOT NULL CHECK (jsonb_typeof(scopes) = 'array'),
    first_party               boolean     NOT NULL,
    platform_admin            boolean     NOT NULL,
    secret_hash               bytea       CHECK (octet_length(secret_hash) = 32),
    secret_rotated_at         timestamptz,
    version                   bigint      NOT NULL,
    created_at                timestamptz NOT NULL,
    updated_at                timestamptz NOT NULL,
    deleted_at                timestamptz,
    CONSTRAINT clients_pkey PRIMARY KEY (tenant_id, client_id),
    -- A public client never has a secret; only a platform client may mint platform-admin tokens.
    CONSTRAINT clients_public_secret_check CHECK (client_type = 'confidential' OR secret_hash IS NULL),
    CONSTRAINT clients_platform_admin_check CHECK (NOT platform_admin OR tenant_id = '00000000-0000-0000-0000-000000000000')
);

-- Platform-level routing (no row-level security, no secret): the tenant of every client id, written
-- in the transaction that creates the client. The token endpoint reads it first (any scope sees
-- it), then reads the client in that tenant's scope.
CREATE TABLE client_directory (
    client_id uuid NOT NULL,
    tenant_id uuid NOT NULL,
    CONSTRAINT client_directory_pkey PRIMARY KEY (client_id)
);

-- Authorization codes: only the SHA-256 of the code (op's encrypted auth request id). request is
-- what the protocol needs back at redemption (scopes, redirect URI, nonce, PKCE challenge, ...).
-- family_id names the refresh-token family the code's redemption starts; reused_at marks a second
-- redemption, after which no token of that family may be issued.
CREATE TABLE auth_codes (
    tenant_id       uuid        NOT NULL,
    code_hash       bytea       NOT NULL CHECK (octet_length(code_hash) = 32),
    auth_request_id text        NOT NULL CHECK (char_length(auth_request_id) BETWEEN 1 AND 200),
    client_id       uuid        NOT NULL,
    subject         text        NOT NULL CHECK (char_length(subject) BETWEEN 1 AND 200),
    request         jsonb       NOT NULL CHECK (jsonb_typeof(request) = 'object'),
    family_id       uuid        NOT NULL,
    created_at      timestamptz NOT NULL,
    expires_at      timestamptz NOT NULL,
    redeemed_at     timestamptz,
    reused_at       timestamptz,
    CONSTRAINT auth_codes_pkey PRIMARY KEY (tenant_id, code_hash)
);
CREATE INDEX auth_codes_family ON auth_codes (tenant_id, family_id);

-- Refresh tokens: only the SHA-256 of the value. A rotation consumes a token (consumed_at,
-- replaced_by) and inserts its successor in the same family; presenting a consumed token again
-- revokes the family (revoked_at on every member).
CREATE TABLE refresh_tokens (
    tenant_id   uuid        NOT NULL,
    token_id    uuid        NOT NULL,
    token_hash  bytea       NOT NULL CHECK (octet_length(token_hash) = 32),
    family_id   uuid        NOT NULL,
    client_id   uuid        NOT NULL,
    subject     text        NOT NULL CHECK (char_length(subject) BETWEEN 1 AND 200),
    scopes      jsonb       NOT NULL CHECK (jsonb_typeof(scopes) = 'array'),
    audience    jsonb       NOT NULL CHECK (jsonb_typeof(audience) = 'array'),
    auth_time   timestamptz NOT NULL,
    amr         jsonb       NOT NULL CHECK (jsonb_typeof(amr) = 'array'),
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    consumed_at timestamptz,
    replaced_by uuid,
    revoked_at  timestamptz,
    CONSTRAINT refresh_tokens_pkey PRIMARY KEY (tenant_id, token_id),
    CONSTRAINT refresh_tokens_hash_key UNIQUE (tenant_id, token_hash)
);
-- Family revocation, a deleted client's tokens, a disabled user's tokens.
CREATE INDEX refresh_tokens_family ON refresh_tokens (tenant_id, family_id);
CREATE INDEX refresh_tokens_client ON refresh_tokens (tenant_id, client_id);
CREATE INDEX refresh_tokens_subject ON refresh_tokens (tenant_id, subject);

-- Revoked JWT access tokens (RFC 7009), by jti, until they expire; introspection consults it.
CREATE TABLE revoked_tokens (
    tenant_id  uuid        NOT NULL,
    jti        uuid        NOT NULL,
    client_id  uuid        NOT NULL,
    expires_at timestamptz NOT NULL,
    CONSTRAINT revoked_tokens_pkey PRIMARY KEY (tenant_id, jti)
);

-- The scopes a user granted a (third-party) client.
CREATE TABLE consents (
    tenant_id  uuid        NOT NULL,
    subject    text        NOT NULL CHECK (char_length(subject) BETWEEN 1 AND 200),
    client_id  uuid        NOT NULL,
    scopes     jsonb       NOT NULL CHECK (jsonb_typeof(scopes) = 'array'),
    granted_at timestamptz NOT NULL,
    CONSTRAINT consents_pkey PRIMARY KEY (tenant_id, subject, client_id)
);

-- Pruning (AuthzTokenPrune): every batch is a range of one of these indexes, in their order
-- (expires_at, tenant_id, key), never a scan.
CREATE INDEX auth_codes_expires ON auth_codes (expires_at, tenant_id, code_hash);
CREATE INDEX refresh_tokens_expires ON refresh_tokens (expires_at, tenant_id, token_id);
CREATE INDEX revoked_tokens_expires ON revoked_tokens (expires_at, tenant_id, jti);

ALTER TABLE clients ENABLE ROW LEVEL SECURITY;
ALTER TABLE clients FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON clients
    USING (spine_tenant_visible(tenant_id)) WITH CHECK (spine_tenant_visible(tenant_id));
ALTER TABLE auth_codes ENABLE ROW LEVEL SECURITY;
ALTER TABLE auth_codes FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON auth_codes
    USING (spine_tenant_visible(tenant_id)) WITH CHECK (spine_tenant_visible(tenant_id));
ALTER TABLE refresh_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE refresh_tokens FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON refresh_tokens
    USING (spine_tenant_visible(tenant_id)) WITH CHECK (spine_tenant_visible(tenant_id));
ALTER TABLE revoked_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE revoked_tokens FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON revoked_tokens
    USING (spine_tenant_visible(tenant_id)) WITH CHECK (spine_tenant_visible(tenant_id));
ALTER TABLE consents ENABLE ROW LEVEL SECURITY;
ALTER TABLE consents FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON consents
    USING (spine_tenant_visible(tenant_id)) WITH CHECK (spine_tenant_visible(tenant_id));

-- No DELETE on clients (soft delete) nor on the directory; DELETE on the token tables for pruning
-- only; revoked access tokens are never changed, consents never withdrawn through this service yet.
GRANT SELECT, INSERT, UPDATE ON clients TO authz_app;
GRANT SELECT, INSERT ON client_directory TO authz_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON auth_codes, refresh_tokens TO authz_app;
GRANT SELECT, INSERT, DELETE ON revoked_tokens TO authz_app;
GRANT SELECT, INSERT, UPDATE ON consents TO authz_app;

-- +goose Down
DROP TABLE consents;
DROP TABLE revoked_tokens;
DROP TABLE refresh_tokens;
DROP TABLE auth_codes;
DROP TABLE client_directory;
DROP TABLE clients;
