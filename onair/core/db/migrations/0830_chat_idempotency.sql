-- A client may name each chat message it sends (Idempotency-Key): a retry after a lost answer (a 503 from a
-- commit that timed out although it landed) returns the stored message instead of posting it twice. The key
-- is the sending device's own: the same key from another device is another message.
ALTER TABLE chat_messages ADD COLUMN idempotency_key text;
CREATE UNIQUE INDEX chat_messages_idempotency ON chat_messages (room, device_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
