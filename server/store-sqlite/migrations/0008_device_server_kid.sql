-- The server key each device pinned at enrollment (its kid), so that every instance
-- signs the device's challenges with that key even when it enrolled on an instance that
-- had not yet picked up a rotation. NULL for devices enrolled before this column:
-- their key is found by enrollment time, as before.
ALTER TABLE devices ADD COLUMN server_kid TEXT;
