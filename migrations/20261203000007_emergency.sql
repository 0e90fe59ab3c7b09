-- Issue 16 point 5: the emergency path (spoed: Meldcode huiselijk geweld en
-- kindermishandeling, Veilig Thuis, acute danger). An emergency disclosure
-- opens a window per pupil and receiving organisation (emergency.window_hours)
-- or uses the open one; the row is written in the same transaction as the
-- disclosure's audit record. The FG reviews each window (which closes it) and
-- releases it for inzage (AVG art. 15 / UAVG art. 41). Portable SQL; the
-- pupil only as the audit trail's keyed pseudonym.
CREATE TABLE emergency_windows (
    id              TEXT PRIMARY KEY,
    org             TEXT NOT NULL,    -- the receiving organisation
    subject         TEXT NOT NULL,    -- pseudonym
    overleg         TEXT NOT NULL,    -- where the window was opened
    role            TEXT NOT NULL,
    reason          TEXT NOT NULL,    -- meldcode | veilig-thuis | acuut-gevaar (the opening one)
    justification   TEXT NOT NULL,    -- the opening request's X-Spoed-Toelichting
    opened_at       TEXT NOT NULL,
    opened_request  TEXT NOT NULL,    -- request id of the opening disclosure
    ends_at         TEXT NOT NULL,    -- exclusive; a review closes the window
    uses            BIGINT NOT NULL,  -- disclosures in the window, the opening one included
    review          TEXT,             -- justified | not-justified; NULL: te beoordelen
    review_note     TEXT,
    reviewed_by     TEXT,
    reviewed_at     TEXT,
    released_at     TEXT,             -- shown in inzage from then on
    released_by     TEXT
);
CREATE INDEX emergency_windows_lookup ON emergency_windows (org, subject, opened_at);
CREATE INDEX emergency_windows_subject ON emergency_windows (subject);
CREATE INDEX emergency_windows_queue ON emergency_windows (review, opened_at);
