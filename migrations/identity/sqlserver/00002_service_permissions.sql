-- Azure SQL twin of postgres/00002_service_permissions.sql: the permissions of configuration,
-- notifications and reporting, granted to every tenant's tenant-admin role (read in platform
-- scope: the session context the predicate reads). Written and reviewed; not executed here.

-- +goose Up
EXEC sp_set_session_context N'platform', N'on';
INSERT INTO dbo.permissions (code, name, category) VALUES
    ('config.read',         N'Read feature flags and settings',            'config'),
    ('config.manage',       N'Change feature flag overrides and settings', 'config'),
    ('notification.read',   N'Read notifications and webhook endpoints',   'notifications'),
    ('notification.send',   N'Send notifications',                         'notifications'),
    ('notification.manage', N'Manage webhook endpoints and their secrets', 'notifications'),
    ('report.read',         N'Read reports, runs and download artifacts',  'reporting'),
    ('report.manage',       N'Define reports and request runs',            'reporting');
INSERT INTO dbo.role_permissions (tenant_id, role_id, permission_code)
SELECT r.tenant_id, r.role_id, p.code
FROM dbo.roles AS r
CROSS JOIN (VALUES ('config.read'), ('config.manage'), ('notification.read'), ('notification.send'),
                   ('notification.manage'), ('report.read'), ('report.manage')) AS p (code)
WHERE r.code = 'tenant-admin' AND r.is_system = 1
  AND NOT EXISTS (SELECT 1 FROM dbo.role_permissions AS rp
                  WHERE rp.tenant_id = r.tenant_id AND rp.role_id = r.role_id AND rp.permission_code = p.code);
EXEC sp_set_session_context N'platform', NULL;

-- +goose Down
EXEC sp_set_session_context N'platform', N'on';
DELETE FROM dbo.role_permissions WHERE permission_code IN
    ('config.read', 'config.manage', 'notification.read', 'notification.send', 'notification.manage', 'report.read', 'report.manage');
DELETE FROM dbo.permissions WHERE code IN
    ('config.read', 'config.manage', 'notification.read', 'notification.send', 'notification.manage', 'report.read', 'report.manage');
EXEC sp_set_session_context N'platform', NULL;
