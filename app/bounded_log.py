"""The newest records in process memory, kept as compact JSON text within a record count and a byte bound.

Kept as dicts, records cost about twice their JSON text (1.7 KB against 0.95 KB for a repaired draft's audit record),
and a count bound alone lets memory follow the records' size (texts are included with spec.audit.include_texts):
100,000 records as dicts were ~170 MiB without texts, most of a pod's memory, reached by a steady climb that a soak
shows as RSS growing with every request.
"""

from __future__ import annotations

import itertools
import json
from collections import deque
from typing import Any


class BoundedLog:
    def __init__(self, max_records: int, max_bytes: int) -> None:
        self._entries: deque[str] = deque()
        self._max_records, self._max_bytes = max_records, max_bytes
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def append(self, record: dict[str, Any]) -> None:
        # ASCII-only JSON (ensure_ascii): one byte per character in memory, and any lone surrogate is escaped.
        entry = json.dumps(record, separators=(",", ":"))
        self._entries.append(entry)
        self._bytes += len(entry)
        # The newest record always stays, even one larger than the byte bound.
        while len(self._entries) > 1 and (len(self._entries) > self._max_records or self._bytes > self._max_bytes):
            self._bytes -= len(self._entries.popleft())

    def recent(self, count: int) -> list[dict[str, Any]]:
        """The newest `count` records, oldest first."""
        newest_first = itertools.islice(reversed(self._entries), max(0, count))
        return [json.loads(entry) for entry in reversed(list(newest_first))]
