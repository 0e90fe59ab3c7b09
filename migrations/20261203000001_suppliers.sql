-- Issue 15: a request that came through a software supplier under a
-- mandate records the supplier (its id in the partner registry) beside the
-- organisation it acted for (`org`); `cert_fingerprint` is then the
-- supplier's certificate. NULL for every other record, so records written
-- before this column existed keep their hashes (the hash covers `supplier`
-- only when it is set).
ALTER TABLE audit_records ADD COLUMN supplier TEXT;
CREATE INDEX audit_records_supplier_time ON audit_records (supplier, time);
