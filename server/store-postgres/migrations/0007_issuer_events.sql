-- Issuer events (issue 17 §1, docs/api.md "Issuer events").
--   issuer_events: written by the audit append of the change that causes the event, in
--     the same transaction; `body` is the exact JSON sent (TEXT, not JSONB, so the bytes
--     stay as written); `id` is the Standard Webhooks `webhook-id`.
--   issuer_event_deliveries: one row per (event, endpoint that wants it), created by the
--     fan-out; claimed with fenced leases like the outbox (claim_no).
CREATE TABLE issuer_events (
    seq         BIGINT   GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id          TEXT     NOT NULL UNIQUE,
    type        TEXT     NOT NULL CHECK (type IN ('challenge.decided', 'challenge.expired', 'upstream.failed',
                                                  'upstream.too_late', 'device.enrolled', 'device.locked',
                                                  'device.revoked', 'device.push_unreachable', 'cardholder.blocked')),
    body        TEXT     NOT NULL,
    created_at  BIGINT   NOT NULL,
    fanned_out  BOOLEAN  NOT NULL DEFAULT FALSE
);
CREATE INDEX issuer_events_to_fan_out ON issuer_events (seq) WHERE NOT fanned_out;

CREATE TABLE issuer_event_deliveries (
    id               BIGINT   GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_seq        BIGINT   NOT NULL REFERENCES issuer_events (seq),
    endpoint         TEXT     NOT NULL,
    status           TEXT     NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done', 'failed')),
    attempts         INTEGER  NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at  BIGINT   NOT NULL,
    leased_until     BIGINT,
    claim_no         BIGINT   NOT NULL DEFAULT 0 CHECK (claim_no >= 0),
    last_status      INTEGER,
    last_error       TEXT,
    updated_at       BIGINT   NOT NULL,
    UNIQUE (event_seq, endpoint)
);
CREATE INDEX issuer_event_deliveries_due ON issuer_event_deliveries (next_attempt_at, id) WHERE status = 'pending';
