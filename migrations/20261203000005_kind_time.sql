-- Issue 18 (c): `audit wijzigingen` and `audit query --kind` select one kind
-- of record (reloads, admin records) in a period; without an index on kind
-- that was a scan of the whole trail (30 s at 10 M records).
CREATE INDEX audit_records_kind_time ON audit_records (kind, time);
