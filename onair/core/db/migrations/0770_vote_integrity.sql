-- Vote integrity (README "Live votes"): what the integrity report needs about each vote travels with it into
-- the same INSERT, so the vote path stays one group-committed statement. Both columns are personal data and are
-- cleared after ONAIR_PRIVACY_RETENTION_DAYS (streaming/interaction/retention.py).
ALTER TABLE votes ADD COLUMN client_ip inet;             -- the viewer's address (client_ip: trusted proxies only)
ALTER TABLE votes ADD COLUMN device_issued_at timestamptz; -- from the signed device id: device age at vote time

-- Exclusions a producer applied to a closed poll: which flags, and the per-option counts they removed, frozen
-- at the time (the acknowledged tally in poll_tallies is never changed; results show both).
CREATE TABLE poll_exclusions (
    poll_id  text        PRIMARY KEY REFERENCES polls (id) ON DELETE CASCADE,
    flags    text[]      NOT NULL,
    removed  jsonb       NOT NULL,        -- {"<option id>": votes removed}
    at       timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX votes_created ON votes (created_at) WHERE client_ip IS NOT NULL;
