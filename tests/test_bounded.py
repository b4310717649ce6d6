"""The one bounded cache: size limit, TTL, LRU order; and the chat guard that relies on it."""

from __future__ import annotations

import time

import pytest

from onair.core.bounded import Bounded
from streaming.interaction.chat import Guard, Rules


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_least_recently_used_leaves_first() -> None:
    cache: Bounded[str, int] = Bounded(3)
    for key, value in (("a", 1), ("b", 2), ("c", 3)):
        cache.set(key, value)
    assert cache.get("a") == 1  # a is now the most recently used
    cache.set("d", 4)
    assert len(cache) == 3 and "b" not in cache
    assert [cache.get(k) for k in "acd"] == [1, 3, 4]


def test_entries_expire_ttl_after_their_last_write() -> None:
    clock = Clock()
    cache: Bounded[str, str] = Bounded(10, ttl=5.0, clock=clock)
    cache.set("x", "one")
    clock.t += 4
    assert cache.get("x") == "one"  # a read does not extend the life of an entry
    cache.set("y", "two")
    clock.t += 1
    assert cache.get("x") is None and "x" not in cache and cache.get("x", "dflt") == "dflt"
    assert cache.get("y") == "two"
    cache.set("y", "again")  # a write does
    clock.t += 4.5
    assert cache.get("y") == "again"


def test_expired_entries_are_dropped_as_new_ones_arrive() -> None:
    clock = Clock()
    cache: Bounded[int, int] = Bounded(1000, ttl=1.0, clock=clock)
    for i in range(500):
        cache.set(i, i)
    clock.t += 2
    cache.set(-1, -1)
    assert len(cache) == 1  # without anyone reading the 500 stale keys


def test_get_or_set_pop_and_none_values() -> None:
    cache: Bounded[str, list[int]] = Bounded(2)
    first = cache.get_or_set("k", list)
    first.append(1)
    assert cache.get_or_set("k", list) == [1]
    assert cache.pop("k") == [1] and cache.pop("k") is None and len(cache) == 0
    sentinel = object()
    none_cache: Bounded[str, None] = Bounded(2)
    none_cache.set("gone", None)  # "there is no such thing" is worth caching too
    assert none_cache.get("gone", sentinel) is None and none_cache.get("other", sentinel) is sentinel


@pytest.mark.parametrize(("size", "ttl"), [(0, None), (1, 0.0), (1, -1.0)])
def test_bad_limits_are_refused(size: int, ttl: float | None) -> None:
    with pytest.raises(ValueError):
        Bounded(size, ttl)


def test_operations_take_constant_time() -> None:
    """A set at 200,000 entries costs about what it costs at 2,000 (no scan of the whole map)."""
    def per_set(entries: int) -> float:
        cache: Bounded[int, int] = Bounded(entries, ttl=3600)
        for i in range(entries):
            cache.set(i, i)
        start = time.perf_counter()
        for i in range(entries, entries + 20_000):
            cache.set(i, i)
            cache.get(i - 1)
        return time.perf_counter() - start

    small, large = per_set(2_000), per_set(200_000)
    assert large < small * 10, (small, large)  # an O(n) scan would be ~100x


def test_chat_guard_holds_at_most_the_configured_entries() -> None:
    """100,000 distinct devices, each writing once: the guard remembers no more than it was told to."""
    guard = Guard(Rules(), max_entries=1_000)
    for i in range(100_000):
        guard.check("studio", f"device-{i}", f"hello number {i}")
    assert len(guard.devices) <= 1_000 and len(guard.texts) <= 1_000
    # ...and still does its job for the devices it remembers
    guard.check("studio", "device-99999-b", "same words")
    with pytest.raises(Exception, match="just sent"):
        guard.check("studio", "device-99999-b", "same words")


def test_chat_guard_forgets_a_device_once_no_rule_needs_it() -> None:
    clock = Clock()
    rules = Rules()
    guard = Guard(rules, clock=clock, max_entries=1_000)
    guard.check("r", "d1", "hi")
    window = max(rules.rate_seconds, rules.cooloff_seconds, rules.duplicate_seconds, rules.flood_seconds)
    clock.t += window + 1
    guard.check("r", "d2", "hey")
    assert len(guard.devices) == 1 and len(guard.texts) == 1
