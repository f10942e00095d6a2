-- 0001: accounts, login sessions, email verification and resend cooldowns.
-- Times are milliseconds since the Unix epoch. STRICT tables so a wrong type
-- is an error instead of a silently coerced value.

CREATE TABLE users (
    -- AUTOINCREMENT: ids of deleted accounts are never handed out again, so a
    -- contact's pinned keys or a cached id can never point at a new person.
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    -- Normalised (lower-case) by core::validate before it gets here.
    email         TEXT    NOT NULL UNIQUE,
    handle        TEXT    NOT NULL UNIQUE,
    display_name  TEXT    NOT NULL,
    bio           TEXT    NOT NULL DEFAULT '',
    -- Argon2id PHC string of the client's auth_key; never the key itself.
    auth_hash     TEXT    NOT NULL,
    -- The client's own KDF salt and parameters, handed back by pre-login.
    kdf_salt      BLOB    NOT NULL,
    kdf_alg       TEXT    NOT NULL,
    kdf_m_cost    INTEGER NOT NULL,
    kdf_t_cost    INTEGER NOT NULL,
    kdf_p_cost    INTEGER NOT NULL,
    -- DER SubjectPublicKeyInfo of the RSA signing and encryption keys.
    sign_key      BLOB    NOT NULL,
    enc_key       BLOB    NOT NULL,
    -- Private keys sealed by the client with its wrap_key; opaque here.
    sealed_keys   BLOB    NOT NULL,
    -- NULL until the email address is verified.
    verified_at   INTEGER,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
) STRICT;

-- Prefix search (users::search) uses LIKE, which is case-insensitive and so
-- can only use indexes with NOCASE collation.
CREATE INDEX users_handle_nocase ON users (handle COLLATE NOCASE);
CREATE INDEX users_display_name_nocase ON users (display_name COLLATE NOCASE);

CREATE TABLE sessions (
    -- Public id (32 hex chars) used to list and revoke; not a secret.
    id            TEXT    PRIMARY KEY,
    user_id       INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- SHA-256 of the bearer token; the token itself is never stored.
    token_hash    BLOB    NOT NULL UNIQUE,
    device_name   TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    last_seen_at  INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL
) STRICT;

CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expiry ON sessions (expires_at);

-- At most one pending verification per account: issuing a new code replaces
-- the old one, and a successful verification deletes the row (single use).
CREATE TABLE email_verifications (
    user_id       INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    -- Keyed hash of the 6-digit code (see handlers::secrets::code_hash).
    code_hash     BLOB    NOT NULL,
    -- SHA-256 of the link token.
    token_hash    BLOB    NOT NULL UNIQUE,
    -- Wrong code attempts so far; the code is void once the limit is reached.
    attempts      INTEGER NOT NULL DEFAULT 0,
    sent_at       INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL
) STRICT;

-- When a verification mail was last requested for an address, keyed by a
-- keyed hash of the normalised address so that addresses without an account
-- are not stored in clear. Kept for every address, account or not, so the
-- resend answer does not reveal whether an account exists. Rows older than
-- the cooldown are pruned as new ones arrive.
CREATE TABLE resend_cooldowns (
    email_key     BLOB    PRIMARY KEY,
    last_sent_at  INTEGER NOT NULL
) WITHOUT ROWID, STRICT;

CREATE INDEX resend_cooldowns_time ON resend_cooldowns (last_sent_at);
