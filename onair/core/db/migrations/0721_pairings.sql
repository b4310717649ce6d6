-- Pairing a TV with a phone: the TV asks for a short code (shown with a QR code); the phone that claims it
-- first, before it expires, takes on the TV's device id, so the household votes once and chats as one.
CREATE TABLE pairings (
    code       text PRIMARY KEY,
    device_id  text        NOT NULL,                 -- the TV's server-issued device id
    show_slug  text        REFERENCES shows (slug) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    claimed_at timestamptz
);
CREATE INDEX pairings_device ON pairings (device_id, created_at DESC);
CREATE INDEX pairings_expiry ON pairings (expires_at);
