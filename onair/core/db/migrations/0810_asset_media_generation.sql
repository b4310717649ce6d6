-- Replacing an asset's source re-transcodes it under a fresh generation prefix (assets/<id>/g<N>/) while the
-- published one keeps playing; the origin serves the public URLs from media_generation (0: the original layout,
-- straight under assets/<id>/). replace_job_id is the running replacement's transcode; replacement its status
-- ({"status", "progress", "error", "generation", "source_key", ...}) as the API shows it.
ALTER TABLE assets
    ADD COLUMN media_generation integer NOT NULL DEFAULT 0 CHECK (media_generation >= 0),
    ADD COLUMN replace_job_id   bigint REFERENCES jobs (id) ON DELETE SET NULL,
    ADD COLUMN replacement      jsonb;
