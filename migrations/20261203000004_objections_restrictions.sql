-- Issue 16 (2): the objection (bezwaar, AVG art. 21) and restriction
-- (beperking, AVG art. 18) registers, next to case binding and consent.
-- Portable SQL: runs on SQLite and PostgreSQL. The betrokkene is stored only
-- as the audit trail's keyed pseudonym; every change to these tables is
-- committed in the same transaction as its audit record. Times are RFC 3339
-- UTC with microseconds, so text order is time order.

CREATE TABLE objections (
    id               TEXT PRIMARY KEY,
    overleg          TEXT NOT NULL,
    subject          TEXT NOT NULL,   -- pseudonym
    purpose          TEXT,            -- one purpose of the overleg; NULL: every purpose
    state            TEXT NOT NULL,   -- lodged | upheld | rejected
    reference        TEXT NOT NULL,   -- the objection's own reference (letter, form)
    lodged_at        TEXT NOT NULL,
    recorded_by      TEXT NOT NULL,   -- organisation id (or cli:<name>)
    recorded_role    TEXT NOT NULL,
    decided_at       TEXT,
    decided_by       TEXT,
    decided_role     TEXT,
    decision_reference TEXT
);
CREATE INDEX objections_lookup ON objections (overleg, subject);
CREATE INDEX objections_subject ON objections (subject);

CREATE TABLE restrictions (
    id               TEXT PRIMARY KEY,
    overleg          TEXT NOT NULL,
    subject          TEXT NOT NULL,   -- pseudonym
    fields           TEXT,            -- JSON array of "bron:field.path"; NULL: every field
    reason           TEXT NOT NULL,   -- juistheid-betwist | bezwaar-in-behandeling | onrechtmatig | rechtsvordering
    reference        TEXT NOT NULL,
    begins_at        TEXT NOT NULL,
    ends_at          TEXT,            -- exclusive; NULL: until lifted
    recorded_by      TEXT NOT NULL,
    recorded_role    TEXT NOT NULL,
    recorded_at      TEXT NOT NULL,
    lifted_at        TEXT,
    lifted_by        TEXT,
    lift_reference   TEXT
);
CREATE INDEX restrictions_lookup ON restrictions (overleg, subject);
CREATE INDEX restrictions_subject ON restrictions (subject);
