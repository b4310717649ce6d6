"""Every job kind, by name: the one way domains hand each other work without importing each other.

The owner of a kind registers its handler (through its `Domain`); everyone else only enqueues the name.
"""

TRANSCODE_ASSET = "transcode.asset"        # transcode/tasks.py: probe, ladder, package an original
CATALOG_TRANSCODED = "catalog.transcoded"  # streaming/catalog/tasks.py: on_done of a transcode, publishes it
INGEST_FETCH = "ingest.fetch"              # streaming/ingest/url_pull.py: pull an original from a URL (queue "pull")
# URL pulls wait on someone else's server: their own pool (ONAIR_URL_PULL_CONCURRENCY), so slow sources never hold
# the slots transcodes run in.
PULL_QUEUE = "pull"
EVENT_PUBLISHED = "events.published"       # syndication/webhooks/tasks.py: fan an event out to subscribers
WEBHOOK_DELIVER = "webhooks.deliver"       # syndication/webhooks/tasks.py: send one delivery (and reschedule)
TRANSCODE_LIVE = "transcode.live"          # transcode/live.py: one live encoder run (queue "live")
TRANSCODE_LIVE_VOD = "transcode.live_vod"  # transcode/live.py: VOD playlists for a recorded event (no encode)
LIVE_ENCODER_DONE = "live.encoder_done"    # streaming/live/events.py: on_done of transcode.live
LIVE_END_IF_IDLE = "live.end_if_idle"      # streaming/live/events.py: the reconnect window ran out
TRANSCODE_RELABEL = "transcode.relabel"    # transcode/tasks.py: rewrite the audio labels of published manifests
CATALOG_RELABELLED = "catalog.relabelled"  # streaming/catalog/tasks.py: on_done of a relabel, purges the CDN
CATALOG_RETIRE = "catalog.retire_generation"  # streaming/catalog/tasks.py: a replaced generation's objects go
POLL_WINDOW_CLOSED = "polls.window_closed"  # streaming/interaction/polls.py: a scheduled end becomes an event
