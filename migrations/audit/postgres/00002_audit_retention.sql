-- Audit retention (issue 14): the exports of the chain to the WORM archive (AuditExport) and the
-- purge of entries older than the retention that were exported (AuditPurge).
--
-- audit_exports: one row per exported range of a tenant's chain (the blob's name, its SHA-256 and
-- the chain's first prev hash and last hash), the anchor from which the chain stays verifiable after
-- its prefix is purged. The runtime role inserts and reads it only.
--
-- Purging: the runtime role still has no DELETE privilege on audit_entries. It may only call
-- audit_purge, a SECURITY DEFINER function owned by the owner role, which deletes the chain's
-- prefix that is older than the cutoff AND covered by contiguous exports, never the chain's head.
-- The append-only trigger now lets a DELETE through only when it runs as the table's owner AND the
-- transaction-local setting spine.audit_purge is 'on', which audit_purge sets around its own
-- DELETE and clears after it: the runtime role setting it itself is not the owner, and the owner's
-- plain DELETE has not set it. UPDATE and TRUNCATE stay refused for everyone.

-- +goose Up
CREATE TABLE audit_exports (
    tenant_id       uuid        NOT NULL,
    from_seq        bigint      NOT NULL CHECK (from_seq >= 1),
    to_seq          bigint      NOT NULL,
    count           integer     NOT NULL CHECK (count >= 1),
    blob            text        NOT NULL CHECK (char_length(blob) BETWEEN 1 AND 1024),
    sha256          text        NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    first_prev_hash bytea       NOT NULL CHECK (octet_length(first_prev_hash) = 32),
    last_hash       bytea       NOT NULL CHECK (octet_length(last_hash) = 32),
    evidence_id     uuid        NOT NULL,
    exported_at     timestamptz NOT NULL,
    CONSTRAINT audit_exports_pkey PRIMARY KEY (tenant_id, from_seq),
    CONSTRAINT audit_exports_range_check CHECK (to_seq >= from_seq AND count = to_seq - from_seq + 1)
);
-- The anchor lookup (the export ending just before the first retained entry).
CREATE UNIQUE INDEX audit_exports_to_seq ON audit_exports (tenant_id, to_seq);

ALTER TABLE audit_exports ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_exports FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON audit_exports
    USING (spine_tenant_visible(tenant_id)) WITH CHECK (spine_tenant_visible(tenant_id));
GRANT SELECT, INSERT ON audit_exports TO audit_app;

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION audit_entries_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE'
     AND current_setting('spine.audit_purge', true) = 'on'
     AND current_user = (SELECT pg_get_userbyid(c.relowner) FROM pg_class c WHERE c.oid = TG_RELID) THEN
    RETURN NULL; -- audit_purge's own DELETE (statement-level BEFORE: the value is ignored)
  END IF;
  RAISE EXCEPTION 'audit_entries is append-only: % refused', TG_OP
    USING ERRCODE = 'insufficient_privilege',
          HINT = 'Audit entries are never changed; exported entries past their retention are removed by audit_purge only.';
END
$$;
-- +goose StatementEnd

-- audit_purge deletes tenant p_tenant's oldest entries: from the first retained one up to
-- least(p_to_seq, the end of the exports that cover the chain contiguously from it, the chain's
-- head - 1), stopping before the first entry recorded at or after p_cutoff. It returns how many it
-- deleted (0 when nothing qualifies, e.g. a rerun). Row-level security applies (FORCE): the caller's
-- tenant scope must admit p_tenant. The head is never deleted, so the next append keeps numbering
-- the chain after it.
-- +goose StatementBegin
CREATE FUNCTION audit_purge(p_tenant uuid, p_to_seq bigint, p_cutoff timestamptz) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
  v_first bigint;
  v_head  bigint;
  v_cover bigint;
  v_limit bigint;
  v_stop  bigint;
  v_n     integer;
  r       record;
BEGIN
  SELECT min(seq), max(seq) INTO v_first, v_head FROM public.audit_entries WHERE tenant_id = p_tenant;
  IF v_first IS NULL OR p_to_seq IS NULL OR p_cutoff IS NULL THEN
    RETURN 0;
  END IF;
  v_cover := v_first - 1;
  FOR r IN SELECT e.from_seq, e.to_seq FROM public.audit_exports e
           WHERE e.tenant_id = p_tenant AND e.to_seq >= v_first AND e.from_seq <= p_to_seq
           ORDER BY e.from_seq LOOP
    EXIT WHEN r.from_seq > v_cover + 1;
    v_cover := greatest(v_cover, r.to_seq);
  END LOOP;
  v_limit := least(p_to_seq, v_cover, v_head - 1);
  IF v_limit < v_first THEN
    RETURN 0;
  END IF;
  SELECT min(seq) INTO v_stop FROM public.audit_entries
   WHERE tenant_id = p_tenant AND seq BETWEEN v_first AND v_limit AND recorded_at >= p_cutoff;
  IF v_stop IS NOT NULL THEN
    v_limit := v_stop - 1;
  END IF;
  IF v_limit < v_first THEN
    RETURN 0;
  END IF;
  PERFORM set_config('spine.audit_purge', 'on', true);
  DELETE FROM public.audit_entries WHERE tenant_id = p_tenant AND seq BETWEEN v_first AND v_limit;
  GET DIAGNOSTICS v_n = ROW_COUNT;
  PERFORM set_config('spine.audit_purge', 'off', true);
  RETURN v_n;
END
$$;
-- +goose StatementEnd

REVOKE ALL ON FUNCTION audit_purge(uuid, bigint, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit_purge(uuid, bigint, timestamptz) TO audit_app;

-- +goose Down
DROP FUNCTION audit_purge(uuid, bigint, timestamptz);
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION audit_entries_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_entries is append-only: % refused', TG_OP
    USING ERRCODE = 'insufficient_privilege',
          HINT = 'Audit entries are never changed or removed; record a new entry instead.';
END
$$;
-- +goose StatementEnd
DROP TABLE audit_exports;
