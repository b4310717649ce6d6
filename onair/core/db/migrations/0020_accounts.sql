-- Accounts: people with a role, their server-side sessions, login throttling and the audit log.
CREATE TABLE users (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,62}$'),
    role text NOT NULL CHECK (role IN ('admin', 'editor', 'producer', 'moderator')),
    password_hash text NOT NULL,               -- argon2id, PHC string
    must_change_password boolean NOT NULL DEFAULT true,  -- set for one-time passwords (add, reset)
    disabled_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    last_login_at timestamptz
);

-- The cookie holds a random id; only its SHA-256 is stored, so a copy of this table logs nobody in.
CREATE TABLE sessions (
    id_hash bytea PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf_token text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    ip text,
    user_agent text
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expires ON sessions (expires_at);

-- Failed logins per key ('user:<name>' or 'ip:<address>') in the current window.
CREATE TABLE login_throttle (
    key text PRIMARY KEY,
    failures integer NOT NULL,
    window_start timestamptz NOT NULL
);

CREATE TABLE audit_log (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    actor text NOT NULL,                        -- a user name, 'admin-token' or 'cli'
    user_id bigint REFERENCES users (id) ON DELETE SET NULL,
    action text NOT NULL,                       -- 'login', 'user.create', 'poll.open', ...
    object_type text,
    object_id text,
    ip text,
    detail jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_at ON audit_log (at DESC, id DESC);
