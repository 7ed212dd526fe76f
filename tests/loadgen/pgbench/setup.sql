-- Data and functions for the transaction-shape comparison (run.sh): 2,000
-- cardholders, each with one card and one device, on a database migrated with
-- server/store-postgres/migrations. Values are placeholders of the right types; the
-- checks and indexes are the real ones.
INSERT INTO cardholders (id, status, created_at, updated_at) SELECT 'ch'||i, 'active', 0, 0 FROM generate_series(1,2000) i;
INSERT INTO card_links (cardholder_id, provider, provider_key, created_at) SELECT 'ch'||i, 'enfuce', 'card'||i, 0 FROM generate_series(1,2000) i;
INSERT INTO devices (id, cardholder_id, status, platform, signing_jwk, signing_thumbprint, agreement_jwk, agreement_thumbprint, push_token, created_at, updated_at, approval_jwk, approval_thumbprint)
  SELECT 'dev'||i, 'ch'||i, 'active', 'android', '{"kty":"EC","x":"abc"}', 's'||i, '{"kty":"EC","x":"def"}', 'a'||i, 'tok'||i, 0, 0, '{"kty":"EC","x":"ghi"}', 'p'||i FROM generate_series(1,2000) i;
CREATE OR REPLACE FUNCTION shape_ingest(c int, r bigint) RETURNS text LANGUAGE plpgsql AS $f$
DECLARE cid text; ch text := 'ch'||c;
BEGIN
  PERFORM cardholder_id FROM card_links WHERE provider = 'enfuce' AND provider_key = 'card'||c;
  PERFORM status FROM cardholders WHERE id = ch FOR NO KEY UPDATE;
  PERFORM (SELECT id FROM challenges WHERE provider = 'enfuce' AND provider_ref = 'y' || r),
          (SELECT count(*) FROM challenges WHERE cardholder_id = ch AND status = 'pending' AND deadline + 0 > 5);
  PERFORM * FROM devices WHERE cardholder_id = ch ORDER BY created_at, id;
  INSERT INTO challenges (id, cardholder_id, provider, provider_ref, kind, amount_minor, currency, payee, nonce, txn_digest,
                          deadline, upstream_deadline, processor_input, context, status, upstream_status, created_at)
  VALUES ('c' || r, ch, 'enfuce', 'x' || r, 'payment', 1234, 'EUR', 'Shop', 'nonce', 'digest',
          1000, 1000, NULL, '{}', 'pending', 'queued', 0) RETURNING id INTO cid;
  INSERT INTO outbox (kind, challenge_id, device_id, payload, status, attempts, next_attempt_at, deadline, created_at, claim_no, leased_until)
  VALUES ('push', cid, 'dev'||c, '{"a":1}', 'pending', 0, 0, 100000, 0, 1, 100000);
  INSERT INTO audit_log (at, actor, action, challenge_id, device_id, cardholder_id, details)
  VALUES (0, 'processor-enfuce', 'challenge.created', cid, NULL, ch, '{}');
  RETURN cid;
END $f$;
CREATE OR REPLACE FUNCTION shape_look(c int, r bigint) RETURNS TABLE (status text, existing text, pending bigint, devices json) LANGUAGE plpgsql AS $f$
DECLARE ch text := 'ch'||c;
BEGIN
  RETURN QUERY SELECT (SELECT h.status FROM cardholders h WHERE h.id = ch FOR NO KEY UPDATE),
    (SELECT x.id FROM challenges x WHERE x.provider = 'enfuce' AND x.provider_ref = 'y' || r),
    (SELECT count(*) FROM challenges x WHERE x.cardholder_id = ch AND x.status = 'pending' AND x.deadline + 0 > 5),
    (SELECT json_agg(d ORDER BY d.created_at, d.id) FROM devices d WHERE d.cardholder_id = ch);
END $f$;
CREATE OR REPLACE FUNCTION shape_write(c int, r bigint) RETURNS bigint LANGUAGE plpgsql AS $f$
DECLARE cid text := 'c' || r; ch text := 'ch'||c; oid bigint;
BEGIN
  INSERT INTO challenges (id, cardholder_id, provider, provider_ref, kind, amount_minor, currency, payee, nonce, txn_digest,
                          deadline, upstream_deadline, processor_input, context, status, upstream_status, created_at)
  VALUES (cid, ch, 'enfuce', 'x' || r, 'payment', 1234, 'EUR', 'Shop', 'nonce', 'digest', 1000, 1000, NULL, '{}', 'pending', 'queued', 0);
  INSERT INTO outbox (kind, challenge_id, device_id, payload, status, attempts, next_attempt_at, deadline, created_at, claim_no, leased_until)
  VALUES ('push', cid, 'dev'||c, '{"a":1}', 'pending', 0, 0, 100000, 0, 1, 100000) RETURNING id INTO oid;
  INSERT INTO audit_log (at, actor, action, challenge_id, device_id, cardholder_id, details)
  VALUES (0, 'processor-enfuce', 'challenge.created', cid, NULL, ch, '{}');
  RETURN oid;
END $f$;
