"""`partner_required(scope)`: the partner-key check in front of a partner handler (feeds and partner API)."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from aiohttp import web

from onair.core import clock, logs
from onair.core.auth import Handler, bearer, label
from onair.core.db.pool import POOL
from onair.core.settings import SETTINGS
from syndication.partners import keys

PartnerHandler = Callable[[web.Request, keys.Partner], Awaitable[web.Response]]


def partner_required(scope: str | None, *, feed: bool = False) -> Callable[[PartnerHandler], Handler]:
    """Authenticate the bearer key, count the call against its rate (and its feed or API usage), check `scope`;
    the handler then receives the partner. `onair routes` shows the handler as `partner:<scope>`."""
    def wrap(handler: PartnerHandler) -> Handler:
        @functools.wraps(handler)
        async def run(request: web.Request) -> web.Response:
            db = request.app[POOL]
            partner = await keys.authenticate(db, bearer(request))
            logs.annotate(partner=partner.name, partner_id=partner.id)
            await keys.count_request(db, partner, clock.now(request.app), feed=feed,
                                     usage_threshold=request.app[SETTINGS].partner_usage_threshold)
            if scope:
                keys.require_scope(partner, scope)
            return await handler(request, partner)

        return label(f"partner:{scope}" if scope else "partner")(run)

    return wrap
