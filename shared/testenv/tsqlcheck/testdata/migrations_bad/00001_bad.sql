-- Each statement holds one mistake the migration checker must find (see migrations_test.go).

-- +goose Up
IF SCHEMA_ID(N'rls') IS NULL
    CREATE SCHEMA rls;

DECLARE @split nvarchar(max) = N'';
SELECT @split = N'x';

CREATE TABLE things (
    thing_id uuid NOT NULL,
    key      nvarchar(200) NOT NULL,
    CONSTRAINT things_pkey PRIMARY KEY (thing_id)
);

CREATE INDEX IF NOT EXISTS things_key ON dbo.things (thing_id);

-- +goose StatementBegin
IF OBJECT_ID(N'dbo.other', N'U') IS NULL
    EXEC (N'SELECT 1; CREATE FUNCTION dbo.f() RETURNS int AS BEGIN RETURN 1 END');
-- +goose StatementEnd

GRANT SELECT ON dbo.things TO {{runtime_role}};

-- +goose Down
DROP TABLE dbo.things;
