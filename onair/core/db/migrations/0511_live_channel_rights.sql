-- Channel rights, the same fields as an asset's (streaming/catalog/rights.py decides): an embargo/expiry window
-- and a geo allow/deny list, enforced at the live origin and in the embed page, and copied onto recordings.
ALTER TABLE live_channels
    ADD COLUMN available_from  timestamptz,
    ADD COLUMN available_until timestamptz,
    ADD COLUMN geo_allow       text[]      NOT NULL DEFAULT '{}',
    ADD COLUMN geo_deny        text[]      NOT NULL DEFAULT '{}',
    ADD CONSTRAINT live_channels_window
        CHECK (available_until IS NULL OR available_from IS NULL OR available_until > available_from);
