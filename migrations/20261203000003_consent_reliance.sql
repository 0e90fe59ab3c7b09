-- Issue 18 (e): `audit toestemming` finds the disclosures that relied on a
-- consent. A request record names those consents in `detail` (the proxy
-- writes `{"aanmelding":…,"toestemmingen":["<id>",…]}`; an empty list when
-- none), and that text is already covered by the record hash. So no new
-- column: a partial index over exactly the records whose detail names at
-- least one consent, maintained by the store itself. Nothing to backfill
-- (CREATE INDEX covers existing rows), no hash changes, and no copy of the
-- reference that could disagree with the hashed text.
--
-- Portable: partial indexes with LIKE work on SQLite and PostgreSQL. Both
-- planners use the index only when a query repeats this predicate
-- literally (review::query::CONSENT_RELIED is that text; keep them equal).
CREATE INDEX audit_records_consent_relied ON audit_records (overleg, time)
    WHERE detail LIKE '%"toestemmingen":["%';
