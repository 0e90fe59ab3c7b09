-- Issue 18 point 1: aggregates of the trail, maintained by the audit writer
-- in the same transaction as the records they summarise (so they are exactly
-- as durable and as complete), read by the DPIA report and the dashboard
-- instead of a walk of the records. One counter table: per Dutch calendar
-- day, kind of count and overleg, up to four key columns (see
-- src/audit/aggregate.rs for what each kind counts), a count, and for kind
-- `first` the earliest time. Kind `pupil` holds pseudonyms: purge erases them
-- with the records' personal columns. Portable SQL.
CREATE TABLE audit_aggregates (
    day      TEXT   NOT NULL,   -- Dutch calendar day, YYYY-MM-DD
    kind     TEXT   NOT NULL,   -- request | hour | field | purpose | rule | pupil | first | event
    overleg  TEXT   NOT NULL,   -- '' when the record names none
    k1       TEXT   NOT NULL,
    k2       TEXT   NOT NULL,
    k3       TEXT   NOT NULL,
    k4       TEXT   NOT NULL,
    n        BIGINT NOT NULL,
    t        TEXT   NOT NULL,   -- kind first: the earliest time; '' otherwise
    PRIMARY KEY (day, kind, overleg, k1, k2, k3, k4)
);

-- From when the aggregates are complete: records written before the table
-- existed are not in it until `audit aggregates --recompute` (which sets '').
-- One row, written when the store is first connected after this migration.
CREATE TABLE audit_aggregates_since (
    id     INTEGER PRIMARY KEY,
    since  TEXT NOT NULL
);
