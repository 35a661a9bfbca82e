-- shared/idempotency records a key in the transaction of the change (status_code 0: claimed, no
-- response yet) and the response right after the change commits: the runtime role updates the
-- record, and the replayed headers (Location, ETag, Content-Type) are kept as a JSON object.

-- +goose Up
ALTER TABLE idempotency_keys ADD COLUMN IF NOT EXISTS headers text NOT NULL DEFAULT '';
GRANT UPDATE (status_code, response_body, headers) ON idempotency_keys TO {{runtime_role}};

-- +goose Down
REVOKE UPDATE (status_code, response_body, headers) ON idempotency_keys FROM {{runtime_role}};
ALTER TABLE idempotency_keys DROP COLUMN IF EXISTS headers;
