-- pushauth SQLite schema, version 1.
--
-- Conventions (shared with the PostgreSQL schema):
--   * times are BIGINT Unix milliseconds;
--   * ids are TEXT (lower-case UUIDs), row ids of our own tables are integers;
--   * JSON is TEXT here (checked with json_valid); PostgreSQL uses JSONB except for
--     audit details, which are TEXT on both so the hash chain re-computes from the
--     exact bytes that were hashed;
--   * money is amount_minor (integer minor units) + currency (ISO 4217 code);
--   * every closed vocabulary has a CHECK listing the texts of its Rust enum.
-- Never edit a migration once applied: add a new file.

-- The server's challenge-signing key. One row, slot 'active', so that several
-- processes starting at once agree on a single key (INSERT ... ON CONFLICT DO NOTHING).
CREATE TABLE server_keys (
    slot        TEXT    NOT NULL PRIMARY KEY CHECK (slot = 'active'),
    kid         TEXT    NOT NULL,
    pkcs8       BLOB    NOT NULL,
    created_at  BIGINT  NOT NULL
);

-- Admin API keys: only the SHA-256 (hex) of the key is stored.
CREATE TABLE admin_keys (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT    NOT NULL,
    key_hash    TEXT    NOT NULL UNIQUE CHECK (length(key_hash) = 64),
    created_at  BIGINT  NOT NULL,
    revoked_at  BIGINT
);

CREATE TABLE cardholders (
    id            TEXT    NOT NULL PRIMARY KEY,
    external_ref  TEXT    UNIQUE,
    label         TEXT,
    status        TEXT    NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'blocked')),
    created_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL
);
CREATE INDEX cardholders_by_created ON cardholders (created_at DESC, id DESC);

-- Processor-side identifiers (Enfuce customerNumber, Adyen paymentInstrumentId, ...).
CREATE TABLE card_links (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    cardholder_id  TEXT    NOT NULL REFERENCES cardholders (id),
    provider       TEXT    NOT NULL CHECK (provider IN ('enfuce', 'adyen', 'paysafe', 'treezor', 'api')),
    provider_key   TEXT    NOT NULL,
    label          TEXT,
    created_at     BIGINT  NOT NULL,
    UNIQUE (provider, provider_key)
);
CREATE INDEX card_links_by_cardholder ON card_links (cardholder_id, id);

-- Single-use activation codes (SHA-256 hex of the code).
CREATE TABLE activations (
    code_hash      TEXT    NOT NULL PRIMARY KEY CHECK (length(code_hash) = 64),
    cardholder_id  TEXT    NOT NULL REFERENCES cardholders (id),
    expires_at     BIGINT  NOT NULL,
    created_at     BIGINT  NOT NULL,
    used_at        BIGINT,
    device_id      TEXT
);
CREATE INDEX activations_by_cardholder ON activations (cardholder_id);

CREATE TABLE devices (
    id                    TEXT     NOT NULL PRIMARY KEY,
    cardholder_id         TEXT     NOT NULL REFERENCES cardholders (id),
    status                TEXT     NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'locked', 'revoked')),
    platform              TEXT     NOT NULL CHECK (platform IN ('ios', 'android', 'other')),
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
    CHECK (push_environment IS NULL OR push_token IS NOT NULL)
);
CREATE INDEX devices_by_cardholder ON devices (cardholder_id, created_at);

-- One-time `jti`s of device requests, kept until they expire.
CREATE TABLE request_nonces (
    device_id   TEXT    NOT NULL REFERENCES devices (id),
    jti         TEXT    NOT NULL,
    expires_at  BIGINT  NOT NULL,
    PRIMARY KEY (device_id, jti)
) WITHOUT ROWID;
CREATE INDEX request_nonces_by_expiry ON request_nonces (expires_at);

CREATE TABLE challenges (
    id                 TEXT    NOT NULL PRIMARY KEY,
    cardholder_id      TEXT    NOT NULL REFERENCES cardholders (id),
    provider           TEXT    NOT NULL CHECK (provider IN ('enfuce', 'adyen', 'paysafe', 'treezor', 'api')),
    provider_ref       TEXT    NOT NULL,
    kind               TEXT    NOT NULL CHECK (kind IN ('payment', 'recurring', 'wallet_operation')),
    amount_minor       BIGINT  CHECK (amount_minor >= 0),
    currency           TEXT    CHECK (length(currency) = 3),
    payee              TEXT,
    nonce              TEXT    NOT NULL,
    txn_digest         TEXT    NOT NULL,
    deadline           BIGINT  NOT NULL,
    upstream_deadline  BIGINT  NOT NULL,
    processor_input    TEXT,
    context            TEXT    NOT NULL CHECK (json_valid(context)),
    status             TEXT    NOT NULL DEFAULT 'pending'
                               CHECK (status IN ('pending', 'approved', 'denied', 'expired', 'cancelled')),
    upstream_status    TEXT    NOT NULL DEFAULT 'none'
                               CHECK (upstream_status IN ('none', 'queued', 'delivered', 'failed', 'too_late')),
    closed_at          BIGINT,
    final_status       TEXT    CHECK (json_valid(final_status)),
    created_at         BIGINT  NOT NULL,
    -- duplicate webhooks collapse on the processor's reference
    UNIQUE (provider, provider_ref),
    CHECK ((amount_minor IS NULL) = (currency IS NULL)),
    CHECK ((status = 'pending') = (closed_at IS NULL))
);
-- challenge_pending_for / challenge_count_pending
CREATE INDEX challenges_pending_by_cardholder ON challenges (cardholder_id, created_at) WHERE status = 'pending';
-- challenge_due
CREATE INDEX challenges_pending_by_deadline ON challenges (deadline) WHERE status = 'pending';
-- challenge_list (by status, by cardholder, all)
CREATE INDEX challenges_by_status_created ON challenges (status, created_at DESC);
CREATE INDEX challenges_by_cardholder_created ON challenges (cardholder_id, created_at DESC);
CREATE INDEX challenges_by_created ON challenges (created_at DESC);

-- The first valid decision of a challenge (at most one: the key is the challenge).
CREATE TABLE decisions (
    challenge_id       TEXT    NOT NULL PRIMARY KEY REFERENCES challenges (id),
    device_id          TEXT    NOT NULL REFERENCES devices (id),
    decision           TEXT    NOT NULL CHECK (decision IN ('approve', 'deny')),
    reason             TEXT    CHECK (reason IN ('not_me', 'declined')),
    user_verification  TEXT    NOT NULL,
    proof              TEXT    NOT NULL,
    processor_output   TEXT,
    at                 BIGINT  NOT NULL
);
CREATE INDEX decisions_by_device ON decisions (device_id);

-- Side effects to perform after commit: pushes, dismisses, upstream results.
CREATE TABLE outbox (
    id               INTEGER  PRIMARY KEY AUTOINCREMENT,
    kind             TEXT     NOT NULL CHECK (kind IN ('push', 'dismiss', 'upstream')),
    challenge_id     TEXT     NOT NULL REFERENCES challenges (id),
    device_id        TEXT     REFERENCES devices (id),
    payload          TEXT     NOT NULL CHECK (json_valid(payload)),
    status           TEXT     NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done', 'failed', 'too_late')),
    attempts         INTEGER  NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at  BIGINT   NOT NULL,
    deadline         BIGINT   NOT NULL,
    leased_until     BIGINT,
    last_error       TEXT,
    created_at       BIGINT   NOT NULL
);
-- outbox_claim / outbox_next_due
CREATE INDEX outbox_due ON outbox (next_attempt_at, id) WHERE status = 'pending';
CREATE INDEX outbox_by_challenge ON outbox (challenge_id, id);

CREATE TABLE outbox_attempts (
    id           INTEGER  PRIMARY KEY AUTOINCREMENT,
    outbox_id    INTEGER  NOT NULL REFERENCES outbox (id),
    attempt_no   INTEGER  NOT NULL CHECK (attempt_no >= 1),
    at           BIGINT   NOT NULL,
    latency_ms   BIGINT   NOT NULL,
    outcome      TEXT     NOT NULL CHECK (outcome IN ('ok', 'retry', 'fatal')),
    http_status  INTEGER,
    error        TEXT,
    UNIQUE (outbox_id, attempt_no)
);

-- Append-only, hash-chained audit log (see pushauth_store::entry_hash).
CREATE TABLE audit_log (
    seq            INTEGER  PRIMARY KEY CHECK (seq >= 1),
    at             BIGINT   NOT NULL,
    actor          TEXT     NOT NULL,
    action         TEXT     NOT NULL,
    challenge_id   TEXT,
    device_id      TEXT,
    cardholder_id  TEXT,
    details        TEXT     NOT NULL,
    prev_hash      TEXT     NOT NULL,
    hash           TEXT     NOT NULL
);
CREATE INDEX audit_by_challenge ON audit_log (challenge_id, seq) WHERE challenge_id IS NOT NULL;
