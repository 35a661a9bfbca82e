-- Audit retention (issue 14): the exports of the chain to the WORM archive (AuditExport) and the
-- purge of entries older than the retention that were exported (AuditPurge).
--
-- audit_exports: one row per exported range of a tenant's chain (the blob's name, its SHA-256 and
-- the chain's first prev hash and last hash), the anchor from which the chain stays verifiable after
-- its prefix is purged. The runtime role inserts and reads it only.
--
-- Purging: the runtime role still has no DELETE privilege on audit_entries. It may only call
-- audit_purge, a SECURITY DEFINER function owned by the owner role, which deletes the chain's
-- prefix that is older than the cutoff AND made of whole exports, never the chain's head.
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

-- audit_purge deletes tenant p_tenant's oldest entries, whole exports at a time: from the first
-- retained entry through the end of the last of the exports that cover the chain contiguously from
-- it and end at or before p_to_seq, before the chain's head, and before the first entry recorded at
-- or after p_cutoff. So the first retained entry always follows an export's last entry (the anchor
-- GET /audit-entries/verify starts from) and the head is never deleted (the next append keeps
-- numbering the chain after it). It returns how many entries it deleted (0 when nothing qualifies,
-- e.g. a rerun). Row-level security applies (FORCE): the caller's tenant scope must admit p_tenant.
-- +goose StatementBegin
CREATE FUNCTION audit_purge(p_tenant uuid, p_to_seq bigint, p_cutoff timestamptz) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
  v_first bigint;
  v_head  bigint;
  v_stop  bigint;
  v_limit bigint;
  v_n     integer;
  r       record;
BEGIN
  SELECT min(seq), max(seq) INTO v_first, v_head FROM public.audit_entries WHERE tenant_id = p_tenant;
  IF v_first IS NULL OR p_to_seq IS NULL OR p_cutoff IS NULL THEN
    RETURN 0;
  END IF;
  -- The first entry not yet due (or the head): nothing from it on is deleted.
  SELECT min(seq) INTO v_stop FROM public.audit_entries
   WHERE tenant_id = p_tenant AND seq >= v_first AND seq <= p_to_seq AND recorded_at >= p_cutoff;
  v_stop := least(coalesce(v_stop, v_head), v_head);
  v_limit := v_first - 1;
  FOR r IN SELECT e.from_seq, e.to_seq FROM public.audit_exports e
           WHERE e.tenant_id = p_tenant AND e.to_seq >= v_first AND e.from_seq <= p_to_seq
           ORDER BY e.from_seq LOOP
    EXIT WHEN r.from_seq > v_limit + 1 OR r.to_seq > p_to_seq OR r.to_seq >= v_stop;
    v_limit := r.to_seq;
  END LOOP;
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
