"""The on-disk audit spool: where audit records wait, in order, while Redis is unavailable or slower than its timeout.

Format: one SQLite database (stdlib sqlite3) per proxy process, a table of (seq, review, record JSON). SQLite rather than
hand-rolled JSON-lines segments because it already gives what the spool needs: an append and a delete are each one atomic
transaction (a crash mid-write leaves no torn record), `seq` orders records across restarts, and taking the oldest rows
and deleting them once Redis has them needs no offset files or segment rotation.

Durability (the fsync policy): WAL journal with `synchronous=NORMAL` by default, so every committed record survives the
process crashing or being killed (it is in the OS page cache and the WAL), without an fsync per record; a power loss or
kernel crash may lose the last commits. `fsync=True` (HEEDFUL_AUDIT_SPOOL_FSYNC) uses `synchronous=FULL`: an fsync per
record, for a spool on a volume that outlives the node.

Slots: processes sharing a spool directory (tests, several proxies on one host) each take the lowest-numbered slot whose
lock file no live process holds (flock, released by the kernel when a process dies), so a restarted proxy reopens the slot
its crashed predecessor left, with its records, and sends them.

The methods block (disk I/O): the store calls them from its one spool thread, never on the event loop.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

_MAX_SLOTS = 64
_SCHEMA = "CREATE TABLE IF NOT EXISTS spool (seq INTEGER PRIMARY KEY, review INTEGER NOT NULL, record TEXT NOT NULL)"


class SpoolFull(Exception):
    """The record would take the spool past its bound; it is not written."""


@dataclass(frozen=True)
class SpooledRecord:
    seq: int
    review: bool
    record: str  # the JSON text, sent to Redis as is


class AuditSpool:
    def __init__(self, directory: Path, max_records: int, max_bytes: int, fsync: bool = False) -> None:
        self.max_records, self.max_bytes = max_records, max_bytes
        directory.mkdir(parents=True, exist_ok=True)
        self._lock, self.path = _take_slot(directory)
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            # auto_vacuum only takes effect before the first table exists; it lets an emptied spool give pages back.
            self._db.execute("PRAGMA auto_vacuum=INCREMENTAL")
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={'FULL' if fsync else 'NORMAL'}")
            self._db.execute("PRAGMA journal_size_limit=4194304")  # the WAL shrinks back to 4 MiB after a checkpoint
            self._db.execute(_SCHEMA)
            self.records, self.bytes = self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(LENGTH(CAST(record AS BLOB))), 0) FROM spool").fetchone()
        except BaseException:
            self._lock.close()
            raise

    def append(self, record: dict[str, Any], review: bool) -> None:
        # ASCII-escaped, as Redis gets it: a lone surrogate in a kept reply cannot fail the encode, and size is length.
        text = json.dumps(record)
        size = len(text)
        if self.records >= self.max_records or self.bytes + size > self.max_bytes:
            raise SpoolFull(f"the spool holds {self.records} records, {self.bytes} bytes "
                            f"(bounds {self.max_records} records, {self.max_bytes} bytes)")
        self._db.execute("INSERT INTO spool (review, record) VALUES (?, ?)", (int(review), text))
        self.records += 1
        self.bytes += size

    def oldest(self, count: int) -> list[SpooledRecord]:
        rows = self._db.execute("SELECT seq, review, record FROM spool ORDER BY seq LIMIT ?", (count,)).fetchall()
        return [SpooledRecord(seq, bool(review), record) for seq, review, record in rows]

    def remove_through(self, batch: list[SpooledRecord]) -> None:
        """Forget a batch Redis has accepted (the oldest rows, so everything up to its last seq)."""
        if not batch:
            return
        self._db.execute("DELETE FROM spool WHERE seq <= ?", (batch[-1].seq,))
        self.records -= len(batch)
        self.bytes -= sum(len(r.record) for r in batch)
        if self.records == 0:
            # An emptied spool gives its disk back: its free pages (executescript runs the pragma to the end; a plain
            # execute frees one page), then the write-ahead log.
            self._db.executescript("PRAGMA incremental_vacuum;")
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

    def close(self) -> None:
        try:
            self._db.close()
        finally:
            self._lock.close()  # releases the flock: the slot is free for the next process


def _take_slot(directory: Path) -> tuple[TextIO, Path]:
    for slot in range(_MAX_SLOTS):
        lock = (directory / f"slot-{slot}.lock").open("a")
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            continue
        lock.truncate(0)
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        return lock, directory / f"slot-{slot}.sqlite3"
    raise RuntimeError(f"all {_MAX_SLOTS} audit spool slots in {directory} are held by running processes")
