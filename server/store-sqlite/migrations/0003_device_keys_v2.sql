-- Protocol v2 (docs/protocol.md §1): two device signing keys. The existing
-- `signing_jwk` / `signing_thumbprint` columns hold the DEVICE key (request proofs,
-- enrollment, declines); the APPROVAL key (approval proofs, migration grants) is new.
-- Devices enrolled under v1 signed everything with one key: they get approval key =
-- their old signing key, so they keep working until they rotate.
ALTER TABLE devices ADD COLUMN approval_jwk TEXT NOT NULL DEFAULT '';
ALTER TABLE devices ADD COLUMN approval_thumbprint TEXT NOT NULL DEFAULT '';
UPDATE devices SET approval_jwk = signing_jwk, approval_thumbprint = signing_thumbprint;

-- Migration grants already used (`jti` single use, docs/protocol.md §6.4), with the
-- activation code each one produced.
CREATE TABLE migration_grants (
    device_id   TEXT    NOT NULL REFERENCES devices (id),
    jti         TEXT    NOT NULL,
    expires_at  BIGINT  NOT NULL,
    used_at     BIGINT  NOT NULL,
    code_hash   TEXT    NOT NULL REFERENCES activations (code_hash),
    PRIMARY KEY (device_id, jti)
) WITHOUT ROWID;
