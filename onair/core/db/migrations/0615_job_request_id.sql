-- The X-Request-Id of the request that enqueued a job (owned by onair/core/jobs.py): jobs log it and pass it
-- on to the jobs and webhook deliveries they start. Nullable, no default: an instant change on a live table.
ALTER TABLE jobs ADD COLUMN request_id text;
