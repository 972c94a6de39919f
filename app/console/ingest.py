"""Audit records into the console's database: from the Redis stream `heedful:audit` (a console beside the proxies), or
from the in-process store (a console mounted in the proxy). Each record is stored once (keyed by request id and time),
so reading a stream again after a restart adds nothing twice; old decisions leave by the retention bounds."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import Iterable
from typing import Any, cast

import redis.asyncio as aioredis
from redis.exceptions import RedisError
from sqlalchemy import Connection, Table, delete, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from app.console.db import Database
from app.console.reviews import review_label
from app.console.schema import CursorRow, DecisionRow, DetailRow, HourRow
from app.store import AUDIT_STREAM, MemoryStore

log = logging.getLogger("heedful.console")
_TEXT_FIELDS = ("messages", "reply", "returned", "would_return")


def _text(value: Any, limit: int) -> str:
    return str(value if value is not None else "")[:limit]


def row_of(record: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The decision's columns and its detail's (the record and, only where the record carries them, the texts: the
    policy decided)."""
    flags = [str(f) for f in record.get("flags") or []]
    request_id = _text(record.get("request_id"), 120)
    ts = float(record.get("ts") or time.time())
    retain = record.get("retain_until")
    detail = {"record": {k: v for k, v in record.items() if k not in _TEXT_FIELDS},
              "messages": record.get("messages"), "reply": record.get("reply"), "returned": record.get("returned"),
              "would_return": record.get("would_return")}
    return {
        # One row per record: several choices of one request each leave a record (with their `choice`).
        "key": f"{request_id}@{ts!r}#{record.get('choice', '')}"[:200], "request_id": request_id, "ts": ts,
        "policy": _text(record.get("policy"), 120), "policy_version": _text(record.get("policy_version"), 60),
        "policy_revision": _text(record.get("policy_revision"), 120), "mode": _text(record.get("mode"), 20),
        "model": _text(record.get("model"), 200), "tenant": _text(record.get("tenant"), 200),
        "rule": _text(record.get("rule"), 120), "action": _text(record.get("action"), 40),
        "outcome": _text(record.get("outcome"), 60),
        "flags": ("," + ",".join(flags) + ",")[:400] if flags else "", "flagged": bool(flags),
        "acted_on": review_label(str(record.get("rule_label") or "")),
        "would_change": "would_return" in record or (record.get("mode") == "shadow" and bool(record.get("changed"))),
        "sample_rate": float(record.get("sample_rate", 1.0)),
        "retain_until": float(retain) if retain is not None else None, "reviewed": False,
        "has_texts": detail["reply"] is not None and detail["messages"] is not None,
    }, detail


def store_records(db: Database, records: Iterable[dict[str, Any]], cursor: tuple[str, str] | None = None) -> int:
    """Insert records not stored yet (and move the stream cursor in the same transaction); returns how many were new."""
    pairs = [row_of(r) for r in records if isinstance(r, dict) and r.get("request_id")]
    insert = pg_insert if db.backend == "postgresql" else sqlite_insert
    added = 0
    with db.session() as session, session.begin():
        if pairs:
            table = cast(Table, DecisionRow.__table__)
            statement = insert(table).on_conflict_do_nothing(index_elements=["key"]).returning(table.c.id, table.c.key)
            connection = session.connection()
            # Only the rows new to the table come back: their details follow; a record seen before adds nothing.
            new = {key: decision_id for decision_id, key in connection.execute(statement, [row for row, _ in pairs])}
            details = [detail | {"decision_id": new[row["key"]]} for row, detail in pairs if row["key"] in new]
            if details:
                connection.execute(insert(cast(Table, DetailRow.__table__)), details)
                _count_hours(connection, insert, [row for row, _ in pairs if row["key"] in new])
            added = len(new)
        if cursor is not None:
            name, position = cursor
            upsert = insert(CursorRow).values(name=name, position=position)
            session.execute(upsert.on_conflict_do_update(index_elements=["name"], set_={"position": position}))
    return added


_HOUR_KEYS = ("policy", "rule", "action", "outcome", "tenant", "would_change")


def _count_hours(connection: Connection, insert: Any, rows: list[dict[str, Any]]) -> None:
    """Add new decisions to the hourly counts the charts read."""
    counts: dict[tuple[Any, ...], list[int]] = {}
    for row in rows:
        key = (int(row["ts"] // 3600), *(row[name] for name in _HOUR_KEYS))
        entry = counts.setdefault(key, [0, 0, 0])
        entry[0] += 1
        entry[1] += bool(row["flagged"])
        entry[2] += row["action"] != "allow"
    table = cast(Table, HourRow.__table__)
    values = [dict(zip(("hour", *_HOUR_KEYS), key, strict=True)) | {"decisions": n, "flagged": f, "acted": a}
              for key, (n, f, a) in sorted(counts.items())]  # sorted: concurrent writers lock rows in one order
    statement = insert(table)
    connection.execute(statement.on_conflict_do_update(
        index_elements=["hour", *_HOUR_KEYS],
        set_={name: table.c[name] + statement.excluded[name] for name in ("decisions", "flagged", "acted")}), values)


def prune(db: Database, retention_days: float, now: float | None = None) -> int:
    """Remove decisions past their policy's retention, or past the console's own bound (their reviews go with them)."""
    now = time.time() if now is None else now
    with db.session() as session, session.begin():
        result = session.connection().execute(delete(DecisionRow).where(or_(
            DecisionRow.ts < now - retention_days * 86400, DecisionRow.retain_until < now)))
        # The hourly counts hold no text: they follow the console's own bound, not a policy's shorter one.
        session.execute(delete(HourRow).where(HourRow.hour < int((now - retention_days * 86400) // 3600)))
    if db.backend == "sqlite":
        with db.engine.connect() as connection:  # planner statistics, refreshed when SQLite sees a need
            connection.exec_driver_sql("PRAGMA optimize")
    return max(int(result.rowcount), 0)


def cursor_of(db: Database, name: str) -> str | None:
    with db.session() as session:
        return session.scalar(select(CursorRow.position).where(CursorRow.name == name))


class RedisIngester:
    """Reads the audit stream from where it stopped, in batches, until stopped."""

    def __init__(self, db: Database, redis_url: str, batch: int, retention_days: float) -> None:
        self.db, self.batch, self.retention_days = db, batch, retention_days
        self._redis = aioredis.Redis.from_url(redis_url, socket_timeout=10)
        self._cursor = f"redis:{AUDIT_STREAM}"

    async def poll_once(self, block_ms: int | None = None) -> int:
        position = await asyncio.to_thread(cursor_of, self.db, self._cursor) or "0-0"
        answer: Any = await self._redis.xread({AUDIT_STREAM: position}, count=self.batch, block=block_ms)
        entries = answer[0][1] if answer else []
        if not entries:
            return 0
        records = [json.loads(fields[b"record"]) for _, fields in entries]
        last = entries[-1][0]
        return await asyncio.to_thread(store_records, self.db, records,
                                       (self._cursor, last.decode() if isinstance(last, bytes) else str(last)))

    async def run(self, pause_s: float = 0.5) -> None:
        last_prune = 0.0
        while True:
            try:
                added = await self.poll_once(block_ms=int(pause_s * 1000))
                if time.monotonic() - last_prune > 600:
                    await asyncio.to_thread(prune, self.db, self.retention_days)
                    last_prune = time.monotonic()
                if added == 0:
                    await asyncio.sleep(0)
            except (RedisError, OSError) as exc:
                log.warning("console: cannot read the audit stream", extra={"error": str(exc)})
                await asyncio.sleep(pause_s * 4)

    async def aclose(self) -> None:
        await self._redis.aclose()


class MemoryIngester:
    """Takes each record the in-process store keeps as it is appended, and writes them in batches off the event loop."""

    def __init__(self, db: Database, store: MemoryStore, retention_days: float, limit: int = 100_000) -> None:
        self.db, self.retention_days = db, retention_days
        self._pending: deque[dict[str, Any]] = deque(maxlen=limit)
        self._store = store
        store.audit_listeners.append(self._pending.append)

    async def flush(self) -> int:
        records = [self._pending.popleft() for _ in range(len(self._pending))]
        return await asyncio.to_thread(store_records, self.db, records) if records else 0

    async def run(self, pause_s: float = 0.5) -> None:
        last_prune = 0.0
        while True:
            await self.flush()
            if time.monotonic() - last_prune > 600:
                await asyncio.to_thread(prune, self.db, self.retention_days)
                last_prune = time.monotonic()
            await asyncio.sleep(pause_s)

    async def aclose(self) -> None:
        if self._pending.append in self._store.audit_listeners:
            self._store.audit_listeners.remove(self._pending.append)
        await self.flush()
