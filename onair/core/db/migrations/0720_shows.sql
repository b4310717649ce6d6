-- Shows: the programme a viewer is sent to ("vote at /s/evening-news"). A show owns its page and names what
-- is attached to it: a live channel, a chat room and an HbbTV app (by their ids); polls point at their show.
CREATE TABLE shows (
    slug         text PRIMARY KEY CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,63}$'),
    title        text        NOT NULL,
    description  text        NOT NULL DEFAULT '',
    schedule     text        NOT NULL DEFAULT '',       -- as the producer writes it ("Weekdays 19:00")
    live_channel text,
    chat_room    text,
    hbbtv_app    text,
    created_at   timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE polls ADD COLUMN show_slug text REFERENCES shows (slug) ON DELETE SET NULL;
CREATE INDEX polls_show ON polls (show_slug, created_at DESC) WHERE show_slug IS NOT NULL;

-- The free-text `show` values of polls and assets become shows (slug from the text, title the text itself);
-- polls are linked, assets keep their text (the show page also finds clips by slug or title).
INSERT INTO shows (slug, title)
SELECT DISTINCT ON (slug) slug, title FROM (
    SELECT trim(both '-' from left(regexp_replace(lower(v), '[^a-z0-9]+', '-', 'g'), 64)) AS slug, v AS title
    FROM (SELECT show AS v FROM polls WHERE show IS NOT NULL UNION SELECT show FROM assets WHERE show IS NOT NULL) s
) t WHERE slug ~ '^[a-z0-9][a-z0-9-]{0,63}$'
ORDER BY slug, title
ON CONFLICT DO NOTHING;

UPDATE polls SET show_slug = trim(both '-' from left(regexp_replace(lower(show), '[^a-z0-9]+', '-', 'g'), 64))
WHERE show IS NOT NULL
  AND trim(both '-' from left(regexp_replace(lower(show), '[^a-z0-9]+', '-', 'g'), 64)) IN (SELECT slug FROM shows);
