-- The audit chain is linked after commit by one chainer at a time instead of inside
-- every writing transaction (see src/audit.rs). Rows are inserted with an identity
-- `id` and no chain position; the chainer gives them `seq`, `prev_hash` and `hash` in
-- `id` order. Already chained rows keep their values.
ALTER TABLE audit_log DROP CONSTRAINT audit_log_pkey;
ALTER TABLE audit_log ADD COLUMN id BIGINT GENERATED ALWAYS AS IDENTITY;
ALTER TABLE audit_log ADD PRIMARY KEY (id);
ALTER TABLE audit_log ALTER COLUMN seq DROP NOT NULL;
ALTER TABLE audit_log ALTER COLUMN prev_hash DROP NOT NULL;
ALTER TABLE audit_log ALTER COLUMN hash DROP NOT NULL;
ALTER TABLE audit_log ADD CONSTRAINT audit_log_seq_key UNIQUE (seq);
ALTER TABLE audit_log ADD CONSTRAINT audit_log_chained_together
    CHECK ((seq IS NULL) = (hash IS NULL) AND (seq IS NULL) = (prev_hash IS NULL));
CREATE INDEX audit_unchained ON audit_log (id) WHERE seq IS NULL;
