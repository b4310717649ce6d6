"""What a room's hub delivered lately, kept to answer long-polls without the database.

A thousand TVs polling "after N" ask the same question each tick; the hub already holds the answer. Entries
cover a contiguous cursor range (since, top]: every delivery the hub makes covers the cursors between its last
one and its new top (from the bus when contiguous, else read from the database), so a page built here is
what `chat.after` would return. Each page is encoded once per (after, limit) and top, and shared by every TV
asking it.
"""

from __future__ import annotations

import json
from typing import Any

from streaming.interaction import chat

_Entry = tuple[dict[str, Any] | None, int | None]  # (a visible message, None) or (None, id of a deleted one)


class Recent:
    def __init__(self, start: int, size: int = 2000, pages: int = 256) -> None:
        self.since = start
        self.top = start
        self.size = size
        self._max_pages = pages
        self._entries: dict[int, _Entry] = {}
        self._pages: dict[tuple[int, int, int], bytes] = {}

    def add_messages(self, messages: list[dict[str, Any]], top: int) -> None:
        """Visible messages from the bus, one for each cursor up to `top`."""
        for m in messages:
            self._entries[int(m["cursor"])] = (m, None)
        self._advance(top)

    def add_rows(self, rows: list[dict[str, Any]], top: int) -> None:
        """Rows read from the database after the last top (visible messages and tombstones)."""
        for r in rows:
            if r["status"] == "visible":
                self._entries[r["seq"]] = (chat.message_json(r), None)
            elif r["status"] == "deleted":
                self._entries[r["seq"]] = (None, r["id"])
        self._advance(top)

    def _advance(self, top: int) -> None:
        self.top = top
        self._pages.clear()
        while len(self._entries) > self.size:
            self.since = next(iter(self._entries))  # dicts keep insertion (cursor) order
            del self._entries[self.since]

    def page(self, after: int, limit: int, upto: int | None = None) -> bytes | None:
        """The long-poll answer for a reader at `after`, up to cursor `upto` (default: all), encoded; None when
        this range cannot answer it (nothing new yet, or older than what is kept: the database answers those)."""
        upto = self.top if upto is None else min(upto, self.top)
        if not self.since <= after < upto:
            return None
        key = (after, limit, upto)
        body = self._pages.get(key)
        if body is None:
            if len(self._pages) >= self._max_pages:
                self._pages.clear()
            body = self._pages[key] = self._encode(after, limit, upto)
        return body

    def _encode(self, after: int, limit: int, upto: int) -> bytes:
        picked: list[_Entry] = []
        cursor = after
        for seq in range(after + 1, upto + 1):
            if (entry := self._entries.get(seq)) is not None:
                picked.append(entry)
                cursor = seq
                if len(picked) == limit:
                    break
        gone = [deleted for _, deleted in picked if deleted is not None]
        hidden = set(gone)  # a message deleted later in the same page is not shown at all
        body: dict[str, Any] = {"messages": [m for m, _ in picked if m is not None and m["id"] not in hidden],
                                "cursor": str(cursor)}
        if gone:
            body["deleted"] = gone
        return json.dumps(body, separators=(",", ":")).encode()
