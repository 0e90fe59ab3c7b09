-- Audit trail. Portable SQL: runs on SQLite and PostgreSQL.
-- One row per request (and per administrative event). Field names only,
-- never values; the betrokkene only as a keyed pseudonym.
CREATE TABLE audit_records (
    instance          TEXT    NOT NULL,   -- gateway instance: each has its own hash chain
    seq               BIGINT  NOT NULL,   -- position in that chain, from 1
    kind              TEXT    NOT NULL,   -- request | reload | purge | access | checkpoint
    time              TEXT    NOT NULL,   -- RFC 3339, UTC, microseconds
    request_id        TEXT    NOT NULL,
    trace_id          TEXT    NOT NULL,
    org               TEXT,
    cert_fingerprint  TEXT,
    role              TEXT,
    grondslag         TEXT,
    overleg           TEXT,
    purpose           TEXT,
    bron              TEXT,
    resource          TEXT,               -- path template, never the raw path
    subject           TEXT,               -- pseudonym (personal: erased by purge)
    outcome           TEXT    NOT NULL,   -- allowed | filtered | denied | error | event
    reason            TEXT    NOT NULL,
    side              TEXT,
    rules             TEXT    NOT NULL,   -- JSON array of rule ids
    fields_shared     TEXT    NOT NULL,   -- JSON array of field paths (personal: erased by purge)
    fields_withheld   TEXT    NOT NULL,   -- JSON array of field paths (personal: erased by purge)
    status            INTEGER NOT NULL,
    upstream_status   INTEGER,
    duration_us       BIGINT  NOT NULL,
    policy_version    TEXT    NOT NULL,
    detail            TEXT    NOT NULL,   -- JSON object for administrative events
    personal_digest   TEXT    NOT NULL,   -- SHA-256 of the personal columns, kept after purge
    purged_at         TEXT,
    prev_hash         TEXT    NOT NULL,
    hash              TEXT    NOT NULL,
    PRIMARY KEY (instance, seq)
);
CREATE INDEX audit_records_subject ON audit_records (subject);
CREATE INDEX audit_records_time ON audit_records (time);
CREATE INDEX audit_records_overleg_time ON audit_records (overleg, time);

-- Signed checkpoints: (instance, ck_no) covers the chain up to seq with hash.
-- Each checkpoint is also written into the chain itself (kind = checkpoint),
-- so dropping a checkpoint row, or the chain record, is detectable.
CREATE TABLE audit_checkpoints (
    instance   TEXT   NOT NULL,
    ck_no      BIGINT NOT NULL,
    seq        BIGINT NOT NULL,
    hash       TEXT   NOT NULL,
    time       TEXT   NOT NULL,
    key_id     TEXT   NOT NULL,   -- first 16 hex digits of SHA-256(public key)
    signature  TEXT   NOT NULL,   -- Ed25519 over the canonical checkpoint text, hex
    PRIMARY KEY (instance, ck_no)
);
