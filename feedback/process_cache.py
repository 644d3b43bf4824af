"""A small cache of hot lookups, private to one process, whose entries live a couple of seconds.

The product API's per-request lookups (a token and its project, a project's label keys) change
rarely but cost a query and ORM work on every call: at hundreds of requests a second they are a
large share of a request. A change made in this process is seen at once (the writer calls
`forget`); other processes see it within `ttl` seconds, like the serving aliases.
"""
from __future__ import annotations

import threading
import time
from typing import Callable, Generic, Hashable, TypeVar

T = TypeVar("T")


class ProcessCache(Generic[T]):
    def __init__(self, ttl: float, max_entries: int = 10_000):
        self.ttl, self.max_entries = ttl, max_entries
        self._entries: dict[Hashable, tuple[float, T]] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, load: Callable[[], T | None]) -> T | None:
        """The cached value for `key`, or `load()`'s (a None result is not cached)."""
        now = time.monotonic()
        hit = self._entries.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        value = load()
        if value is not None:
            with self._lock:
                if len(self._entries) >= self.max_entries:
                    self._entries.clear()  # bounded: a flood of distinct keys costs queries, not memory
                self._entries[key] = (now + self.ttl, value)
        return value

    def forget(self, match: Callable[[Hashable, T], bool] | None = None) -> None:
        """Drop every entry, or those for which `match(key, value)` is true."""
        with self._lock:
            if match is None:
                self._entries.clear()
            else:
                for key in [k for k, (_, v) in self._entries.items() if match(k, v)]:
                    del self._entries[key]
