"""The one in-process cache: at most `max_entries` entries, each forgotten `ttl` seconds after it was last
written, least recently used first out beyond the limit. Every per-process map that grows with traffic
(devices, IPs, feeds, objects) uses it, so memory is bounded by settings and never by the audience.

Every operation is O(1) (amortised: expired entries at the cold end are dropped as new ones arrive).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
D = TypeVar("D")


class Bounded(Generic[K, V]):
    def __init__(self, max_entries: int, ttl: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        if ttl is not None and ttl <= 0:
            raise ValueError("ttl must be positive (or None: no expiry)")
        self.max_entries, self.ttl, self._clock = max_entries, ttl, clock
        self._data: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def _deadline(self) -> float:
        return float("inf") if self.ttl is None else self._clock() + self.ttl

    def get(self, key: K, default: D = None) -> V | D:  # type: ignore[assignment]
        hit = self._data.get(key)
        if hit is None:
            return default
        if hit[0] <= self._clock():
            del self._data[key]
            return default
        self._data.move_to_end(key)
        return hit[1]

    def __contains__(self, key: object) -> bool:
        hit = self._data.get(key)  # type: ignore[call-overload]
        return hit is not None and hit[0] > self._clock()

    def set(self, key: K, value: V) -> None:
        """Store (or refresh) `key`: it lives `ttl` seconds from now and is the most recently used."""
        self._data[key] = (self._deadline(), value)
        self._data.move_to_end(key)
        now = self._clock()
        # Expired entries at the cold end go first; then the least recently used beyond the limit.
        while self._data:
            oldest = next(iter(self._data.values()))
            if oldest[0] > now and len(self._data) <= self.max_entries:
                break
            self._data.popitem(last=False)

    def get_or_set(self, key: K, make: Callable[[], V]) -> V:
        """The live value for `key`, or a new one from `make()`; either way `key` is refreshed."""
        value = self.get(key)
        if value is None:
            value = make()
        self.set(key, value)
        return value

    def pop(self, key: K) -> V | None:
        hit = self._data.pop(key, None)
        return None if hit is None or hit[0] <= self._clock() else hit[1]

    def clear(self) -> None:
        self._data.clear()

    def __len__(self) -> int:
        """Entries held, expired ones not yet dropped included: what memory is bounded by."""
        return len(self._data)
