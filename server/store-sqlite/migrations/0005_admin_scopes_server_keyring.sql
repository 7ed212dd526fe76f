-- Admin keys get a scope (read-only or full) and an origin: the key configured in
-- security.admin_key, the one generated on first start, or one created through the
-- admin API / CLI. Start-up revokes a configured key that is no longer configured.
ALTER TABLE admin_keys ADD COLUMN scope TEXT NOT NULL DEFAULT 'full' CHECK (scope IN ('read', 'full'));
ALTER TABLE admin_keys ADD COLUMN origin TEXT NOT NULL DEFAULT 'created'
    CHECK (origin IN ('configured', 'generated', 'created'));
UPDATE admin_keys SET origin = 'configured' WHERE name = 'configured';
UPDATE admin_keys SET origin = 'generated' WHERE name = 'generated';

-- The server's challenge-signing keys: one active, earlier ones kept (previous) for
-- the devices that pinned them. `material` is the PKCS#8 key, or its AES-256-GCM
-- envelope under the key-encryption key when `wrapped`.
CREATE TABLE server_signing_keys (
    kid         TEXT    NOT NULL PRIMARY KEY,
    material    BLOB    NOT NULL,
    wrapped     BOOLEAN NOT NULL DEFAULT FALSE,
    status      TEXT    NOT NULL CHECK (status IN ('active', 'previous')),
    created_at  BIGINT  NOT NULL,
    retired_at  BIGINT
);
CREATE UNIQUE INDEX server_signing_keys_one_active ON server_signing_keys (status) WHERE status = 'active';
INSERT INTO server_signing_keys (kid, material, wrapped, status, created_at)
    SELECT kid, pkcs8, FALSE, 'active', created_at FROM server_keys WHERE slot = 'active';
