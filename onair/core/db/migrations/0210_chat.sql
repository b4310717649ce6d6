-- Chat rooms. `seq` is the room's cursor: it is taken under the room row lock in the same transaction
-- that makes a message visible, so cursors commit in order and a reader resuming "after N" never
-- misses a message that commits later with a smaller cursor.
CREATE TABLE chat_rooms (
    room              text PRIMARY KEY,
    seq               bigint      NOT NULL DEFAULT 0,
    slow_mode_seconds integer     NOT NULL DEFAULT 0 CHECK (slow_mode_seconds >= 0),
    paused            boolean     NOT NULL DEFAULT false,
    premoderation     boolean     NOT NULL DEFAULT false,
    words             text[]      NOT NULL DEFAULT '{}',   -- word filter, edited by moderators
    created_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE chat_messages (
    id         bigserial PRIMARY KEY,
    room       text        NOT NULL REFERENCES chat_rooms (room) ON DELETE CASCADE,
    seq        bigint,                                   -- NULL while awaiting approval
    device_id  text        NOT NULL,
    nickname   text        NOT NULL,
    text       text        NOT NULL,
    status     text        NOT NULL DEFAULT 'visible' CHECK (status IN ('visible', 'pending', 'deleted')),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX chat_messages_room_seq ON chat_messages (room, seq);
CREATE INDEX chat_messages_device ON chat_messages (room, device_id, created_at DESC);
CREATE INDEX chat_messages_pending ON chat_messages (room, id) WHERE status = 'pending';

CREATE TABLE chat_bans (
    room   text        NOT NULL REFERENCES chat_rooms (room) ON DELETE CASCADE,
    kind   text        NOT NULL CHECK (kind IN ('device', 'nickname')),
    value  text        NOT NULL,
    until  timestamptz NOT NULL,
    reason text        NOT NULL DEFAULT '',
    PRIMARY KEY (room, kind, value)
);
