-- The retention engine's InboxPrune (shared/retention, records.go): consumers' inbox ids are kept
-- far longer than Service Bus's duplicate-detection window and then deleted in bounded batches,
-- oldest first, by this index. The runtime role gets no DELETE on inbox (an id it could delete is
-- an event it could apply twice: audit's exactly-once entries rest on it); it gets EXECUTE on
-- spine_inbox_prune, which runs as the owner and deletes only ids older than seven days — the
-- database enforces the floor whatever the caller asks. (idempotency_keys already had DELETE and
-- its created_at index for IdempotencyPrune.)

-- +goose Up
CREATE INDEX IF NOT EXISTS inbox_received_at ON inbox (received_at);

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION spine_inbox_prune(p_from timestamptz, p_to timestamptz, p_cutoff timestamptz) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  n bigint;
BEGIN
  IF p_cutoff > now() - interval '7 days' THEN
    RAISE EXCEPTION 'inbox ids are kept at least seven days (cutoff %)', p_cutoff
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  DELETE FROM inbox WHERE received_at >= p_from AND received_at <= p_to AND received_at < p_cutoff;
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END
$$;
-- +goose StatementEnd
REVOKE ALL ON FUNCTION spine_inbox_prune(timestamptz, timestamptz, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION spine_inbox_prune(timestamptz, timestamptz, timestamptz) TO {{runtime_role}};

-- +goose Down
DROP FUNCTION IF EXISTS spine_inbox_prune(timestamptz, timestamptz, timestamptz);
DROP INDEX IF EXISTS inbox_received_at;
