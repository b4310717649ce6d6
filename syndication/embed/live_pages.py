"""What /embed/live/{id} and /watch/live/{id} show for a live channel: a pure decision, like pages.player_page.

A channel on air (starting, live, or waiting for its encoder to come back) gets the player in live mode: the
live HLS master (hls.js; dash.js plays the DASH MPD with `?engine=dash`, in low-latency mode on an LL channel), a
LIVE badge, seeking inside the DVR window and a "go live" button. Off air, a message page that reloads itself,
so a page opened before the show starts begins playing without the viewer doing anything.
"""

from __future__ import annotations

from datetime import datetime

from streaming.catalog.rights import Availability, Rights, availability
from streaming.live import Channel
from syndication.embed.pages import PlayerOptions, PlayerPage

ON_AIR = ("starting", "live", "reconnecting")
OFF_AIR_REFRESH = 10   # seconds between reloads of the "not live yet" page


def live_src(channel_id: str) -> tuple[str, str]:
    return f"/live/{channel_id}/hls/master.m3u8", f"/live/{channel_id}/dash/manifest.mpd"


def live_page(channel: Channel | None, channel_id: str, now: datetime, options: PlayerOptions, *,
              country: str | None = None, rights: Rights | None = None) -> PlayerPage:
    if channel is None or channel.visibility == "private":
        return PlayerPage(404, channel_id, "Live channel not found", discoverable=False,
                          message="This live channel does not exist or is not public.")
    title = channel.title or "Live"
    verdict = availability(rights or Rights(), now, country)
    if verdict is Availability.EMBARGOED:
        return PlayerPage(403, channel.id, title, message="This live stream is not available yet.",
                          discoverable=False)
    if verdict is Availability.EXPIRED:
        return PlayerPage(404, channel.id, title, message="This live stream is no longer available.",
                          discoverable=False)
    if verdict is Availability.GEO_BLOCKED:
        return PlayerPage(403, channel.id, title, message="This live stream is not available in your country.",
                          discoverable=False)
    if channel.status not in ON_AIR:
        message = ("This live event has ended." if channel.status == "ended"
                   else "This channel is not live yet.") + " The page will start playing when it goes live."
        return PlayerPage(200, channel.id, title, message=message, retry_seconds=OFF_AIR_REFRESH,
                          discoverable=False)
    hls, dash = live_src(channel.id)
    config = {"asset_id": None, "channel_id": channel.id, "live": True, "src": hls, "dash": dash, "title": title,
              "duration": 0, "dvr_seconds": channel.dvr_seconds,
              "status_url": f"/live/{channel.id}/status.json", "storyboard": None, "autoplay": options.autoplay,
              "start": 0, "loop": False, "engine": options.engine, "debug": options.debug,
              "low_latency": channel.latency == "low", "events_url": None}
    return PlayerPage(200, channel.id, title, poster=f"/live/{channel.id}/images/poster.jpg", config=config,
                      discoverable=False, robots="noindex")
