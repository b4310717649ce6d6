"""Chat storm: many readers — TVs long-polling `GET /messages?after=` and browsers on the WebSocket — and
a few hundred writers posting at a human pace (under the per-user rate limit).

Needs LOADTEST_CHAT_ROOM. Writers : long-poll readers : WebSocket readers = 1 : 6 : 3 by default
(LOADTEST_WRITER_WEIGHT ...). Counters: ws_messages (frames received), ws_connects, ws_errors.
"""

from __future__ import annotations

import json
import random
import time
from urllib.parse import urlsplit

import gevent
import websocket  # websocket-client: blocking sockets, cooperative under locust's gevent monkey-patching
from _shared import COUNTERS, DURATION, USERS, elapsed, env_float, env_int, env_str, mint_device
from locust import LoadTestShape, User, between, constant, events, task
from locust.contrib.fasthttp import FastHttpUser

ROOM = env_str("CHAT_ROOM", "show")
RAMP = env_float("RAMP", max(2.0, DURATION * 0.25))
LONG_POLL_TIMEOUT = env_float("LONG_POLL_TIMEOUT", 35.0)


def _device(client) -> str | None:
    return mint_device(client)


class Writer(FastHttpUser):
    weight = env_int("WRITER_WEIGHT", 1)
    wait_time = between(1.0, 3.0)   # ~0.5 msg/s each: under "3 messages / 2 s"

    def on_start(self) -> None:
        self.device_id = _device(self.client)
        self.nick = f"viewer{random.randrange(10**6)}"
        self.sent = 0

    @task
    def write(self) -> None:
        if not self.device_id:
            gevent.sleep(1)
            return
        # Distinct texts: the room's moderation rejects repeats and the same text from many devices (409).
        self.sent += 1
        text = f"{random.choice(('Goal!', 'What a save', 'Vote B!', 'Hello from'))} {self.nick} #{self.sent}"
        self.client.post(f"/api/v1/chat/{ROOM}/messages", name="POST /api/v1/chat/{room}/messages",
                         json={"device_id": self.device_id, "nickname": self.nick, "text": text})


class LongPollReader(FastHttpUser):
    weight = env_int("LONGPOLL_WEIGHT", 6)
    wait_time = constant(0)
    network_timeout = LONG_POLL_TIMEOUT + 10
    connection_timeout = 10.0

    def on_start(self) -> None:
        self.cursor = ""

    @task
    def read(self) -> None:
        path = f"/api/v1/chat/{ROOM}/messages" + (f"?after={self.cursor}" if self.cursor else "")
        with self.client.get(path, name="GET /api/v1/chat/{room}/messages (long-poll)",
                             catch_response=True) as resp:
            if resp.status_code != 200:
                resp.failure(f"long-poll: {resp.status_code}")
                gevent.sleep(1)
                return
            body = resp.json()
            self.cursor = body.get("cursor") or self.cursor
            COUNTERS["longpoll_messages"] += len(body.get("messages", []))


class WebSocketReader(User):
    weight = env_int("WS_WEIGHT", 3)
    wait_time = constant(0)

    @task
    def listen(self) -> None:
        if elapsed() >= DURATION:
            gevent.sleep(1)  # the scenario is over; don't churn connections while locust stops users
            return
        host = urlsplit(self.host)
        scheme = "wss" if host.scheme == "https" else "ws"
        url = f"{scheme}://{host.netloc}/api/v1/chat/{ROOM}/ws"
        start = time.perf_counter()
        try:
            ws = websocket.create_connection(url, timeout=10)
        except Exception as exc:
            COUNTERS["ws_errors"] += 1
            events.request.fire(request_type="WS", name="connect /api/v1/chat/{room}/ws", response_time=
                                (time.perf_counter() - start) * 1000, response_length=0, exception=exc)
            gevent.sleep(1)
            return
        events.request.fire(request_type="WS", name="connect /api/v1/chat/{room}/ws",
                            response_time=(time.perf_counter() - start) * 1000, response_length=0, exception=None)
        COUNTERS["ws_connects"] += 1
        try:
            while elapsed() < DURATION:
                try:
                    frame = ws.recv()
                except websocket.WebSocketTimeoutException:
                    continue
                if not frame:
                    break  # server closed (e.g. 1001 going away): reconnect on the next task run
                try:
                    json.loads(frame)
                except ValueError:
                    COUNTERS["ws_bad_frames"] += 1
                COUNTERS["ws_messages"] += 1
        except websocket.WebSocketConnectionClosedException:
            COUNTERS["ws_closed_by_server"] += 1
        finally:
            ws.close()


class ChatStormShape(LoadTestShape):
    def tick(self) -> tuple[int, float] | None:
        if self.get_run_time() >= DURATION:
            return None
        return USERS, max(USERS / RAMP, 1.0)
