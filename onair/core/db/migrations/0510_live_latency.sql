-- A live channel's latency mode (streaming/live/channels.py owns this table): 'low' adds LL-HLS parts, blocking
-- playlist reload and LL-DASH on top of the same 2 s segments that 'standard' publishes. New channels take the
-- deployment default (ONAIR_LIVE_LATENCY) when they name none; existing channels keep their current behaviour.
ALTER TABLE live_channels
    ADD COLUMN latency text NOT NULL DEFAULT 'standard' CHECK (latency IN ('low', 'standard'));
