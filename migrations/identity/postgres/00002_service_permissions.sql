-- The permissions of the services that came after identity's first migration: configuration
-- (issue 12), notifications and reporting (issue 13). A user's token carries an API scope only
-- while the user holds the permission of that code (the authorization server narrows a user's
-- scopes to identity's catalog), so without these a user could never reach those routes — only
-- clients could. Integrations uses tenant.read / tenant.manage; billing.usage.write and
-- platform.ops are platform clients' scopes, never a tenant user's.
--
-- Every tenant's tenant-admin role holds the whole catalog: the existing ones get the new codes
-- here (in platform scope, to see every tenant's roles), new tenants at seeding.

-- +goose Up
SET LOCAL spine.platform = 'on';
INSERT INTO permissions (code, name, category) VALUES
    ('config.read',         'Read feature flags and settings',             'config'),
    ('config.manage',       'Change feature flag overrides and settings',  'config'),
    ('notification.read',   'Read notifications and webhook endpoints',    'notifications'),
    ('notification.send',   'Send notifications',                          'notifications'),
    ('notification.manage', 'Manage webhook endpoints and their secrets',  'notifications'),
    ('report.read',         'Read reports, runs and download artifacts',   'reporting'),
    ('report.manage',       'Define reports and request runs',             'reporting');
INSERT INTO role_permissions (tenant_id, role_id, permission_code)
SELECT r.tenant_id, r.role_id, p.code
FROM roles r
CROSS JOIN (VALUES ('config.read'), ('config.manage'), ('notification.read'), ('notification.send'),
                   ('notification.manage'), ('report.read'), ('report.manage')) AS p (code)
WHERE r.code = 'tenant-admin' AND r.is_system
ON CONFLICT DO NOTHING;

-- +goose Down
SET LOCAL spine.platform = 'on';
DELETE FROM role_permissions WHERE permission_code IN
    ('config.read', 'config.manage', 'notification.read', 'notification.send', 'notification.manage', 'report.read', 'report.manage');
DELETE FROM permissions WHERE code IN
    ('config.read', 'config.manage', 'notification.read', 'notification.send', 'notification.manage', 'report.read', 'report.manage');
