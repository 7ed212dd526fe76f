-- The one-call function wrapped in BEGIN and COMMIT (3 round trips).
\set c random(1, 2000)
\set r random(1, 9000000000000000000)
BEGIN;
SELECT shape_ingest(:c, :r);
COMMIT;
