"""Routes of the CDN origin: `/media/{asset_id}/{key}` and the signed form `/media/{asset_id}/tok/{token}/{key}`."""

from __future__ import annotations

from aiohttp import web

from onair.core.auth import SIGNING_KEY, label
from onair.core.settings import SETTINGS, Settings
from streaming.delivery import origin


def _settings(app: web.Application) -> Settings:
    return app[SETTINGS]


async def media(request: web.Request) -> web.StreamResponse:
    return await origin.serve(request, request.match_info["asset_id"], request.match_info["key"], None)


@label("token")  # a signed playback token in the path (private videos, embargo previews)
async def signed_media(request: web.Request) -> web.StreamResponse:
    return await origin.serve(request, request.match_info["asset_id"], request.match_info["key"],
                              request.match_info["token"])


async def _on_startup(app: web.Application) -> None:
    app[origin.ORIGIN_CONFIG] = origin.OriginConfig(_settings(app), app[SIGNING_KEY])


def setup(app: web.Application) -> None:
    app[origin.ORIGIN_HITS] = origin.Counter()
    if SIGNING_KEY in app:
        app[origin.ORIGIN_CONFIG] = origin.OriginConfig(_settings(app), app[SIGNING_KEY])
    else:
        app.on_startup.append(_on_startup)
    # The signed form first: otherwise `{key:.+}` would swallow "tok/<token>/...".
    for path, handler, name in (("/media/{asset_id}/tok/{token}/{key:.+}", signed_media, "media-signed"),
                                ("/media/{asset_id}/{key:.+}", media, "media")):
        resource = app.router.add_resource(path, name=name)
        resource.add_route("GET", handler)
        resource.add_route("HEAD", handler)
        resource.add_route("OPTIONS", origin.preflight)
