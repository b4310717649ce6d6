-- tus uploads are staged in the object store, not on one pod's disk, so a resumed PATCH may land on any web
-- replica. Bytes live in an S3-style multipart upload towards the asset's source key (`multipart_id`, `parts`:
-- the completed parts of >= 5 MiB each) plus `pieces`: small objects under `uploads/tus/<id>/` that hold the
-- bytes not yet gathered into a part (tus chunks may be far smaller than S3's 5 MiB minimum part).
-- `lease_token`/`lease_until` serialise PATCHes without holding a database connection while a client's body
-- is read: a PATCH claims the row in one short statement and commits its new offset under the same token.
--
-- Uploads in flight across this upgrade were staged on a local disk no other replica can read: they cannot
-- continue, so their assets are marked failed (the client's HEAD then answers 404 and it uploads again).
UPDATE assets SET status = 'failed', error = 'upload interrupted by a server upgrade; please upload again',
                  updated_at = now()
 WHERE id IN (SELECT asset_id FROM uploads) AND status = 'uploading';
DELETE FROM uploads;

ALTER TABLE uploads
    DROP COLUMN staging,
    DROP COLUMN completed,
    ADD COLUMN multipart_id text,
    ADD COLUMN parts       jsonb NOT NULL DEFAULT '[]'::jsonb,
    ADD COLUMN pieces      jsonb NOT NULL DEFAULT '[]'::jsonb,
    ADD COLUMN lease_token text,
    ADD COLUMN lease_until timestamptz;
