-- A set scope (sqlstore.TenantSetScope): one transaction that writes rows of several tenants at
-- once — a consumer committing a group of events with one statement per kind — runs with the
-- group's tenants in spine.tenant_set, and row-level security admits a row of any tenant in that
-- set and no other. spine.tenant_set is a uuid[] literal ('{…,…}') written by sqlstore at the start
-- of every transaction ('' when the scope is not a set), so a previous scope never lingers.

-- +goose Up
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION spine_tenant_visible(row_tenant uuid) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT current_setting('spine.platform', true) = 'on'
      OR row_tenant = NULLIF(current_setting('spine.tenant_id', true), '')::uuid
      OR row_tenant = ANY (NULLIF(current_setting('spine.tenant_set', true), '')::uuid[])
$$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION spine_tenant_visible(row_tenant uuid) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT current_setting('spine.platform', true) = 'on'
      OR row_tenant = NULLIF(current_setting('spine.tenant_id', true), '')::uuid
$$;
-- +goose StatementEnd
