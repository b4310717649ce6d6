"""The hub's recent pages answer a long-poll as the database would, and its frames are valid WebSocket frames."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

from streaming.interaction.chat_hub import Client, Frame, messages_frame, ws_text_frame
from streaming.interaction.chat_recent import Recent


def message(seq: int, mid: int) -> dict:
    return {"id": mid, "cursor": str(seq), "nickname": "ann", "text": f"m{mid}", "created_at": "x"}


def test_a_page_hides_what_was_deleted_later_and_names_the_deletion() -> None:
    recent = Recent(10)
    recent.add_messages([message(11, 1), message(12, 2), message(13, 3)], 13)
    tombstone = {"id": 2, "seq": 14, "status": "deleted", "device_id": "", "nickname": "ann", "text": "m2",
                 "created_at": datetime.now(UTC)}
    recent.add_rows([tombstone], 14)
    assert json.loads(recent.page(10, 100) or b"") == {"messages": [message(11, 1), message(13, 3)],
                                                       "cursor": "14", "deleted": [2]}
    assert json.loads(recent.page(13, 100) or b"") == {"messages": [], "cursor": "14", "deleted": [2]}
    assert json.loads(recent.page(10, 2) or b"") == {"messages": [message(11, 1), message(12, 2)], "cursor": "12"}
    assert recent.page(14, 100) is None and recent.page(9, 100) is None  # nothing new; older than kept: database


def test_frames_carry_their_length_as_rfc_6455_says() -> None:
    big = b"\x81\x7f" + (70_000).to_bytes(8, "big")
    for size, header in ((125, b"\x81\x7d"), (126, b"\x81\x7e\x00\x7e"), (70_000, big)):
        frame = ws_text_frame(b"x" * size)
        assert frame.startswith(header) and len(frame) == len(header) + size


async def test_a_client_resuming_ahead_of_the_hub_gets_no_message_twice() -> None:
    """A viewer that resumed from cursor 12 on a process whose hub is still at 10: the frames that hub sends next
    hold messages the viewer has; only the new ones reach it, and later frames go straight to its socket."""
    wired: list[bytes] = []
    sent: list[str] = []

    trimmed = asyncio.Event()

    async def send(text: str) -> None:
        sent.append(text)
        trimmed.set()

    client = Client(send, lambda: None, buffer=8, write=lambda b: wired.append(b) is None)
    client.last = 12
    pump = asyncio.create_task(client.pump())
    client.offer(Frame(messages_frame([message(11, 1), message(12, 2)], 12), 11, 12,
                       [message(11, 1), message(12, 2)]))
    client.offer(Frame(messages_frame([message(12, 2), message(13, 3)], 13), 12, 13,
                       [message(12, 2), message(13, 3)]))
    async with asyncio.timeout(5):  # the pump sent what was new of the two queued frames
        await trimmed.wait()
    client.offer(Frame(messages_frame([message(14, 4)], 14), 14, 14, [message(14, 4)]))
    pump.cancel()
    seen = [m["id"] for text in sent for m in json.loads(text)["messages"]]
    seen += [m["id"] for b in wired for m in json.loads(b[2:])["messages"]]
    assert seen == [3, 4] and len(wired) == 1
