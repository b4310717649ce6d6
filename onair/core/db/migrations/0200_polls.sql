-- Live polls. A vote row is the durable acknowledgement: (poll_id, device_id) is unique, so a device
-- votes once per poll; `poll_tallies` is maintained in the same transaction as the vote rows, so the
-- published counts are exact and cheap to read on every tick.
CREATE TABLE polls (
    id            text PRIMARY KEY,
    question      text        NOT NULL,
    options       jsonb       NOT NULL,                 -- [{"id": 1, "label": "..."}], never changed
    status        text        NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'open', 'closed')),
    show          text,
    channel       text,
    opens_at      timestamptz,                          -- optional scheduled window
    closes_at     timestamptz,
    allow_change  boolean     NOT NULL DEFAULT false,   -- may a device change its vote?
    opened_at     timestamptz,
    closed_at     timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CHECK (closes_at IS NULL OR opens_at IS NULL OR closes_at > opens_at)
);
CREATE INDEX polls_created ON polls (created_at DESC);

CREATE TABLE votes (
    poll_id    text        NOT NULL REFERENCES polls (id) ON DELETE CASCADE,
    device_id  text        NOT NULL,
    option_id  integer     NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (poll_id, device_id)
);

CREATE TABLE poll_tallies (
    poll_id   text    NOT NULL REFERENCES polls (id) ON DELETE CASCADE,
    option_id integer NOT NULL,
    votes     bigint  NOT NULL DEFAULT 0,
    PRIMARY KEY (poll_id, option_id)
);

-- What the studio did to a poll and when (exported with the results).
CREATE TABLE poll_audit (
    id      bigserial PRIMARY KEY,
    poll_id text        NOT NULL REFERENCES polls (id) ON DELETE CASCADE,
    action  text        NOT NULL,
    detail  jsonb       NOT NULL DEFAULT '{}'::jsonb,
    at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX poll_audit_poll ON poll_audit (poll_id, id);
