-- HbbTV red-button apps: one row per channel/show app, signalled in an AIT by (org_id, app_id).
CREATE TABLE hbbtv_apps (
    slug          text PRIMARY KEY CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    name          text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    org_id        integer     NOT NULL CHECK (org_id BETWEEN 1 AND 16777215),      -- 1..0xFFFFFF
    app_id        integer     NOT NULL CHECK (app_id BETWEEN 1 AND 40959),         -- 1..0x9FFF (unsigned apps)
    poll_id       text,                                                            -- interaction domain's poll
    chat_room     text,
    vod_assets    text[]      NOT NULL DEFAULT '{}',                               -- playlist, in order
    colours       jsonb       NOT NULL DEFAULT '{}'::jsonb,                        -- {"primary", "accent", "text"}
    logo_url      text,
    control_code  text        NOT NULL DEFAULT 'PRESENT' CHECK (control_code IN ('AUTOSTART', 'PRESENT')),
    ait_version   integer     NOT NULL DEFAULT 0 CHECK (ait_version BETWEEN 0 AND 31), -- bumped on every change
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, app_id)
);

-- Interactive advertising: the studio pushes an "overlay now" banner; running apps pick it up on their next poll.
CREATE TABLE hbbtv_banners (
    id            bigserial PRIMARY KEY,
    app_slug      text        NOT NULL REFERENCES hbbtv_apps (slug) ON DELETE CASCADE ON UPDATE CASCADE,
    image_url     text        NOT NULL,
    target_url    text        NOT NULL,
    label         text        NOT NULL DEFAULT '',
    starts_at     timestamptz NOT NULL DEFAULT now(),
    ends_at       timestamptz NOT NULL,
    clicks        bigint      NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CHECK (ends_at >= starts_at)
);

CREATE INDEX hbbtv_banners_current ON hbbtv_banners (app_slug, ends_at DESC);
