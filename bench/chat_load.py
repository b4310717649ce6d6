"""Chat fan-out at show scale (the chat half of bench_interaction): one room, BENCH_WS_CLIENTS WebSockets
(default 5,000) and BENCH_LONGPOLL_TVS long-poll TVs (default 1,000), BENCH_CHAT_RATE messages/s (default 50)
posted for BENCH_CHAT_SECONDS (default 20), against `onair serve --workers 2` with Redis, and in the same run
against two references with the same clients:

- bare: a bare aiohttp app broadcasting each POSTed message to its sockets in a loop (`send_str`, as an
  application would write it) and waking its long-polls;
- ceiling (`ceiling_prebuilt_frames`): the same app writing each message as prebuilt WebSocket bytes straight to
  every socket, TVs woken per tick: the least a Python process can do per delivered message. It writes once
  per message per socket, where onair writes once per tick, and it is one process: at show scale on two
  cores it falls behind too, so it is a reference for per-message work, not the clients' ceiling. That is
  read from the clients' own CPU (`clients_cpu_per_s`: CPU seconds per second for every delivery counted).

The clients cost as little as they can, so the server is what is measured: raw sockets in
BENCH_CHAT_CLIENT_PROCS processes (default 2), each holding its share of both kinds; a WebSocket client does
the handshake, answers pings, and counts the stamps in the bytes it receives (server frames are unmasked and
uncompressed: no frame decoding, no JSON); a TV asks `GET /messages?after=<cursor>&wait=20` on a keep-alive
socket, reads the answer by its Content-Length, counts stamps, takes the new cursor, and asks again 50 ms
later (as the HbbTV app does). Each side's CPU time during the posting is recorded, to say which one bounds
the figure.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import json
import multiprocessing
import os
import re
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import psutil
from aiohttp import web

_STAMP = re.compile(rb"t=([0-9]{10}\.[0-9]{6}) #")
_CURSOR = re.compile(rb'"cursor":\s*"([0-9]+)"')
_PING = b"\x89\x00"                      # a server ping with no payload (aiohttp's heartbeat)
_PONG = b"\x8a\x80\x00\x00\x00\x00"      # its answer: masked (client frames must be), empty
_TAIL = 32                               # longer than a stamp: one cut between two reads is found whole
TV_PAUSE = 0.05                          # the HbbTV app's pause between polls (hbbtv_apps/static/app.js)
POLL_EVERY = 0.25                        # the ceiling wakes its TVs at most this often (onair: 0.5 ms a TV)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def setting(quick: bool) -> dict[str, Any]:
    """The chat load: the issue's show scale by default, a small one in quick mode; each figure overridable."""
    env = os.environ.get
    return {"ws_clients": int(env("BENCH_WS_CLIENTS", "500" if quick else "5000")),
            "longpoll_tvs": int(env("BENCH_LONGPOLL_TVS", "100" if quick else "1000")),
            "rate": float(env("BENCH_CHAT_RATE", "20" if quick else "50")),
            "seconds": float(env("BENCH_CHAT_SECONDS", "5" if quick else "20")),
            "client_procs": int(env("BENCH_CHAT_CLIENT_PROCS", "2"))}


# --- the references ------------------------------------------------------------------------------------

def reference_process(port: int, prebuilt: bool) -> None:
    """bare (prebuilt=False): a JSON encoding and `send_str` per socket per message, and every waiting TV woken
    by every message. ceiling (prebuilt=True): one encoding and one set of WebSocket bytes per message written
    to every socket as they are, TVs woken at most every POLL_EVERY with one encoded page per cursor: onair's
    design with nothing else (no database, no Redis, no checks)."""
    sockets: dict[web.WebSocketResponse, asyncio.Transport] = {}
    history: list[dict[str, Any]] = []
    pages: dict[int, bytes] = {}
    posted = asyncio.Event()

    def wake() -> None:
        nonlocal posted
        posted.set()  # every waiter reads the new messages past its cursor
        posted = asyncio.Event()

    async def ws_handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        sockets[ws] = request.transport  # type: ignore[assignment]
        try:
            async for _ in ws:
                pass
        finally:
            sockets.pop(ws, None)
        return ws

    async def post(request: web.Request) -> web.Response:
        data = await request.json()
        history.append(data)
        if prebuilt:
            pages.clear()
            payload = json.dumps({"type": "messages", "messages": [data]}).encode()
            n = len(payload)
            wire = (bytes([0x81, n]) if n < 126 else bytes([0x81, 126]) + n.to_bytes(2, "big")) + payload
            for transport in tuple(sockets.values()):
                if not transport.is_closing():
                    transport.write(wire)
        else:
            wake()
            for ws in tuple(sockets):  # the bare broadcast loop
                with contextlib.suppress(ConnectionError):  # a client that left at the end of the run
                    await ws.send_str(json.dumps({"type": "messages", "messages": [data]}))
        return web.json_response(data, status=201)

    async def waker() -> None:
        seen = 0
        while True:
            await asyncio.sleep(POLL_EVERY)
            if len(history) > seen:
                seen = len(history)
                wake()

    async def long_poll(request: web.Request) -> web.Response:
        after = request.query.get("after")
        if after is None:
            return web.json_response({"messages": [], "cursor": str(len(history))})
        if len(history) <= int(after):
            event = posted
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), float(request.query.get("wait", "20")))
        if not prebuilt:
            return web.json_response({"messages": history[int(after):], "cursor": str(len(history))})
        body = pages.get(int(after))
        if body is None:
            body = pages[int(after)] = json.dumps({"messages": history[int(after):],
                                                   "cursor": str(len(history))}).encode()
        return web.Response(body=body, content_type="application/json")

    async def start_waker(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(waker())
        yield
        task.cancel()

    app = web.Application()
    if prebuilt:
        app.cleanup_ctx.append(start_waker)
    app.router.add_get("/ws", ws_handler)
    app.router.add_post("/messages", post)
    app.router.add_get("/messages", long_poll)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


# --- the clients ---------------------------------------------------------------------------------------

class Counts:
    def __init__(self) -> None:
        self.received = 0
        self.lat: list[float] = []
        self.last_at = 0.0   # wall clock of the last delivery: the run's throughput is over first post..this

    def scan(self, data: bytes) -> None:
        now = time.time()
        for stamp in _STAMP.findall(data):
            self.received += 1
            self.lat.append(now - float(stamp))
            self.last_at = now


class WsCounter(asyncio.Protocol):
    """A WebSocket client that never decodes a frame: it answers pings and counts stamps in the raw bytes."""

    def __init__(self, request: bytes, counts: Counts, opened: asyncio.Future[None]) -> None:
        self.request = request
        self.counts = counts
        self.opened = opened
        self.head = b""
        self.tail = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        if not self.opened.done():
            self.head += data
            if b"\r\n\r\n" not in self.head:
                return
            head, _, data = self.head.partition(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 101"):
                self.opened.set_exception(RuntimeError(head[:200].decode(errors="replace")))
                return
            self.opened.set_result(None)
        if _PING in data and self.transport is not None:
            self.transport.write(_PONG)
        buf = self.tail + data
        matches = list(_STAMP.finditer(buf))
        if matches:
            now = time.time()
            self.counts.received += len(matches)
            self.counts.lat.extend(now - float(m.group(1)) for m in matches)
            self.counts.last_at = now
        self.tail = buf[max(matches[-1].end() if matches else 0, len(buf) - _TAIL):]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(exc or ConnectionError("closed before the handshake"))


async def _tv(port: int, path: str, counts: Counts, errors: dict[str, int], cursor: bytes) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while True:
            writer.write(b"GET %s?after=%s&wait=20 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % (path.encode(), cursor))
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
            body = await reader.readexactly(length)
            if head[9:12] != b"200":
                errors[head[9:12].decode()] = errors.get(head[9:12].decode(), 0) + 1
                await asyncio.sleep(1)
                continue
            counts.scan(body)
            if found := _CURSOR.findall(body):
                cursor = found[-1]  # the page's own cursor follows its messages' (each message has one)
            await asyncio.sleep(TV_PAUSE)
    finally:
        writer.close()


def client_process(port: int, ws_path: str, poll_path: str, n_ws: int, n_tv: int, stop: Any, out: Any,
                   ready: Any, start: Any) -> None:
    async def main() -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        ws, tv = Counts(), Counts()
        errors: dict[str, int] = {}
        gate = asyncio.Semaphore(64)  # handshakes in flight: thousands at once would only time out

        async def connect() -> asyncio.Transport | None:
            key = base64.b64encode(os.urandom(16))
            request = (b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                       b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (ws_path.encode(), key))
            async with gate:
                for _ in range(5):
                    opened: asyncio.Future[None] = loop.create_future()
                    try:
                        transport, _ = await loop.create_connection(
                            functools.partial(WsCounter, request, ws, opened), "127.0.0.1", port)
                        await asyncio.wait_for(opened, 60)
                        return transport
                    except (OSError, RuntimeError, TimeoutError) as exc:
                        errors[f"ws {type(exc).__name__}: {exc}"[:120]] = errors.get(
                            f"ws {type(exc).__name__}: {exc}"[:120], 0) + 1
                        await asyncio.sleep(1)
            return None

        transports = [t for t in await asyncio.gather(*(connect() for _ in range(n_ws))) if t is not None]
        cursor = b"0"
        if n_tv:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % poll_path.encode())
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
            cursor = _CURSOR.findall(await reader.readexactly(length))[-1]
            writer.close()
        ready.put(len(transports))
        while not start.is_set():  # counting starts when the posting does (history frames are not counted)
            await asyncio.sleep(0.05)
        ws.received, ws.lat = 0, []
        cpu0, wall0 = time.process_time(), time.monotonic()
        tvs = [asyncio.create_task(_tv(port, poll_path, tv, errors, cursor)) for _ in range(n_tv)]
        while not stop.is_set():
            await asyncio.sleep(0.1)
        cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
        for t in tvs:
            t.cancel()
        results = await asyncio.gather(*tvs, return_exceptions=True)
        for r in results:
            if isinstance(r, Exception) and not isinstance(r, asyncio.CancelledError):
                errors[f"tv {type(r).__name__}"] = errors.get(f"tv {type(r).__name__}", 0) + 1
        for t in transports:
            t.abort()
        return {"connected": len(transports), "ws": ws.received, "ws_lat": ws.lat, "tv": tv.received,
                "last_at": max(ws.last_at, tv.last_at),
                "tv_lat": tv.lat, "errors": errors, "cpu_s": cpu, "wall_s": wall}

    out.put(asyncio.run(main()))


async def _post(url: str, rate: float, seconds: float,
                devices: list[str]) -> tuple[dict[int, int], dict[str, str], list[float]]:
    """Post at a fixed rate, each POST on its own so a slow answer does not slow the schedule; the count of
    each answer's status (0: no answer), the first refusal of each status, and each 201's latency."""
    refusals: dict[str, str] = {}
    answered: list[float] = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as s:
        async def one(i: int) -> int:
            payload = {"nickname": "bench", "device_id": devices[i % len(devices)],
                       "text": f"t={time.time():.6f} #{i}"}
            t0 = time.perf_counter()
            try:
                async with s.post(url, json=payload, headers={"Idempotency-Key": f"bench-{i}"}) as r:
                    answer = await r.read()
                    if r.status != 201:
                        refusals.setdefault(str(r.status), answer[:300].decode(errors="replace"))
                    else:
                        answered.append(time.perf_counter() - t0)
                    return r.status
            except (aiohttp.ClientError, TimeoutError) as exc:
                refusals.setdefault("0", repr(exc)[:300])
                return 0

        start = time.perf_counter()
        tasks = []
        for i in range(int(rate * seconds)):
            await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
            tasks.append(asyncio.create_task(one(i)))
        statuses: dict[int, int] = {}
        for status in await asyncio.gather(*tasks):
            statuses[status] = statuses.get(status, 0) + 1
        return statuses, refusals, answered


def _cpu(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            t = psutil.Process(pid).cpu_times()
            total += t.user + t.system
    return total


def run_load(port: int, ws_path: str, poll_path: str, post_url: str, load: dict[str, Any], devices: list[str],
             server_pids: list[int]) -> dict[str, Any]:
    ctx = multiprocessing.get_context("fork")
    q, ready, start, stop = ctx.Queue(), ctx.Queue(), ctx.Event(), ctx.Event()
    procs, seconds = load["client_procs"], load["seconds"]
    ws_each, tv_each = load["ws_clients"] // procs, load["longpoll_tvs"] // procs
    rss_before = sum(psutil.Process(p).memory_info().rss for p in server_pids)
    workers = [ctx.Process(target=client_process, args=(port, ws_path, poll_path, ws_each, tv_each, stop, q,
                                                        ready, start), daemon=True) for _ in range(procs)]
    connect_start = time.monotonic()
    for w in workers:
        w.start()
    try:
        connected = sum(ready.get(timeout=900) for _ in workers)
        connect_s = time.monotonic() - connect_start
        time.sleep(2)  # TVs' first polls and the sockets' history settle
        rss_after = sum(psutil.Process(p).memory_info().rss for p in server_pids)
        server_cpu0, load_avg = _cpu(server_pids), os.getloadavg()
        start.set()
        t0, first_post = time.monotonic(), time.time()
        statuses, refusals, answered = asyncio.run(_post(post_url, load["rate"], seconds, devices))
        time.sleep(float(os.environ.get("BENCH_CHAT_GRACE", "5")))  # deliveries still under way count
        server_cpu, window = _cpu(server_pids) - server_cpu0, time.monotonic() - t0
        stop.set()
        parts = [q.get(timeout=300) for _ in workers]
    finally:
        stop.set()
        for w in workers:
            w.join(10)
            if w.is_alive():
                w.kill()
    sent = statuses.get(201, 0)
    ws_lat = [x for p in parts for x in p["ws_lat"]]
    tv_lat = [x for p in parts for x in p["tv_lat"]]
    ws_got, tv_got = sum(p["ws"] for p in parts), sum(p["tv"] for p in parts)
    connections = connected + tv_each * procs
    client_cpu = sum(p["cpu_s"] for p in parts)
    # over the span from the first post to the last delivery: a server that falls behind is not credited
    # with the time it took to catch up (nor with more than the posting time when it keeps up)
    span = max(seconds, max(p["last_at"] for p in parts) - first_post)
    return {"ws_clients": connected, "longpoll_tvs": tv_each * procs, "connect_seconds": round(connect_s, 1),
            "messages_sent": sent, "post_statuses": {str(k): v for k, v in statuses.items()},
            "post_refusals": refusals, "deliveries": ws_got + tv_got,
            "expected_deliveries": sent * connections,
            "deliveries_per_second": round((ws_got + tv_got) / span, 1), "span_seconds": round(span, 1),
            "post_p50_ms": round(percentile(answered, 0.5) * 1000, 1),
            "post_p99_ms": round(percentile(answered, 0.99) * 1000, 1),
            "ws_deliveries": ws_got, "tv_deliveries": tv_got,
            "p50_ms": round(percentile(ws_lat + tv_lat, 0.5) * 1000, 1),
            "p99_ms": round(percentile(ws_lat + tv_lat, 0.99) * 1000, 1),
            "ws_p99_ms": round(percentile(ws_lat, 0.99) * 1000, 1),
            "tv_p50_ms": round(percentile(tv_lat, 0.5) * 1000, 1),
            "tv_p99_ms": round(percentile(tv_lat, 0.99) * 1000, 1),
            "server_memory_per_connection_kib": round((rss_after - rss_before) / max(1, connections) / 1024, 1),
            # CPU seconds per second of the posting window (+ grace): 2.0 is both cores of this machine
            "server_cpu_per_s": round(server_cpu / window, 2), "clients_cpu_per_s": round(client_cpu / window, 2),
            "load_average_before": [round(x, 2) for x in load_avg],
            "client_errors": {k: v for p in parts for k, v in p["errors"].items()}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
