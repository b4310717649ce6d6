-- The assets catalogue. Objects of an asset live in the object store under "assets/<id>/" and are
-- served at "/media/<id>/<key>"; `outputs` lists them (keys relative to that prefix), e.g.
-- {"hls": "hls/master.m3u8", "dash": "dash/manifest.mpd",
--  "video": [{"name": "720p", "width": 1280, "height": 720, "bitrate": 2400000, "codecs": "avc1.64001f",
--             "frame_rate": 25.0}],
--  "audio": {"codecs": "mp4a.40.2", "bitrate": 128000, "channels": 2, "sample_rate": 48000} | null,
--  "poster": "images/poster.jpg",
--  "thumbnails": [{"width": 320, "height": 180, "key": "images/thumb-320.jpg"}],
--  "storyboard": {"vtt": "images/storyboard.vtt", "image": "images/storyboard.jpg"},
--  "captions": [{"lang": "en", "label": "English", "key": "captions/en.vtt"}]}
CREATE TABLE assets (
    id              text PRIMARY KEY,
    title           text        NOT NULL DEFAULT '',
    description     text        NOT NULL DEFAULT '',
    tags            text[]      NOT NULL DEFAULT '{}',
    show            text,                                -- programme/show slug, for feeds and apps
    status          text        NOT NULL DEFAULT 'queued'
                    CHECK (status IN ('uploading', 'queued', 'probing', 'transcoding', 'packaging', 'ready', 'failed')),
    progress        real        NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    error           text,
    source_key      text,                                -- original upload in the object store
    source_url      text,                                -- where a URL pull came from
    source_bytes    bigint,
    facts           jsonb,                               -- probed media facts
    outputs         jsonb,                               -- see above; set when ready
    duration        double precision,                    -- seconds, from the probe
    job_id          bigint REFERENCES jobs (id) ON DELETE SET NULL,
    visibility      text        NOT NULL DEFAULT 'public' CHECK (visibility IN ('public', 'unlisted', 'private')),
    -- rights windows: embargo, expiry, geography (ISO 3166-1 alpha-2, upper case)
    available_from  timestamptz,
    available_until timestamptz,
    geo_allow       text[]      NOT NULL DEFAULT '{}',
    geo_deny        text[]      NOT NULL DEFAULT '{}',
    -- syndication metadata
    credit          text,
    copyright       text,
    rating          text,                                -- e.g. "nonadult"
    partner_id      bigint,                              -- set when a partner published it
    embed_origins   text[]      NOT NULL DEFAULT '{}',   -- CSP frame-ancestors; empty = global default
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    ready_at        timestamptz,
    CHECK (available_until IS NULL OR available_from IS NULL OR available_until > available_from)
);

CREATE INDEX assets_created ON assets (created_at DESC, id DESC);
CREATE INDEX assets_status ON assets (status);
CREATE INDEX assets_tags ON assets USING gin (tags);
