-- PostgreSQL job queue: claimed with FOR UPDATE SKIP LOCKED, woken by NOTIFY, protected by leases.
CREATE TABLE jobs (
    id            bigserial PRIMARY KEY,
    queue         text        NOT NULL DEFAULT 'default',
    kind          text        NOT NULL,
    payload       jsonb       NOT NULL DEFAULT '{}'::jsonb,
    status        text        NOT NULL DEFAULT 'queued'
                  CHECK (status IN ('queued', 'running', 'done', 'dead', 'cancelled')),
    priority      integer     NOT NULL DEFAULT 100,   -- lower runs first
    attempts      integer     NOT NULL DEFAULT 0,
    max_attempts  integer     NOT NULL DEFAULT 3 CHECK (max_attempts > 0),
    run_after     timestamptz NOT NULL DEFAULT now(),
    locked_by     text,
    lease_until   timestamptz,
    cancel_requested boolean  NOT NULL DEFAULT false,
    on_done       text,                               -- job kind enqueued when this one ends
    progress      jsonb       NOT NULL DEFAULT '{}'::jsonb,
    result        jsonb,
    last_error    text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    started_at    timestamptz,
    finished_at   timestamptz
);

-- The claim scans only runnable rows in priority order.
CREATE INDEX jobs_runnable ON jobs (queue, priority, run_after, id) WHERE status = 'queued';
CREATE INDEX jobs_expired_leases ON jobs (lease_until) WHERE status = 'running';
