-- The webhook's PostgreSQL work as the server sends it since the sixth round: card
-- look-up, the unlocked read of the creation context (one statement), then the
-- checked write (pushauth_create_challenge_checked, migration 0010), 3 round trips. The plan's
-- inputs come from the read (\gset), so the write finds them unchanged.
\set c random(1, 2000)
\set r random(1, 9000000000000000000)
SELECT cardholder_id FROM card_links WHERE provider = 'enfuce' AND provider_key = 'card' || (:c)::text;
SELECT (SELECT h.status FROM cardholders h WHERE h.id = 'ch' || (:c)::text) AS status, (SELECT count(*) FROM challenges x WHERE x.cardholder_id = 'ch' || (:c)::text AND x.status = 'pending' AND x.deadline + 0 > 5) AS pending, pushauth_devices_seen('ch' || (:c)::text) AS devices_seen, (SELECT json_agg(d ORDER BY d.created_at, d.id) FROM (SELECT id, cardholder_id, status, platform, label, signing_jwk, signing_thumbprint, approval_jwk, approval_thumbprint, agreement_jwk, agreement_thumbprint, push_token, push_environment, failures, server_kid, created_at, updated_at FROM devices WHERE cardholder_id = 'ch' || (:c)::text) d) AS devices
\gset
SELECT pushauth_create_challenge_checked('ch' || (:c)::text, :status, :pending, :devices_seen, 5, 'c' || (:r)::text, 'enfuce', 'x' || (:r)::text, 'payment', 1234, 'EUR', 'Shop', 'nonce', 'digest', 1000, 1000, NULL, '{}', 'queued', 0, '{push}', ARRAY['dev' || (:c)::text], '{"{\"a\":1}"}', '{0}', '{100000}', '{100000}', 0, 'processor-enfuce', 'challenge.created', 'c' || (:r)::text, NULL, 'ch' || (:c)::text, '{}', NULL, NULL, NULL);
