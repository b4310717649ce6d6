"""unless_stopping: a long-lived wait ends with the process, and leaves no coroutine or task behind."""

from __future__ import annotations

import asyncio
import gc
import warnings

import pytest
from aiohttp import web

from onair.core.lifecycle import STOPPING, Stopping, unless_stopping


def _app() -> web.Application:
    app = web.Application()
    app[STOPPING] = asyncio.Event()
    return app


async def test_already_stopping_closes_the_coroutine_it_never_started() -> None:
    app = _app()
    app[STOPPING].set()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(Stopping):
            await unless_stopping(app, asyncio.sleep(10))
        gc.collect()
    assert not [w for w in caught if "never awaited" in str(w.message)]


async def test_a_cancelled_request_cancels_its_wait() -> None:
    app = _app()
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def wait() -> None:
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    request = asyncio.ensure_future(unless_stopping(app, wait()))
    await asyncio.wait_for(started.wait(), 5)
    request.cancel()
    await asyncio.wait_for(cancelled.wait(), 5)  # the waiter did not outlive the request


async def test_stopping_ends_the_wait() -> None:
    app = _app()
    request = asyncio.ensure_future(unless_stopping(app, asyncio.sleep(30)))
    await asyncio.sleep(0)
    app[STOPPING].set()
    with pytest.raises(Stopping):
        await asyncio.wait_for(request, 5)
