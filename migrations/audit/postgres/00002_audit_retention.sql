-- Audit retention (issue 14): the exports of the chain to the WORM archive (AuditExport) and the
-- purge of entries older than the retention that were exported (AuditPurge).
--
-- audit_exports: one row per exported range of a tenant's chain (the blob's name, its SHA-256 and
-- the chain's first prev hash and last hash), the anchor from which the chain stays verifiable after
-- its prefix is purged. The runtime role reads it only; rows are recorded through audit_record_export.
--
-- Purging: the runtime role still has no DELETE privilege on audit_entries. It may only call
-- audit_purge, a SECURITY DEFINER function owned by the owner role, which deletes the chain's
-- prefix that is older than the cutoff AND made of whole exports, never the chain's head.
-- The append-only trigger now lets a DELETE through only when it runs as the table's owner AND the
-- transaction-local setting spine.audit_purge is 'on', which audit_purge sets around its own
-- DELETE and clears after it: the runtime role setting it itself is not the owner, and the owner's
-- plain DELETE has not set it. UPDATE and TRUNCATE stay refused for everyone.
--
-- The retention floor: audit_purge does not take its caller's word for the cutoff (the runtime role
-- could otherwise delete every exported entry however recent). audit_retention_floor holds one
-- row, the shortest audit retention this database accepts (default 2557 days = 7 years), owned by
-- the owner role (audit_owner), which alone may change it (UPDATE audit_retention_floor SET floor_days = ...); audit_app has no
-- privilege on it. audit_purge refuses (insufficient_privilege) a cutoff later than
-- now() - floor, as the platform's spine_inbox_prune refuses a cutoff younger than seven days. An
-- edition whose audit retention is below the floor makes AuditPurge fail, visibly (the run's
-- errorClass "target"), deleting nothing, until the owner lowers the floor. A missing row counts
-- as the default.
--
-- The export rows: audit_purge takes a row of audit_exports as proof of an export, so audit_app
-- has no INSERT on it (a forged row would make never-exported entries purgeable); exports are
-- recorded only through audit_record_export, a SECURITY DEFINER function owned by the owner role,
-- which checks the row against the chain before inserting it (see its comment). It cannot see
-- Blob: a compromised runtime role can still record a consistent row for a blob it never wrote,
-- but the floor keeps it from purging anything younger than the floor, and
-- GET /audit-entries/exports/verify reports the blob as blob-missing.
--
-- Both functions run as the owner, which is bound by row-level security (FORCE): the caller's
-- tenant scope (the session setting sqlstore sets) still confines them to the caller's tenant.

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
GRANT SELECT ON audit_exports TO audit_app;

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

CREATE TABLE audit_retention_floor (
    singleton  boolean NOT NULL DEFAULT true CONSTRAINT audit_retention_floor_pkey PRIMARY KEY
               CONSTRAINT audit_retention_floor_one_row CHECK (singleton),
    floor_days integer NOT NULL DEFAULT 2557 CONSTRAINT audit_retention_floor_days_check CHECK (floor_days >= 0)
);
INSERT INTO audit_retention_floor DEFAULT VALUES;
REVOKE ALL ON audit_retention_floor FROM PUBLIC;

-- audit_purge deletes tenant p_tenant's oldest entries, whole exports at a time: from the first
-- retained entry through the end of the last of the exports that cover the chain contiguously from
-- it and end at or before p_to_seq, before the chain's head, and before the first entry recorded at
-- or after p_cutoff. So the first retained entry always follows an export's last entry (the anchor
-- GET /audit-entries/verify starts from) and the head is never deleted (the next append keeps
-- numbering the chain after it). It returns how many entries it deleted (0 when nothing qualifies,
-- e.g. a rerun). Row-level security applies (FORCE): the caller's tenant scope must admit p_tenant.
-- A cutoff later than now() - floor is refused before anything is read or deleted.
-- +goose StatementBegin
CREATE FUNCTION audit_purge(p_tenant uuid, p_to_seq bigint, p_cutoff timestamptz) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
  v_floor integer;
  v_first bigint;
  v_head  bigint;
  v_stop  bigint;
  v_limit bigint;
  v_n     integer;
  r       record;
BEGIN
  SELECT floor_days INTO v_floor FROM public.audit_retention_floor;
  v_floor := coalesce(v_floor, 2557);
  IF p_cutoff > now() - make_interval(days => v_floor) THEN
    RAISE EXCEPTION 'audit entries are kept at least % days: cutoff % is too recent', v_floor, p_cutoff
      USING ERRCODE = 'insufficient_privilege',
            HINT = 'The floor is audit_retention_floor, which only the owner role may change.';
  END IF;
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

-- audit_record_export records that tenant p_tenant's entries p_from..p_to are in the archive blob
-- p_blob, and returns true; it returns false, changing nothing, when the tenant already has an
-- export from p_from (a rerun). It refuses (check_violation, constraint audit_exports_chain) a row
-- that does not fit the chain:
--   - p_from is 1 when the tenant has no export, else exactly the last export's to_seq + 1
--     (contiguous, no overlap);
--   - p_to <= the tenant's highest seq, and p_count = p_to - p_from + 1;
--   - p_first_prev_hash is the prev hash of entry p_from (or, were that entry purged, the last
--     hash of the export ending at p_from - 1), p_last_hash the hash of entry p_to;
--   - p_blob is '<tenant>/audit/.../<p_from>-<p_to>.jsonl.gz'.
-- Two concurrent calls for the next range read the same last export, so they name the same
-- p_from: the primary key (tenant_id, from_seq) lets one insert and the other return false.
-- +goose StatementBegin
CREATE FUNCTION audit_record_export(p_tenant uuid, p_from bigint, p_to bigint, p_count integer, p_blob text,
    p_sha256 text, p_first_prev_hash bytea, p_last_hash bytea, p_evidence_id uuid, p_exported_at timestamptz)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
  v_prev_to   bigint;
  v_prev_last bytea;
  v_head      bigint;
  v_first_ph  bytea;
  v_last_h    bytea;
  v_suffix    text := format('/%s-%s.jsonl.gz', p_from, p_to);
  v_problem   text;
BEGIN
  IF EXISTS (SELECT 1 FROM public.audit_exports WHERE tenant_id = p_tenant AND from_seq = p_from) THEN
    RETURN false;
  END IF;
  SELECT e.to_seq, e.last_hash INTO v_prev_to, v_prev_last FROM public.audit_exports e
   WHERE e.tenant_id = p_tenant ORDER BY e.to_seq DESC LIMIT 1;
  SELECT max(seq) INTO v_head FROM public.audit_entries WHERE tenant_id = p_tenant;
  SELECT prev_hash INTO v_first_ph FROM public.audit_entries WHERE tenant_id = p_tenant AND seq = p_from;
  IF NOT FOUND AND v_prev_to = p_from - 1 THEN
    v_first_ph := v_prev_last;
  END IF;
  SELECT hash INTO v_last_h FROM public.audit_entries WHERE tenant_id = p_tenant AND seq = p_to;
  v_problem := CASE
    WHEN p_from IS DISTINCT FROM coalesce(v_prev_to, 0) + 1 THEN
      format('from_seq %s does not follow the last export (to_seq %s)', p_from, coalesce(v_prev_to, 0))
    WHEN p_to IS NULL OR v_head IS NULL OR p_to > v_head THEN
      format('to_seq %s is past the chain''s head (%s)', p_to, v_head)
    WHEN p_count IS DISTINCT FROM p_to - p_from + 1 THEN
      format('count %s is not to_seq - from_seq + 1', p_count)
    WHEN v_first_ph IS NULL OR p_first_prev_hash IS DISTINCT FROM v_first_ph THEN
      format('first_prev_hash is not the prev hash of entry %s', p_from)
    WHEN v_last_h IS NULL OR p_last_hash IS DISTINCT FROM v_last_h THEN
      format('last_hash is not the hash of entry %s', p_to)
    WHEN p_blob IS NULL OR NOT starts_with(p_blob, p_tenant::text || '/audit/')
         OR right(p_blob, char_length(v_suffix)) <> v_suffix THEN
      format('blob %s is not %s/audit/...%s', p_blob, p_tenant, v_suffix)
  END;
  IF v_problem IS NOT NULL THEN
    RAISE EXCEPTION 'audit export of entries % to % refused: %', p_from, p_to, v_problem
      USING ERRCODE = 'check_violation', CONSTRAINT = 'audit_exports_chain';
  END IF;
  INSERT INTO public.audit_exports (tenant_id, from_seq, to_seq, count, blob, sha256, first_prev_hash, last_hash,
                                    evidence_id, exported_at)
  VALUES (p_tenant, p_from, p_to, p_count, p_blob, p_sha256, p_first_prev_hash, p_last_hash, p_evidence_id, p_exported_at)
  ON CONFLICT (tenant_id, from_seq) DO NOTHING;
  RETURN FOUND;
END
$$;
-- +goose StatementEnd

REVOKE ALL ON FUNCTION audit_record_export(uuid, bigint, bigint, integer, text, text, bytea, bytea, uuid, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit_record_export(uuid, bigint, bigint, integer, text, text, bytea, bytea, uuid, timestamptz) TO audit_app;

-- +goose Down
DROP FUNCTION audit_record_export(uuid, bigint, bigint, integer, text, text, bytea, bytea, uuid, timestamptz);
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
DROP TABLE audit_retention_floor;
DROP TABLE audit_exports;
