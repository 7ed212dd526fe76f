-- Look-up function and write function in an explicit transaction (5 round trips).
\set c random(1, 2000)
\set r random(1, 9000000000000000000)
SELECT cardholder_id FROM card_links WHERE provider = 'enfuce' AND provider_key = 'card' || (:c)::text;
BEGIN;
SELECT * FROM shape_look(:c, :r);
SELECT shape_write(:c, :r);
COMMIT;
