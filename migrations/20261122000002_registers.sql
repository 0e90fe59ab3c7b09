-- Case binding (aanmeldingen) and the consent register (toestemmingen).
-- Portable SQL: runs on SQLite and PostgreSQL. The betrokkene is stored only
-- as the same keyed pseudonym as in the audit trail; every change to these
-- tables is committed in the same transaction as its audit record.
-- Times are RFC 3339 UTC with microseconds, so text order is time order.

CREATE TABLE case_registrations (
    id               TEXT PRIMARY KEY,
    overleg          TEXT NOT NULL,
    subject          TEXT NOT NULL,   -- pseudonym
    reference        TEXT NOT NULL,   -- the overleg's own case reference
    begins_at        TEXT NOT NULL,
    ends_at          TEXT,            -- exclusive; NULL: open-ended
    registered_by    TEXT NOT NULL,   -- organisation id (or cli:<name>)
    registered_role  TEXT NOT NULL,
    registered_at    TEXT NOT NULL,
    ended_at         TEXT,            -- when it was ended before its planned end
    ended_by         TEXT
);
CREATE INDEX case_registrations_lookup ON case_registrations (overleg, subject);
CREATE INDEX case_registrations_subject ON case_registrations (subject);

CREATE TABLE consents (
    id                   TEXT PRIMARY KEY,
    overleg              TEXT NOT NULL,
    subject              TEXT NOT NULL,   -- pseudonym
    given_by             TEXT NOT NULL,   -- parents | youth | parents-and-youth
    purposes             TEXT NOT NULL,   -- JSON array of purpose ids of the overleg
    valid_from           TEXT NOT NULL,
    valid_until          TEXT,            -- exclusive; NULL: until withdrawn
    form_reference       TEXT NOT NULL,   -- reference to the signed form
    recorded_by          TEXT NOT NULL,
    recorded_role        TEXT NOT NULL,
    recorded_at          TEXT NOT NULL,
    withdrawn_at         TEXT,
    withdrawn_by         TEXT,
    withdrawal_reference TEXT
);
CREATE INDEX consents_lookup ON consents (overleg, subject);
CREATE INDEX consents_subject ON consents (subject);
