-- Per-asset media choices applied by the next transcode; NULL means the deployment's setting
-- (ONAIR_LOUDNESS_TARGET, ONAIR_LADDER), so changing a setting moves every asset that did not choose.
ALTER TABLE assets
    ADD COLUMN loudness_target text CHECK (loudness_target IN ('broadcast', 'web', 'off')),
    ADD COLUMN ladder          text CHECK (ladder IN ('fixed', 'per_title'));
