-- A set scope (sqlstore.TenantSetScope): one transaction that writes rows of several tenants at
-- once runs with the group's tenants in SESSION_CONTEXT 'tenant_set' (comma-separated ids, written
-- by sqlstore at the start of every transaction, '' when the scope is not a set), and row-level
-- security admits a row of any tenant in that set and no other. The set holds lowercase canonical
-- ids separated by commas; an id has no comma, so finding one's 36 characters in it is finding
-- that element.
--
-- rls.tenant_visible is schema-bound by every security policy that uses it (the platform's and
-- each service's), so it cannot be altered while they reference it: every such policy is dropped,
-- the function altered, and each policy created again with exactly the predicates and state it
-- had, all in this migration's transaction. Written and reviewed; not run on these machines (no
-- SQL Server).

-- +goose Up
-- +goose StatementBegin
IF OBJECT_ID(N'rls.tenant_visible', N'IF') IS NOT NULL
BEGIN
DECLARE @drop nvarchar(max), @create nvarchar(max);
SELECT @drop = STRING_AGG(CAST(N'DROP SECURITY POLICY ' + QUOTENAME(OBJECT_SCHEMA_NAME(p.object_id)) + N'.'
        + QUOTENAME(p.name) + N';' AS nvarchar(max)), NCHAR(10))
    FROM sys.security_policies AS p
    WHERE EXISTS (SELECT 1 FROM sys.sql_expression_dependencies AS d
                  WHERE d.referencing_id = p.object_id AND d.referenced_id = OBJECT_ID(N'rls.tenant_visible'));
SELECT @create = STRING_AGG(CAST(x.stmt AS nvarchar(max)), NCHAR(10))
    FROM (SELECT N'CREATE SECURITY POLICY ' + QUOTENAME(OBJECT_SCHEMA_NAME(p.object_id)) + N'.' + QUOTENAME(p.name) + NCHAR(10)
                 + (SELECT STRING_AGG(CAST(N'    ADD ' + sp.predicate_type_desc + N' PREDICATE ' + sp.predicate_definition
                          + N' ON ' + QUOTENAME(OBJECT_SCHEMA_NAME(sp.target_object_id)) + N'.' + QUOTENAME(OBJECT_NAME(sp.target_object_id))
                          + COALESCE(N' ' + REPLACE(sp.operation_desc, N'_', N' '), N'') AS nvarchar(max)), N',' + NCHAR(10))
                    FROM sys.security_predicates AS sp WHERE sp.object_id = p.object_id)
                 + NCHAR(10) + N'    WITH (STATE = ' + CASE WHEN p.is_enabled = 1 THEN N'ON' ELSE N'OFF' END
                 + N', SCHEMABINDING = ON);' AS stmt
          FROM sys.security_policies AS p
          WHERE EXISTS (SELECT 1 FROM sys.sql_expression_dependencies AS d
                        WHERE d.referencing_id = p.object_id AND d.referenced_id = OBJECT_ID(N'rls.tenant_visible'))) AS x;
IF @drop IS NOT NULL
    EXEC sys.sp_executesql @drop;
EXEC (N'ALTER FUNCTION rls.tenant_visible(@tenant_id uniqueidentifier)
RETURNS TABLE WITH SCHEMABINDING AS
RETURN SELECT 1 AS visible
WHERE CAST(SESSION_CONTEXT(N''platform'') AS nvarchar(8)) = N''on''
   OR @tenant_id = TRY_CAST(CAST(SESSION_CONTEXT(N''tenant_id'') AS nvarchar(36)) AS uniqueidentifier)
   OR CHARINDEX(LOWER(CONVERT(nchar(36), @tenant_id)), CAST(SESSION_CONTEXT(N''tenant_set'') AS nvarchar(4000))) > 0');
IF @create IS NOT NULL
    EXEC sys.sp_executesql @create;
END;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
IF OBJECT_ID(N'rls.tenant_visible', N'IF') IS NOT NULL
BEGIN
DECLARE @drop nvarchar(max), @create nvarchar(max);
SELECT @drop = STRING_AGG(CAST(N'DROP SECURITY POLICY ' + QUOTENAME(OBJECT_SCHEMA_NAME(p.object_id)) + N'.'
        + QUOTENAME(p.name) + N';' AS nvarchar(max)), NCHAR(10))
    FROM sys.security_policies AS p
    WHERE EXISTS (SELECT 1 FROM sys.sql_expression_dependencies AS d
                  WHERE d.referencing_id = p.object_id AND d.referenced_id = OBJECT_ID(N'rls.tenant_visible'));
SELECT @create = STRING_AGG(CAST(x.stmt AS nvarchar(max)), NCHAR(10))
    FROM (SELECT N'CREATE SECURITY POLICY ' + QUOTENAME(OBJECT_SCHEMA_NAME(p.object_id)) + N'.' + QUOTENAME(p.name) + NCHAR(10)
                 + (SELECT STRING_AGG(CAST(N'    ADD ' + sp.predicate_type_desc + N' PREDICATE ' + sp.predicate_definition
                          + N' ON ' + QUOTENAME(OBJECT_SCHEMA_NAME(sp.target_object_id)) + N'.' + QUOTENAME(OBJECT_NAME(sp.target_object_id))
                          + COALESCE(N' ' + REPLACE(sp.operation_desc, N'_', N' '), N'') AS nvarchar(max)), N',' + NCHAR(10))
                    FROM sys.security_predicates AS sp WHERE sp.object_id = p.object_id)
                 + NCHAR(10) + N'    WITH (STATE = ' + CASE WHEN p.is_enabled = 1 THEN N'ON' ELSE N'OFF' END
                 + N', SCHEMABINDING = ON);' AS stmt
          FROM sys.security_policies AS p
          WHERE EXISTS (SELECT 1 FROM sys.sql_expression_dependencies AS d
                        WHERE d.referencing_id = p.object_id AND d.referenced_id = OBJECT_ID(N'rls.tenant_visible'))) AS x;
IF @drop IS NOT NULL
    EXEC sys.sp_executesql @drop;
EXEC (N'ALTER FUNCTION rls.tenant_visible(@tenant_id uniqueidentifier)
RETURNS TABLE WITH SCHEMABINDING AS
RETURN SELECT 1 AS visible
WHERE CAST(SESSION_CONTEXT(N''platform'') AS nvarchar(8)) = N''on''
   OR @tenant_id = TRY_CAST(CAST(SESSION_CONTEXT(N''tenant_id'') AS nvarchar(36)) AS uniqueidentifier)');
IF @create IS NOT NULL
    EXEC sys.sp_executesql @create;
END;
-- +goose StatementEnd
