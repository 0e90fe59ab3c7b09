-- Issue 16 point 4 (AVG art. 13/14): a registration records when and how
-- the pupil and parents were informed about the sharing in the overleg, so
-- the DPIA report can list disclosures before that moment and the inzage
-- report can show it. NULL: not recorded.
ALTER TABLE case_registrations ADD COLUMN informed_at TEXT;
ALTER TABLE case_registrations ADD COLUMN informed_how TEXT;
