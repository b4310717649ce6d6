-- Sharded tally counters. Every vote batch of every web process used to update the same few
-- (poll, option) rows, so concurrent batches queued behind each other's commit on those row locks
-- and throughput stopped growing with processes. Each batch now adds to one of many shard rows;
-- results sum the shards. Existing counts stay in shard 0.
ALTER TABLE poll_tallies ADD COLUMN shard smallint NOT NULL DEFAULT 0;
ALTER TABLE poll_tallies DROP CONSTRAINT poll_tallies_pkey;
ALTER TABLE poll_tallies ADD PRIMARY KEY (poll_id, option_id, shard);
