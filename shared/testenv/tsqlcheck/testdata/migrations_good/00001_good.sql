-- What the migration checker must accept: a guarded CREATE SCHEMA and CREATE FUNCTION through
-- EXEC, a function parameter, a DECLARE and its use in one block, a bracketed [key], a primary key.

-- +goose Up
-- +goose StatementBegin
IF SCHEMA_ID(N'rls') IS NULL
    EXEC (N'CREATE SCHEMA rls');
-- +goose StatementEnd

-- +goose StatementBegin
IF OBJECT_ID(N'rls.visible', N'IF') IS NULL
    EXEC (N'CREATE FUNCTION rls.visible(@tenant_id uniqueidentifier)
RETURNS TABLE WITH SCHEMABINDING AS
RETURN SELECT 1 AS visible WHERE @tenant_id = TRY_CAST(CAST(SESSION_CONTEXT(N''tenant_id'') AS nvarchar(36)) AS uniqueidentifier)');
-- +goose StatementEnd

CREATE TABLE dbo.things (
    thing_id uniqueidentifier NOT NULL,
    [key]    nvarchar(200)    NOT NULL, -- a comment with key, text and 'a quote
    CONSTRAINT things_pkey PRIMARY KEY (thing_id, [key])
);

-- +goose StatementBegin
DECLARE @sql nvarchar(max) = N'SELECT 1;';
IF @@TRANCOUNT > 0
BEGIN
    EXEC sys.sp_executesql @sql;
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE SECURITY POLICY rls.isolation
    ADD FILTER PREDICATE rls.visible(thing_id) ON dbo.things
    WITH (STATE = ON, SCHEMABINDING = ON);
-- +goose StatementEnd

GRANT SELECT, INSERT ON dbo.things TO things_app;

-- +goose Down
DROP SECURITY POLICY rls.isolation;
DROP TABLE dbo.things;
DROP FUNCTION rls.visible;
DROP SCHEMA rls;
