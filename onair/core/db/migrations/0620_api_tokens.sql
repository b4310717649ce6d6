-- Personal API tokens for scripts and the CLI: a user's token, limited to scopes (permissions the user's role
-- has). Only the token's SHA-256 is stored; the token itself is shown once, when it is made.
CREATE TABLE api_tokens (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    token_hash bytea NOT NULL UNIQUE,
    prefix text NOT NULL,                      -- the first characters, to tell tokens apart in lists
    scopes text[] NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at timestamptz
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);
