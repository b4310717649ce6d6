-- Chat rooms are created by staff (POST /api/v1/chat/rooms) or with a show, no longer by a viewer's first
-- message; a room gets a display name.
ALTER TABLE chat_rooms ADD COLUMN name text;

-- Shows made before this had their room created by the first message; give every show its room now.
INSERT INTO chat_rooms (room, name)
SELECT coalesce(chat_room, 'show-' || slug), title FROM shows
ON CONFLICT DO NOTHING;
