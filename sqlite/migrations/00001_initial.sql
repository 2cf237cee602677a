-- Keeper's initial schema. Timestamps are INTEGER microseconds since the Unix epoch, UTC;
-- NULL means "not yet" for the nullable ones.

-- +goose Up

-- kv_revision holds the one store-wide revision counter. Every write transaction on
-- kv_entries takes the next revision, so a version is never handed out twice.
CREATE TABLE kv_revision (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    revision INTEGER NOT NULL
) STRICT;

INSERT INTO kv_revision (id, revision) VALUES (1, 0);

-- kv_entries keys compare with the BINARY collation, which is byte order for UTF-8.
CREATE TABLE kv_entries (
    key     TEXT PRIMARY KEY,
    value   BLOB NOT NULL,
    version INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE users (
    id               INTEGER PRIMARY KEY,
    email            TEXT NOT NULL,
    email_normalized TEXT NOT NULL UNIQUE,
    name             TEXT NOT NULL,
    password_hash    TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'active', 'disabled')),
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    activated_at     INTEGER
) STRICT;

-- tokens keeps only the SHA-256 hash of each secret.
CREATE TABLE tokens (
    id         INTEGER PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose    TEXT NOT NULL,
    hash       BLOB NOT NULL UNIQUE,
    family     TEXT,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER,
    revoked_at INTEGER,
    created_at INTEGER NOT NULL
) STRICT;

CREATE INDEX tokens_user_purpose ON tokens (user_id, purpose);
CREATE INDEX tokens_family ON tokens (family) WHERE family IS NOT NULL;

-- outbox is the durable mail queue. Bodies are emptied once a message is sent or given up,
-- because they may hold activation or reset tokens.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    message_id      TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    subject         TEXT NOT NULL,
    text_body       TEXT NOT NULL,
    html_body       TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL,
    sent_at         INTEGER,
    failed_at       INTEGER
) STRICT;

CREATE INDEX outbox_due ON outbox (next_attempt_at, id) WHERE status = 'pending';

-- +goose Down
DROP TABLE outbox;
DROP TABLE tokens;
DROP TABLE users;
DROP TABLE kv_entries;
DROP TABLE kv_revision;
