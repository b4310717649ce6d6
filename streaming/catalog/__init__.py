"""The catalogue: every asset's metadata, status and rights. `streaming.catalog.repository` is the only module
that writes the `assets` table; other domains read through the names re-exported here."""

from streaming.catalog.presenters import asset_json
from streaming.catalog.repository import (
    ACTIVE_STAGES,
    Asset,
    create_asset,
    delete_asset,
    delete_objects,
    get_asset,
    list_assets,
    mark_failed,
    mark_ready,
    media_prefix,
    new_asset_id,
    record_progress,
    source_key,
    source_prefix,
    source_url,
    start_transcode,
    start_url_pull,
    update_asset,
)

__all__ = ["ACTIVE_STAGES", "Asset", "asset_json", "create_asset", "delete_asset", "delete_objects",
           "get_asset", "list_assets", "mark_failed", "mark_ready", "media_prefix", "new_asset_id",
           "record_progress", "source_key", "source_prefix", "source_url", "start_transcode",
           "start_url_pull", "update_asset"]
