-- Syndication: full-text search over the catalogue, partner keys, per-day usage and rate windows.

-- Search document: title weighs most, then tags, then description. 'simple' config: broadcasters
-- publish in many languages and stemming one of them would mis-stem the rest.
-- array_to_string is only STABLE, so tags are folded by an IMMUTABLE wrapper.
CREATE FUNCTION onair_tags_text(text[]) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT coalesce(array_to_string($1, ' '), '') $$;

ALTER TABLE assets ADD COLUMN search tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('simple'::regconfig, coalesce(title, '')), 'A') ||
    setweight(to_tsvector('simple'::regconfig, onair_tags_text(tags)), 'B') ||
    setweight(to_tsvector('simple'::regconfig, coalesce(description, '')), 'C')) STORED;
CREATE INDEX assets_search ON assets USING gin (search);
CREATE INDEX assets_show ON assets (show);

CREATE TABLE partners (
    id             bigserial PRIMARY KEY,
    name           text        NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    key_hash       bytea       NOT NULL UNIQUE,   -- sha256 of the key; the key itself is shown once
    key_prefix     text        NOT NULL,          -- first characters, so operators can tell keys apart
    scopes         text[]      NOT NULL DEFAULT '{feeds:read}'
                   CHECK (scopes <@ ARRAY['feeds:read', 'assets:read', 'assets:write']),
    allowed_tags   text[]      NOT NULL DEFAULT '{}',  -- empty = every tag
    allowed_shows  text[]      NOT NULL DEFAULT '{}',  -- empty = every show
    rate_per_minute integer    NOT NULL DEFAULT 600 CHECK (rate_per_minute > 0),
    created_at     timestamptz NOT NULL DEFAULT now(),
    revoked_at     timestamptz
);

-- One row per partner per minute; the upsert's returned count is the rate decision, so every
-- web process shares one limit.
CREATE TABLE partner_rate (
    partner_id   bigint      NOT NULL REFERENCES partners (id) ON DELETE CASCADE,
    window_start timestamptz NOT NULL,
    hits         integer     NOT NULL DEFAULT 0,
    PRIMARY KEY (partner_id, window_start)
);

CREATE TABLE partner_usage (
    partner_id  bigint NOT NULL REFERENCES partners (id) ON DELETE CASCADE,
    day         date   NOT NULL,
    feed_pulls  bigint NOT NULL DEFAULT 0,
    api_calls   bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (partner_id, day)
);
