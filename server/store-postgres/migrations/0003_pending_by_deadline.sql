-- Counting a cardholder's pending, unexpired challenges (the MFA-fatigue guard, run
-- for every new challenge) reads only this index: (cardholder, deadline) for pending
-- rows, instead of visiting every pending row of the cardholder to read its deadline.
DROP INDEX challenges_pending_by_cardholder;
CREATE INDEX challenges_pending_by_cardholder ON challenges (cardholder_id, deadline) WHERE status = 'pending';
