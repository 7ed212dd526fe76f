-- Fenced outbox claims (issue 15 §1).
--   claim_no: incremented by every claim; completing, retrying, renewing the lease or
--             marking a call as sent succeed only with the current claim number, so a
--             worker whose lease was taken over cannot change the row any more.
--   sending_since: set (committed) just before a call to a processor, cleared when the
--             attempt's outcome is recorded. A row claimed while it is set had a call in
--             flight when its previous holder died or lost its lease.
ALTER TABLE outbox
    ADD COLUMN claim_no BIGINT NOT NULL DEFAULT 0 CHECK (claim_no >= 0),
    ADD COLUMN sending_since BIGINT;
