-- The webhook's PostgreSQL work as the server sends it today: card look-up, then
-- BEGIN, cardholder lock, duplicate check and pending count, devices, challenge,
-- outbox row, audit row, COMMIT (9 round trips).
\set c random(1, 2000)
\set r random(1, 9000000000000000000)
SELECT cardholder_id FROM card_links WHERE provider = 'enfuce' AND provider_key = 'card' || (:c)::text;
BEGIN;
SELECT status FROM cardholders WHERE id = 'ch' || (:c)::text FOR NO KEY UPDATE;
SELECT (SELECT id FROM challenges WHERE provider = 'enfuce' AND provider_ref = 'y' || (:r)::text) AS existing, (SELECT count(*) FROM challenges WHERE cardholder_id = 'ch' || (:c)::text AND status = 'pending' AND deadline + 0 > 5) AS pending;
SELECT * FROM devices WHERE cardholder_id = 'ch' || (:c)::text ORDER BY created_at, id;
INSERT INTO challenges (id, cardholder_id, provider, provider_ref, kind, amount_minor, currency, payee, nonce, txn_digest, deadline, upstream_deadline, processor_input, context, status, upstream_status, created_at) VALUES ('c' || (:r)::text, 'ch' || (:c)::text, 'enfuce', 'x' || (:r)::text, 'payment', 1234, 'EUR', 'Shop', 'nonce', 'digest', 1000, 1000, NULL, '{}', 'pending', 'queued', 0);
INSERT INTO outbox (kind, challenge_id, device_id, payload, status, attempts, next_attempt_at, deadline, created_at, claim_no, leased_until) VALUES ('push', 'c' || (:r)::text, 'dev' || (:c)::text, '{"a":1}', 'pending', 0, 0, 100000, 0, 1, 100000);
INSERT INTO audit_log (at, actor, action, challenge_id, device_id, cardholder_id, details) VALUES (0, 'processor-enfuce', 'challenge.created', 'c' || (:r)::text, NULL, 'ch' || (:c)::text, '{}');
COMMIT;
