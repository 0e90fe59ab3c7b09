-- Issue 15: a bron a software supplier hosts for several organisations
-- serves one of them per request; the record names that organisation
-- (`owner`, its id in the partner registry): the controller whose data was
-- asked for or delivered, not the supplier that hosts it. NULL for a bron of
-- its own (its owner is fixed by the policy) and for every record written
-- before this column existed, so those keep their hashes (the hash covers
-- `owner` only when it is set).
ALTER TABLE audit_records ADD COLUMN owner TEXT;
