-- One row per player session (one page view of the embed player), updated by its beacons.
-- The player sends cumulative watched seconds, so a lost or repeated beacon never double-counts:
-- the row keeps the largest value seen. Plays = sessions that started playback.
CREATE TABLE player_sessions (
    asset_id        text        NOT NULL REFERENCES assets (id) ON DELETE CASCADE,
    session_id      text        NOT NULL,
    referrer_domain text        NOT NULL DEFAULT '',   -- host of the page embedding the player; '' = direct
    played          boolean     NOT NULL DEFAULT false,
    ended           boolean     NOT NULL DEFAULT false,
    max_quartile    smallint    NOT NULL DEFAULT 0 CHECK (max_quartile IN (0, 25, 50, 75, 100)),
    watched_seconds double precision NOT NULL DEFAULT 0 CHECK (watched_seconds >= 0),
    errors          integer     NOT NULL DEFAULT 0,
    last_error      text,
    started_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (asset_id, session_id)
);

CREATE INDEX player_sessions_referrer ON player_sessions (asset_id, referrer_domain);
