"""The per-process caches of the query package: a thread-safe LRU with hit counts.

Each cache holds what a request can rebuild (a statement template, a parsed tree, an
ordering), so losing an entry costs time only. Requests run in threads of one process under
gthread, so every access takes the lock; the size is given to each ``put`` because it is a
setting (``QUERY_CACHE_SIZE``), read per request.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

__all__ = ["LRUCache"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LRUCache(Generic[K, V]):
    """A thread-safe LRU of at most the ``size`` given to each ``put``; ``hits`` and
    ``misses`` count the ``get`` calls since the last ``clear``."""

    def __init__(self) -> None:
        self._entries: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: K) -> V | None:
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return found

    def put(self, key: K, entry: V, size: int) -> None:
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)
