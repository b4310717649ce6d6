"""Chat over the real app, PostgreSQL and (for the outage test) a real Redis: POST, long-poll, WebSocket,
rules and moderation."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import asyncpg
import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient, TestServer

from onair.app import create_app
from onair.core.settings import Settings
from streaming.interaction import chat
from streaming.interaction.chat_hub import Client, Frame, RoomHub
from tests.chat_helpers import open_room
from tests.conftest import ADMIN
from tests.device_helpers import mint_device


@pytest.fixture
async def chatty(settings: Settings) -> AsyncIterator[TestClient]:
    """The app with a rate limit loose enough for tests that post a lot from one device."""
    app = create_app(settings.with_(chat_rate_messages=1000), settings.database_url or "", run_worker=False)
    async with TestClient(TestServer(app)) as c:
        for room in ("show1", "room2", "r3", "r5", "tv1"):
            await open_room(c, room)
        yield c


async def device(client: TestClient) -> str:
    return await mint_device(client)


async def say(client: TestClient, room: str, dev: str, text: str, nick: str = "ann", status: int = 201) -> dict:
    resp = await client.post(f"/api/v1/chat/{room}/messages", json={"device_id": dev, "nickname": nick,
                                                                     "text": text})
    body = await resp.json()
    assert resp.status == status, body
    return body


async def ws_messages(ws, count: int, seen: list[dict]) -> list[dict]:
    while len(seen) < count:
        msg = await asyncio.wait_for(ws.receive(), 5)
        assert msg.type == WSMsgType.TEXT, msg
        frame = json.loads(msg.data)
        if frame["type"] == "messages":
            seen.extend(frame["messages"])
    return seen


async def test_post_and_long_poll_resume_without_gaps(chatty: TestClient) -> None:
    dev = await device(chatty)
    first = await say(chatty, "show1", dev, "hello <b>world</b>")
    assert set(first) >= {"id", "cursor", "nickname", "text", "created_at"}
    assert first["text"] == "hello <b>world</b>"  # stored as typed; every page escapes on output
    await say(chatty, "show1", dev, "two")
    page = await (await chatty.get("/api/v1/chat/show1/messages?after=0")).json()
    assert [m["text"] for m in page["messages"]] == ["hello <b>world</b>", "two"]
    cursor = page["cursor"]

    waiting = asyncio.create_task(chatty.get(f"/api/v1/chat/show1/messages?after={cursor}&wait=10"))
    await asyncio.sleep(0.2)
    assert not waiting.done()
    await say(chatty, "show1", dev, "three")
    resp = await asyncio.wait_for(waiting, 5)
    page = await resp.json()
    assert [m["text"] for m in page["messages"]] == ["three"]
    # resume from the new cursor: nothing repeated, and an empty wait ends with the same cursor
    empty = await (await chatty.get(f"/api/v1/chat/show1/messages?after={page['cursor']}&wait=0.2")).json()
    assert empty == {"messages": [], "cursor": page["cursor"]}
    # history for a late joiner
    history = await (await chatty.get("/api/v1/chat/show1/messages")).json()
    assert [m["text"] for m in history["messages"]] == ["hello <b>world</b>", "two", "three"]
    assert await (await chatty.get("/api/v1/chat/show1/messages?after=")).json() == history
    bad = await chatty.get("/api/v1/chat/show1/messages?after=abc")
    assert bad.status == 400 and bad.content_type == "application/problem+json"


async def test_websocket_and_long_poll_see_the_same_messages_in_order(chatty: TestClient) -> None:
    devs = [await device(chatty) for _ in range(4)]
    await say(chatty, "room2", devs[0], "before")
    ws = await chatty.ws_connect("/api/v1/chat/room2/ws")
    seen = await ws_messages(ws, 1, [])
    assert seen[0]["text"] == "before"
    others = [say(chatty, "room2", devs[i % 4], f"m{i}", nick=f"n{i % 4}") for i in range(12)]
    await asyncio.gather(*others)
    await ws.send_str(json.dumps({"type": "send", "device_id": devs[1], "nickname": "viaws", "text": "socket",
                                  "ref": 7}))
    seen = await ws_messages(ws, 14, seen)
    polled = await (await chatty.get("/api/v1/chat/room2/messages?after=0")).json()
    assert [m["id"] for m in seen] == [m["id"] for m in polled["messages"]]
    assert [int(m["cursor"]) for m in seen] == sorted(int(m["cursor"]) for m in seen)
    assert len({m["id"] for m in seen}) == 14

    # reconnect with the cursor: only what came after, no duplicates
    await ws.close()
    await say(chatty, "room2", devs[2], "while away")
    ws = await chatty.ws_connect(f"/api/v1/chat/room2/ws?after={seen[-1]['cursor']}")
    again = await ws_messages(ws, 1, [])
    assert [m["text"] for m in again] == ["while away"]
    await ws.close()


async def test_websocket_declines_permessage_deflate(chatty: TestClient) -> None:
    """Browsers offer it; accepting would deflate every frame once per client (measured ~10-20 us and ~88 KB of
    zlib state per socket), the cost a fan-out to thousands cannot pay."""
    ws = await chatty.ws_connect("/api/v1/chat/room9/ws", compress=15)
    assert ws.compress == 0
    await ws.close()


async def test_bad_input_is_problem_json(chatty: TestClient) -> None:
    dev = await device(chatty)
    cases = [({"device_id": "d1.fake.fake", "nickname": "x", "text": "hi"}, 403),
             ({"device_id": dev, "nickname": "x", "text": "y" * 3000}, 413),
             ({"device_id": dev, "nickname": "x", "text": "   "}, 400),
             ({"device_id": dev, "nickname": "", "text": "hi"}, 400),
             ({"device_id": dev, "text": "hi"}, 400)]
    for body, status in cases:
        resp = await chatty.post("/api/v1/chat/r3/messages", json=body)
        assert resp.status == status, body
        assert resp.content_type == "application/problem+json"
    resp = await chatty.post("/api/v1/chat/bad%20room!/messages", json={"device_id": dev, "nickname": "x",
                                                                        "text": "hi"})
    assert resp.status == 400


async def test_rate_limit_cooling_off_duplicates_and_flood(client: TestClient) -> None:
    await open_room(client, "r4")
    dev = await device(client)
    for i in range(3):
        await say(client, "r4", dev, f"msg {i}")
    limited = await client.post("/api/v1/chat/r4/messages", json={"device_id": dev, "nickname": "a", "text": "4"})
    assert limited.status == 429 and int(limited.headers["Retry-After"]) >= 1
    assert (await limited.json())["type"].endswith("rate-limited")
    still = await client.post("/api/v1/chat/r4/messages", json={"device_id": dev, "nickname": "a", "text": "5"})
    assert still.status == 429 and (await still.json())["type"].endswith("cooling-off")

    other = await device(client)
    await say(client, "r4", other, "Same thing")
    dup = await client.post("/api/v1/chat/r4/messages", json={"device_id": other, "nickname": "a",
                                                               "text": "same   THING"})
    assert dup.status == 409
    for _ in range(3):
        await say(client, "r4", await device(client), "spam spam")
    flood = await client.post("/api/v1/chat/r4/messages", json={"device_id": await device(client),
                                                                 "nickname": "z", "text": "spam spam"})
    assert flood.status == 409 and (await flood.json())["type"].endswith("flood")


async def test_moderation_delete_ban_slow_pause_premoderation_words(chatty: TestClient) -> None:
    dev, dev2 = await device(chatty), await device(chatty)
    ws = await chatty.ws_connect("/api/v1/chat/r5/ws")
    await ws_messages(ws, 0, [])
    bad = await say(chatty, "r5", dev, "rude words", nick="Troll")
    assert (await chatty.delete(f"/api/v1/chat/r5/messages/{bad['id']}")).status == 401
    assert (await chatty.delete(f"/api/v1/chat/r5/messages/{bad['id']}", headers=ADMIN)).status == 204
    deleted = None
    while deleted is None:
        frame = json.loads((await asyncio.wait_for(ws.receive(), 5)).data)
        if frame["type"] == "deleted":
            deleted = frame
    assert deleted["id"] == bad["id"]
    page = await (await chatty.get("/api/v1/chat/r5/messages?after=0")).json()
    assert bad["id"] not in [m["id"] for m in page["messages"]]
    await ws.close()

    resp = await chatty.post("/api/v1/chat/r5/bans", json={"message_id": bad["id"], "minutes": 5}, headers=ADMIN)
    assert resp.status == 201
    banned = await chatty.post("/api/v1/chat/r5/messages", json={"device_id": dev, "nickname": "new name",
                                                                  "text": "hi"})
    assert banned.status == 403 and (await banned.json())["type"].endswith("banned")
    by_nick = await chatty.post("/api/v1/chat/r5/messages", json={"device_id": dev2, "nickname": "TROLL",
                                                                   "text": "hi"})
    assert by_nick.status == 403

    async def patch(**changes) -> dict:
        resp = await chatty.patch("/api/v1/chat/r5", json=changes, headers=ADMIN)
        assert resp.status == 200
        return await resp.json()

    assert (await patch(words=["darn"]))["words"] == ["darn"]
    masked = await say(chatty, "r5", dev2, "oh DARN it, darnation")
    assert masked["text"] == "oh **** it, darnation"

    await patch(slow_mode_seconds=60)
    slow = await chatty.post("/api/v1/chat/r5/messages", json={"device_id": dev2, "nickname": "b", "text": "x"})
    assert slow.status == 429 and (await slow.json())["type"].endswith("slow-mode")
    await patch(slow_mode_seconds=0, paused=True)
    paused = await chatty.post("/api/v1/chat/r5/messages", json={"device_id": dev2, "nickname": "b", "text": "y"})
    assert paused.status == 423 and paused.content_type == "application/problem+json"

    await patch(paused=False, premoderation=True)
    held = await say(chatty, "r5", dev2, "please approve me", nick="b")
    assert held["status"] == "pending" and held["cursor"] is None
    page = await (await chatty.get("/api/v1/chat/r5/messages?after=0")).json()
    assert "please approve me" not in [m["text"] for m in page["messages"]]
    room = await (await chatty.get("/api/v1/chat/r5", headers=ADMIN)).json()
    assert [m["id"] for m in room["pending"]] == [held["id"]]
    waiting = asyncio.create_task(chatty.get(f"/api/v1/chat/r5/messages?after={page['cursor']}&wait=10"))
    approved = await chatty.post(f"/api/v1/chat/r5/messages/{held['id']}/approve", headers=ADMIN)
    assert approved.status == 200
    got = await (await asyncio.wait_for(waiting, 5)).json()
    assert [m["text"] for m in got["messages"]] == ["please approve me"]


async def test_slow_consumer_is_dropped_not_waited_for() -> None:
    hub = RoomHub.__new__(RoomHub)
    hub.clients, hub.frames, hub.drops = set(), 0, 0
    dropped: list[str] = []
    stuck = asyncio.Event()

    async def never_sends(text: str) -> None:
        await stuck.wait()

    slow = Client(never_sends, lambda: dropped.append("slow"), buffer=3)
    got: list[str] = []

    async def fast_send(text: str) -> None:
        got.append(text)

    fast = Client(fast_send, lambda: dropped.append("fast"), buffer=3)
    hub.clients |= {slow, fast}
    pumps = [asyncio.create_task(slow.pump()), asyncio.create_task(fast.pump())]
    for i in range(10):
        RoomHub._broadcast(hub, Frame(f"frame {i}"))
        await asyncio.sleep(0)
    assert dropped == ["slow"] and hub.clients == {fast} and len(got) == 10
    for p in pumps:
        p.cancel()


async def test_long_poll_readers_learn_of_deletions_within_one_poll(chatty: TestClient) -> None:
    dev = await device(chatty)
    doomed = await say(chatty, "tv1", dev, "delete me")
    await say(chatty, "tv1", dev, "keep me")
    page = await (await chatty.get("/api/v1/chat/tv1/messages")).json()
    assert [m["text"] for m in page["messages"]] == ["delete me", "keep me"] and "deleted" not in page
    waiting = asyncio.create_task(chatty.get(f"/api/v1/chat/tv1/messages?after={page['cursor']}&wait=10"))
    await asyncio.sleep(0.2)
    assert not waiting.done()
    assert (await chatty.delete(f"/api/v1/chat/tv1/messages/{doomed['id']}", headers=ADMIN)).status == 204
    woken = await (await asyncio.wait_for(waiting, 5)).json()  # the waiting poll answers with the tombstone
    assert woken["messages"] == [] and woken["deleted"] == [doomed["id"]]
    assert int(woken["cursor"]) > int(page["cursor"])
    again = await (await chatty.get(f"/api/v1/chat/tv1/messages?after={woken['cursor']}&wait=0.2")).json()
    assert again == {"messages": [], "cursor": woken["cursor"]}
    # a reader that was away, and a reconnecting socket, get the tombstone too; history just omits it
    late = await (await chatty.get(f"/api/v1/chat/tv1/messages?after={page['cursor']}")).json()
    assert late["deleted"] == [doomed["id"]]
    history = await (await chatty.get("/api/v1/chat/tv1/messages")).json()
    assert [m["text"] for m in history["messages"]] == ["keep me"]
    async with chatty.ws_connect(f"/api/v1/chat/tv1/ws?after={page['cursor']}") as ws:
        first = json.loads((await asyncio.wait_for(ws.receive(), 5)).data)
        assert first["deleted"] == [doomed["id"]] and first["messages"] == []
    assert (await chatty.delete(f"/api/v1/chat/tv1/messages/{doomed['id']}", headers=ADMIN)).status == 404


async def test_rooms_are_created_by_staff_only(client: TestClient) -> None:
    dev = await device(client)
    msg = {"device_id": dev, "nickname": "ann", "text": "hello"}
    resp = await client.post("/api/v1/chat/nowhere/messages", json=msg)
    assert resp.status == 404 and resp.content_type == "application/problem+json"
    assert (await resp.json())["type"] == "/problems/room-not-found"
    again = await client.post("/api/v1/chat/nowhere/messages", json={**msg, "text": "anyone?"})
    assert again.status == 404  # the first message did not create it

    assert (await client.post("/api/v1/chat/rooms", json={"room": "lobby"})).status == 401
    made = await client.post("/api/v1/chat/rooms", json={"room": "lobby", "name": "The lobby"}, headers=ADMIN)
    assert made.status == 201 and (await made.json())["name"] == "The lobby"
    again = await client.post("/api/v1/chat/rooms", json={"room": "lobby"}, headers=ADMIN)
    assert again.status == 409 and again.content_type == "application/problem+json"
    for bad in ({"room": "rooms"}, {"room": "bad room!"}, {"name": "x"}):
        resp = await client.post("/api/v1/chat/rooms", json=bad, headers=ADMIN)
        assert resp.status == 400 and resp.content_type == "application/problem+json", bad
    assert (await client.post("/api/v1/chat/lobby/messages", json=msg)).status == 201

    # a show comes with its room
    show = await client.post("/api/v1/shows", json={"slug": "quiz", "title": "Quiz night"}, headers=ADMIN)
    assert show.status == 201, await show.text()
    assert (await client.post("/api/v1/chat/show-quiz/messages", json={**msg, "text": "hi quiz"})).status == 201


async def test_a_pause_committed_while_a_message_waits_for_the_room_stops_it(
        chatty: TestClient, db: asyncpg.Pool) -> None:
    """The message passed its checks before the pause committed; the statement that stores it judges the
    pause again once it holds the room, so nothing is stored and the poster hears 423."""
    dev = await device(chatty)
    async with db.acquire() as moderator:
        pause = moderator.transaction()
        await pause.start()
        await moderator.execute("UPDATE chat_rooms SET paused = true WHERE room = 'r3'")  # not committed yet
        posting = asyncio.create_task(chatty.post("/api/v1/chat/r3/messages",
                                                  json={"device_id": dev, "nickname": "ann", "text": "late"}))
        # the post reads the room unpaused, then waits for the row lock: PostgreSQL announces no lock wait, so
        # its activity view is read until it shows one
        async with asyncio.timeout(15):
            while not await db.fetchval("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                        "AND query LIKE '%UPDATE chat_rooms SET seq%'"):
                await asyncio.sleep(0.02)
        await pause.commit()
        resp = await posting
    assert resp.status == 423, await resp.text()
    assert not await db.fetchval("SELECT count(*) FROM chat_messages WHERE room = 'r3' AND text = 'late'")


async def test_a_message_stored_while_a_first_read_runs_is_the_readers_next(
        chatty: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """A TV's first read (no cursor) gets the history and a cursor; a message committed between the two must
    come in its next read, not fall behind the cursor (it did when the cursor was read after the history)."""
    dev = await device(chatty)
    real_after = chat.after

    async def history_then_a_post(db: asyncpg.Pool, room: str, cursor: int | None, limit: int) -> list[dict]:
        rows = await real_after(db, room, cursor, limit)
        monkeypatch.setattr(chat, "after", real_after)
        await say(chatty, "room2", dev, "in between")
        return rows

    monkeypatch.setattr(chat, "after", history_then_a_post)
    first = await (await chatty.get("/api/v1/chat/room2/messages")).json()
    assert "in between" not in [m["text"] for m in first["messages"]]
    resp = await chatty.get(f"/api/v1/chat/room2/messages?after={first['cursor']}&wait=5")
    assert [m["text"] for m in (await resp.json())["messages"]] == ["in between"]
