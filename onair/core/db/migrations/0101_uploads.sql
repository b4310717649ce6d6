-- Resumable uploads (tus 1.0). The bytes are staged in a local file under the data dir (`staging`); the row
-- is the authority for the offset, so any web process on the host can answer HEAD/PATCH for it.
CREATE TABLE uploads (
    id          text PRIMARY KEY,
    asset_id    text        NOT NULL REFERENCES assets (id) ON DELETE CASCADE,
    length      bigint      NOT NULL CHECK (length >= 0),
    "offset"    bigint      NOT NULL DEFAULT 0 CHECK ("offset" >= 0 AND "offset" <= length),
    metadata    jsonb       NOT NULL DEFAULT '{}'::jsonb,
    staging     text        NOT NULL,
    completed   boolean     NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL DEFAULT now() + interval '1 day'
);

-- The client's file name, kept only as metadata (sanitised); object keys never derive from it.
ALTER TABLE assets ADD COLUMN source_name text;
