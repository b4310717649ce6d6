"""Origin for live channels: `/live/{channel_id}/{key}` (playlists; segments of unrecorded events).

Caching: segments are written once -> immutable; live playlists and the MPD change every segment -> max-age of
about half a segment, so a CDN collapses a crowd onto one origin request per half segment without holding
viewers behind the live edge; an ended channel's playlists no longer change until the next event -> a minute;
the poster is rewritten while live -> half its refresh period. Rights and their effect on caching:
streaming/live/viewer_rights.py.
Low latency: a plain playlist changes with every part -> one second; a blocking reload (`_HLS_msn`/`_HLS_part`,
streaming/live/blocking.py) answers one fixed question -> cacheable for the time a request may be held, so a CDN
whose cache key includes the query collapses a crowd asking for the same part onto one origin request; parts, like
segments, are written once -> immutable. `_HLS_skip=YES` answers a delta update (streaming/live/delta.py), another
question with its own cache key.
Two MPDs per channel: `dash/manifest.mpd` (LL-DASH on a low-latency channel) and `dash/standard.mpd`, the same
segments announced only when complete, for DASH players without low-latency support (HbbTV terminals before
2.0.3). A low-latency channel's publisher writes both; for a standard channel the second is the first.
"""

from __future__ import annotations

from aiohttp import web

from onair.core.bus import BUS
from onair.core.db.pool import POOL
from onair.core.errors import AppError, NotFound, problem_response
from onair.core.settings import SETTINGS
from onair.core.storage import STORE, ObjectNotFound
from streaming.delivery import access, caching, origin
from streaming.live import blocking, delta
from streaming.live.channels import ON_AIR, Channel, get_channel, live_prefix
from streaming.live.viewer_rights import check_rights, rights_caching

POSTER_KEY = "images/poster.jpg"
LL_MPD = "dash/manifest.mpd"
STANDARD_MPD = "dash/standard.mpd"   # transcode.live_manifests.STANDARD_MPD_KEY (a URL contract, kept in sync)
STATUS_KEY = "status.json"    # what players show over the picture: the slate while the encoder is away
PUBLIC_STATUS = {"idle": "idle", "starting": "starting", "live": "live", "reconnecting": "reconnecting",
                 "ended": "ended"}


def live_cache_control(key: str, ch: Channel, segment_seconds: float, poster_seconds: float = 10.0,
                       held: bool = False) -> str:
    if key == POSTER_KEY:   # rewritten while live, unlike every other image
        return f"public, max-age={max(1, int(poster_seconds / 2))}" if ch.status != "ended" else "public, max-age=60"
    kind = caching.object_kind(key)
    if kind in caching.MANIFESTS:
        if ch.status == "ended":
            return "public, max-age=60"
        if held:
            return f"public, max-age={int(blocking.HOLD_TARGETS * segment_seconds)}"
        if ch.latency == "low" and key != STANDARD_MPD:   # the standard MPD changes once a segment
            return "public, max-age=1"
        return f"public, max-age={max(1, int(segment_seconds / 2))}"
    return caching.IMMUTABLE if kind in caching.IMMUTABLE_KINDS else "public, max-age=2"


async def _try_read(request: web.Request, key: str) -> bytes | None:
    try:
        return await request.app[STORE].get_bytes(key)
    except ObjectNotFound:
        return None


async def _stream_open_segment(request: web.Request, ch: Channel, key: str,
                               headers: dict[str, str]) -> web.StreamResponse | None:
    """A low-latency channel's segment that is still being encoded (LL-DASH's availabilityTimeOffset lets players
    ask for it early): its parts, chunked, as they are written. None when it is not such a segment."""
    found = blocking.SEGMENT.fullmatch(key)
    if found is None or ch.latency != "low" or ch.status not in ON_AIR or request.method != "GET":
        return None
    prefix = live_prefix(ch.id)
    seconds = blocking.HOLD_TARGETS * request.app[SETTINGS].live_segment_seconds
    chunks = blocking.open_segment(request.app[BUS], ch.id, found["track"], prefix + found["base"],
                                   int(found["seq"]), seconds, lambda k: _try_read(request, k))
    response: web.StreamResponse | None = None
    try:
        async for chunk in chunks:
            if response is None:
                # X-Accel-Buffering: nginx passes the chunks on as they come (and does not cache this response).
                response = web.StreamResponse(headers={**headers, "X-Accel-Buffering": "no"})
                response.enable_chunked_encoding()
                await response.prepare(request)
            await response.write(chunk)
    except blocking.PartNotYetAvailable:
        if response is None:
            raise
        # Cut short: end without the last chunk, so no cache keeps a partial segment as complete.
        if request.transport is not None:
            request.transport.close()
        return response
    if response is None:
        return None  # complete before its first part was read: the segment object is there now
    await response.write_eof()
    return response


async def serve(request: web.Request) -> web.StreamResponse:
    config = request.app[origin.ORIGIN_CONFIG]
    cors = caching.cors_headers(request, config.cors_origins)
    channel_id, key = request.match_info["channel_id"], request.match_info["key"]
    try:
        access.check_raw_path(request.raw_path)
        access.object_key(channel_id, key)  # the same path rules as /media (raises on a bad key)
        store_key = live_prefix(channel_id) + key
        ch = await get_channel(request.app[POOL], channel_id)
        if ch is None:
            raise NotFound(f"No live channel {channel_id}", code="channel-not-found")
        if key == STANDARD_MPD and ch.latency != "low":
            store_key = live_prefix(channel_id) + LL_MPD   # a standard channel's one MPD is standard already
        check_rights(ch, request)
        if key == STATUS_KEY:
            return web.json_response({"status": PUBLIC_STATUS.get(ch.status, "idle"), "event": ch.event_no},
                                     headers={**cors, "Cache-Control": "public, max-age=1"})
        low_playlist = key.endswith(".m3u8") and ch.latency == "low"
        want = blocking.wanted(request.query) if low_playlist else None
        delta_update = low_playlist and delta.wants_skip(request.query)

        async def read() -> bytes:
            try:
                return await request.app[STORE].get_bytes(store_key)
            except ObjectNotFound:
                raise NotFound(f"Channel {channel_id} has no object {key}", code="object-not-found") from None

        if want is None:
            try:
                data = await read()
            except NotFound:
                headers = {"Content-Type": caching.content_type(key), "Cache-Control": caching.IMMUTABLE, **cors}
                if (streamed := await _stream_open_segment(request, ch, key, headers)) is not None:
                    return streamed
                data = await read()
        else:
            track = key.rsplit("/", 1)[-1].removesuffix(".m3u8")
            data = await blocking.hold(request.app[BUS], channel_id, track, want, read, shared_key=store_key)
        if delta_update:
            data = delta.skip(data.decode()).encode()
    except AppError as err:
        headers = {**cors, **err.headers, "Cache-Control": "public, max-age=1" if err.status == 404 else "no-store"}
        return problem_response(err.status, err.code, err.title, err.detail, headers=headers, instance=request.path,
                                extra=err.extra)
    settings = request.app[SETTINGS]
    base = live_cache_control(key, ch, settings.live_segment_seconds, settings.live_poster_seconds,
                              held=want is not None)
    headers = {"Content-Type": caching.content_type(key), **cors, **rights_caching(base, ch, request)}
    if "Vary" in cors and "Vary" in headers and cors["Vary"] != headers["Vary"]:
        headers["Vary"] = f"{cors['Vary']}, {headers['Vary']}"
    return web.Response(body=data if request.method != "HEAD" else None, headers=headers)


def setup(app: web.Application) -> None:
    resource = app.router.add_resource("/live/{channel_id}/{key:.+}", name="live-media")
    resource.add_route("GET", serve)
    resource.add_route("HEAD", serve)
    resource.add_route("OPTIONS", origin.preflight)
