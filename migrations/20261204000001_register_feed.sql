-- Issue 17: the registers are served from memory (src/registers/cache.rs).
-- Every change to a register row, by whichever process (a gateway instance,
-- the CLI, purge, an undo), appends the pupil's pseudonym to this feed in
-- the change's own transaction, numbered by one counter row: a transaction
-- takes the counter's row lock to number its change, so numbers are given
-- in commit order and a rolled-back change gives its number back. A reader
-- that has applied every change up to n needs only the rows after n, and a
-- missing number means rows were pruned: it forgets everything it holds.
-- The triggers that append are backend-specific and installed at connect
-- (src/audit/feed.rs). Portable SQL.
CREATE TABLE register_feed (
    id  INTEGER NOT NULL PRIMARY KEY,
    seq BIGINT  NOT NULL
);
INSERT INTO register_feed (id, seq) VALUES (1, 0);
CREATE TABLE register_changes (
    seq     BIGINT NOT NULL PRIMARY KEY,
    subject TEXT   NOT NULL
);
