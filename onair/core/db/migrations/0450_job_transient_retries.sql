-- Transient failures (storage, database, network) retry over a time horizon instead of using up
-- max_attempts, which now counts only crashes and unclassified errors: a 30 s S3 blip must not kill a job.
ALTER TABLE jobs ADD COLUMN transient_retries integer NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN failing_since timestamptz NULL;
