-- The webhook's statements with the reads merged and the three inserts as one
-- data-modifying CTE, inside BEGIN … COMMIT (6 round trips). Measured in the sixth
-- round at one client (docs/benchmarks.md); not what the server sends.
\set c random(1, 2000)
\set r random(1, 9000000000000000000)
SELECT cardholder_id FROM card_links WHERE provider = 'enfuce' AND provider_key = 'card' || (:c)::text;
BEGIN;
SELECT status FROM cardholders WHERE id = 'ch' || (:c)::text FOR NO KEY UPDATE;
SELECT (SELECT id FROM challenges WHERE provider = 'enfuce' AND provider_ref = 'y' || (:r)::text) AS existing, (SELECT count(*) FROM challenges WHERE cardholder_id = 'ch' || (:c)::text AND status = 'pending' AND deadline + 0 > 5) AS pending, d.* FROM (SELECT 1) one LEFT JOIN devices d ON d.cardholder_id = 'ch' || (:c)::text ORDER BY d.created_at, d.id;
WITH c AS (INSERT INTO challenges (id, cardholder_id, provider, provider_ref, kind, amount_minor, currency, payee, nonce, txn_digest, deadline, upstream_deadline, processor_input, context, status, upstream_status, created_at) VALUES ('c' || (:r)::text, 'ch' || (:c)::text, 'enfuce', 'x' || (:r)::text, 'payment', 1234, 'EUR', 'Shop', 'nonce', 'digest', 1000, 1000, NULL, '{}', 'pending', 'queued', 0) ON CONFLICT (provider, provider_ref) DO NOTHING RETURNING id), o AS (INSERT INTO outbox (kind, challenge_id, device_id, payload, status, attempts, next_attempt_at, deadline, created_at, claim_no, leased_until) SELECT r.kind, c.id, r.device, r.payload, 'pending', 0, r.nb, r.dl, 0, 1, r.lu FROM c, unnest(ARRAY['push'], ARRAY['dev' || (:c)::text], ARRAY['{"a":1}'::jsonb], ARRAY[0::bigint], ARRAY[100000::bigint], ARRAY[100000::bigint]) AS r(kind, device, payload, nb, dl, lu) RETURNING id, kind, device_id), a AS (INSERT INTO audit_log (at, actor, action, challenge_id, device_id, cardholder_id, details) SELECT 0, 'processor-enfuce', 'challenge.created', c.id, NULL, 'ch' || (:c)::text, '{}' FROM c) SELECT (SELECT count(*) FROM c) AS inserted, o.id, o.kind, o.device_id FROM (SELECT 1) one LEFT JOIN o ON true;
COMMIT;
