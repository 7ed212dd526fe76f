-- No query reads decisions by device: the store reads a decision by its challenge
-- (the primary key) only. The index cost one more B-tree page write per decision,
-- about 5 % of the WAL frames of an approval (docs/benchmarks.md, fifth round).
-- It would serve the parent side of the foreign key, a check run when a device row is
-- deleted or its id changes; neither happens (devices are revoked, never deleted).
-- Whoever adds device deletion must add an index on decisions (device_id) with it.
DROP INDEX IF EXISTS decisions_by_device;
