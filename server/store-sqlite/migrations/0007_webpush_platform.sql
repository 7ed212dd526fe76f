-- no-transaction
-- Web Push devices (docs/push.md): platform 'webpush', whose push token is the W3C
-- PushSubscription JSON.
--
-- SQLite cannot change a CHECK in place: the table is rebuilt (sqlite.org/lang_altertable.html,
-- "other kinds of table schema changes"). Dropping `devices` while foreign keys are
-- enforced would fail on the rows that reference it, and `PRAGMA foreign_keys` cannot
-- change inside a transaction: hence no sqlx transaction around this file, our own
-- transaction inside it, and enforcement switched off only around it. Columns keep
-- their order (0003 appended approval_*), rowids are kept, and the rename makes the
-- references of request_nonces, decisions, outbox and migration_grants point at the
-- new table. Running it twice (a crash before sqlx recorded it) rebuilds again, same
-- result.
PRAGMA foreign_keys = OFF;
BEGIN IMMEDIATE;
CREATE TABLE devices_new (
    id                    TEXT     NOT NULL PRIMARY KEY,
    cardholder_id         TEXT     NOT NULL REFERENCES cardholders (id),
    status                TEXT     NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'locked', 'revoked')),
    platform              TEXT     NOT NULL CHECK (platform IN ('ios', 'android', 'webpush', 'other')),
    label                 TEXT,
    signing_jwk           TEXT     NOT NULL CHECK (json_valid(signing_jwk)),
    signing_thumbprint    TEXT     NOT NULL,
    agreement_jwk         TEXT     NOT NULL CHECK (json_valid(agreement_jwk)),
    agreement_thumbprint  TEXT     NOT NULL,
    push_token            TEXT,
    push_environment      TEXT     CHECK (push_environment IN ('sandbox', 'production')),
    failures              INTEGER  NOT NULL DEFAULT 0 CHECK (failures >= 0),
    created_at            BIGINT   NOT NULL,
    updated_at            BIGINT   NOT NULL,
    approval_jwk          TEXT     NOT NULL DEFAULT '',
    approval_thumbprint   TEXT     NOT NULL DEFAULT '',
    CHECK (push_environment IS NULL OR push_token IS NOT NULL)
);
INSERT INTO devices_new (rowid, id, cardholder_id, status, platform, label, signing_jwk,
        signing_thumbprint, agreement_jwk, agreement_thumbprint, push_token, push_environment,
        failures, created_at, updated_at, approval_jwk, approval_thumbprint)
    SELECT rowid, id, cardholder_id, status, platform, label, signing_jwk,
        signing_thumbprint, agreement_jwk, agreement_thumbprint, push_token, push_environment,
        failures, created_at, updated_at, approval_jwk, approval_thumbprint
    FROM devices;
DROP TABLE devices;
ALTER TABLE devices_new RENAME TO devices;
CREATE INDEX devices_by_cardholder ON devices (cardholder_id, created_at);
COMMIT;
PRAGMA foreign_keys = ON;
