"""Per-process state of live interaction (vote batcher, tally ticker, poll cache, chat hubs)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from onair.core.bounded import Bounded
from onair.core.bus import BUS
from onair.core.clock import now
from onair.core.db.pool import POOL
from onair.core.settings import Settings
from streaming.interaction import polls
from streaming.interaction.tallies import TallyTicker
from streaming.interaction.vote_batcher import VoteBatcher


@dataclass
class LiveState:
    app: web.Application
    batcher: VoteBatcher
    ticker: TallyTicker
    # Poll definitions (question, options) never change after creation, so they never expire (only the
    # least recently used leave beyond the limit); the window is decided inside the vote transaction,
    # never from this cache.
    _polls: Bounded[str, polls.Poll]
    # first votes per (poll, client IP) in this process, for the optional abuse ceiling
    ip_votes: Bounded[tuple[str, str], int]
    ip_ceiling: int = 0

    async def poll(self, poll_id: str) -> polls.Poll | None:
        cached = self._polls.get(poll_id)
        if cached is None:
            if len(poll_id) > 64:
                return None
            cached = await polls.get(self.app[POOL], poll_id)
            if cached is not None:
                self._polls.set(poll_id, cached)
        return cached

    async def results(self, poll: polls.Poll) -> dict[str, Any]:
        fresh = await polls.get(self.app[POOL], poll.id) or poll
        return await polls.results(self.app[POOL], fresh, now(self.app))

    async def load_results(self, poll_id: str) -> dict[str, Any] | None:
        poll = await polls.get(self.app[POOL], poll_id)
        return None if poll is None else await polls.results(self.app[POOL], poll, now(self.app))


LIVE = web.AppKey("live", LiveState)


def live_context(settings: Settings):
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        ticker = TallyTicker(lambda: app[BUS], lambda pid: state.load_results(pid),
                             settings.tally_interval_ms / 1000)
        batcher = VoteBatcher(app[POOL], lambda: now(app), on_commit=ticker.mark)
        state = LiveState(app, batcher, ticker, Bounded(settings.cache_entries), Bounded(settings.vote_ip_entries),
                          ip_ceiling=settings.vote_ip_ceiling)
        app[LIVE] = state
        await batcher.start()
        await ticker.start()
        yield
        await batcher.stop()
        await ticker.stop()

    return ctx
