-- 003_auth.sql - API bearer tokens (DESIGN §6). Only the SHA-256 of a token is stored: a dump
-- of this table does not let anyone call the API.
CREATE TABLE api_tokens (
    token_sha256  bytea       PRIMARY KEY CHECK (octet_length(token_sha256) = 32),
    name          text        NOT NULL UNIQUE CHECK (name <> ''),
    role          text        NOT NULL CHECK (role IN ('admin', 'user')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz,
    CHECK (revoked_at IS NULL OR revoked_at >= created_at)
);
