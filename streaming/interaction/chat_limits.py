"""Chat limits every web process shares (onair/core/limits.py: Redis when configured).

`chat.Guard` answers cheaply in each process (sliding windows, duplicates, floods); these counters make the
per-device rate and its cooling-off hold across processes too, so `serve --workers 4` does not give a
flooder four budgets, and cap what one client IP may post to a room however many devices it mints.
"""

from __future__ import annotations

from aiohttp import web

from onair.core.errors import TooManyRequests
from onair.core.limits import limits_of
from onair.core.web import client_ip, settings_of
from streaming.interaction.chat import Rules


async def check(request: web.Request, room: str, device_id: str, rules: Rules) -> None:
    limits = limits_of(request.app)
    cooling = f"chat-cool:{room}:{device_id}"
    if await limits.seen(cooling):
        raise TooManyRequests("Slow down: you are cooling off", code="cooling-off",
                              headers={"Retry-After": str(max(1, round(rules.cooloff_seconds)))})
    count, _ = await limits.hit(f"chat-rate:{room}:{device_id}", rules.rate_seconds)
    if count > rules.rate_messages:
        await limits.first(cooling, rules.cooloff_seconds)
        raise TooManyRequests(f"More than {rules.rate_messages} messages in {rules.rate_seconds:g} s; "
                              f"wait {rules.cooloff_seconds:g} s", code="rate-limited",
                              headers={"Retry-After": str(max(1, round(rules.cooloff_seconds)))})
    ceiling = settings_of(request).chat_ip_messages
    if ceiling:
        count, left = await limits.hit(f"chat-ip:{room}:{client_ip(request)}", 60.0)
        if count > ceiling:
            raise TooManyRequests(f"More than {ceiling} messages a minute from this address to this room",
                                  code="chat-ip-limited", headers={"Retry-After": str(int(left) + 1)})
