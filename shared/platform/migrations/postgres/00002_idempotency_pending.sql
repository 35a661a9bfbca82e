-- shared/idempotency's protocol over idempotency_keys: a request claims its key (status_code 0,
-- an empty body) in the transaction of its change, and once it has answered records the
-- response in the same row: the status, the body and the headers a replay repeats (Location,
-- ETag, Content-Type, as a JSON object in headers). So the runtime role may update exactly those
-- three columns of its claimed rows, and the table holds the headers.

-- +goose Up
ALTER TABLE idempotency_keys ADD COLUMN IF NOT EXISTS headers text NOT NULL DEFAULT ''
    CONSTRAINT idempotency_keys_headers_check CHECK (char_length(headers) <= 2000);
GRANT UPDATE (status_code, response_body, headers) ON idempotency_keys TO {{runtime_role}};

-- +goose Down
REVOKE UPDATE (status_code, response_body, headers) ON idempotency_keys FROM {{runtime_role}};
ALTER TABLE idempotency_keys DROP COLUMN headers;
