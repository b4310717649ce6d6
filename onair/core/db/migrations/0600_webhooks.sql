-- Webhook subscriptions and their delivery log (Standard Webhooks): owned by syndication/webhooks/store.py.
CREATE TABLE webhook_endpoints (
    id              text        PRIMARY KEY,
    url             text        NOT NULL,
    events          text[]      NOT NULL,
    secret          text        NOT NULL,            -- whsec_<base64>, shown once at creation
    description     text        NOT NULL DEFAULT '',
    disabled_at     timestamptz,
    disabled_reason text,
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE webhook_deliveries (
    id            bigserial   PRIMARY KEY,
    endpoint_id   text        NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    message_id    text        NOT NULL,              -- webhook-id: the same on every attempt
    event_type    text        NOT NULL,
    payload       jsonb       NOT NULL,
    event_at      timestamptz NOT NULL,
    status        text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts      integer     NOT NULL DEFAULT 0,
    response_code integer,
    latency_ms    integer,
    last_error    text,
    next_attempt_at timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz,
    UNIQUE (endpoint_id, message_id)
);

-- Ordering per endpoint: the oldest pending delivery goes first.
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (endpoint_id, event_at, id) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_log ON webhook_deliveries (endpoint_id, id DESC);
