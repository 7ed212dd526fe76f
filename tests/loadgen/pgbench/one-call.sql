-- The same work as one call of a PL/pgSQL function, in its own implicit transaction.
\set c random(1, 2000)
\set r random(1, 9000000000000000000)
SELECT shape_ingest(:c, :r);
