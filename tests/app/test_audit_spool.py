"""The on-disk audit spool on its own: order across reopening, both bounds, and one slot per live process."""

from __future__ import annotations

import json
import sqlite3

import pytest

from app.audit_spool import AuditSpool, SpoolFull


def test_records_come_back_oldest_first_after_reopening(tmp_path) -> None:
    spool = AuditSpool(tmp_path, max_records=100, max_bytes=1_000_000)
    for n in range(5):
        spool.append({"n": n, "text": "é"}, review=n == 3)
    spool.close()
    reopened = AuditSpool(tmp_path, max_records=100, max_bytes=1_000_000)
    assert reopened.path == spool.path and reopened.records == 5
    batch = reopened.oldest(3)
    assert [json.loads(r.record)["n"] for r in batch] == [0, 1, 2]
    reopened.remove_through(batch)
    rest = reopened.oldest(10)
    assert [(json.loads(r.record)["n"], r.review) for r in rest] == [(3, True), (4, False)]
    reopened.remove_through(rest)
    assert (reopened.records, reopened.bytes) == (0, 0)
    reopened.close()


@pytest.mark.parametrize(("max_records", "max_bytes"), [(2, 1_000_000), (100, 2 * len(json.dumps({"n": 0})))])
def test_a_record_past_either_bound_is_refused(tmp_path, max_records, max_bytes) -> None:
    spool = AuditSpool(tmp_path, max_records=max_records, max_bytes=max_bytes)
    spool.append({"n": 0}, review=False)
    spool.append({"n": 1}, review=False)
    with pytest.raises(SpoolFull):
        spool.append({"n": 2}, review=False)
    assert spool.records == 2
    spool.close()


def test_bytes_are_counted_as_written(tmp_path) -> None:
    spool = AuditSpool(tmp_path, max_records=10, max_bytes=10_000)
    spool.append({"text": "ünïcode ✓"}, review=False)
    on_disk = sqlite3.connect(spool.path).execute("SELECT SUM(LENGTH(CAST(record AS BLOB))) FROM spool").fetchone()[0]
    assert spool.bytes == on_disk
    spool.close()


def test_each_live_spool_has_its_own_slot_and_a_freed_slot_is_reused(tmp_path) -> None:
    first = AuditSpool(tmp_path, 10, 10_000)
    second = AuditSpool(tmp_path, 10, 10_000)
    assert first.path != second.path
    first.append({"left": "behind"}, review=False)
    first.close()
    third = AuditSpool(tmp_path, 10, 10_000)  # takes the freed slot, with the record its predecessor left
    assert third.path == first.path and third.records == 1
    second.close()
    third.close()


def test_an_emptied_spool_gives_its_disk_back(tmp_path) -> None:
    spool = AuditSpool(tmp_path, max_records=10_000, max_bytes=10_000_000)
    for n in range(2_000):
        spool.append({"n": n, "pad": "x" * 1_000}, review=False)
    assert sum(f.stat().st_size for f in tmp_path.glob("slot-0.sqlite3*")) > 2_000_000
    while spool.records:
        spool.remove_through(spool.oldest(100))
    assert sum(f.stat().st_size for f in tmp_path.glob("slot-0.sqlite3*")) < 200_000
    spool.close()
