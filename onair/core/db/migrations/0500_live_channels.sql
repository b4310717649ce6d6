-- Live channels (streaming/live/channels.py owns this table). A channel is a stable set of ingest and
-- playback URLs; each time a publisher goes live it starts an *event* (event_no + 1). With `record`, the
-- event's segments are written into a recording asset's media prefix from the first segment, so the
-- recording is ready without copying or re-encoding when the event ends.
CREATE TABLE live_channels (
    id              text        PRIMARY KEY,
    title           text        NOT NULL DEFAULT '',
    stream_key      text        NOT NULL UNIQUE,
    record          boolean     NOT NULL DEFAULT false,
    dvr_seconds     integer     NOT NULL DEFAULT 7200 CHECK (dvr_seconds BETWEEN 10 AND 86400),
    visibility      text        NOT NULL DEFAULT 'public' CHECK (visibility IN ('public', 'unlisted', 'private')),
    status          text        NOT NULL DEFAULT 'idle'
                    CHECK (status IN ('idle', 'starting', 'live', 'reconnecting', 'ended')),
    status_reason   text,
    event_no        integer     NOT NULL DEFAULT 0,
    ingest_protocol text,                                 -- rtmp | srt while a publisher is connected
    input           jsonb,                                -- facts of the current input (codecs, size, fps)
    ladder          jsonb,                                -- rungs the encoder produces, and why it capped
    recording_asset text,                                 -- asset receiving the current event's segments
    job_id          bigint REFERENCES jobs (id) ON DELETE SET NULL,  -- the current encoder run
    recordings      jsonb       NOT NULL DEFAULT '[]',    -- [{"asset_id", "started_at", "ended_at"}]
    owner           text,                                 -- worker "host:pid" holding the publisher
    heartbeat_at    timestamptz,
    started_at      timestamptz,
    ended_at        timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX live_channels_created ON live_channels (created_at DESC, id DESC);
