"""The console's database on SQLite and PostgreSQL: migrations, ingestion, filters, reviews, export and retention."""

from __future__ import annotations

import json
import time

import pytest
from sqlalchemy import func, inspect, select

from app.console.db import Database, iter_reviewed
from app.console.export import reviewed_lines
from app.console.ingest import prune, store_records
from app.console.queries import Filters, decisions_page, per_rule, rates_over_time
from app.console.reviews import ReviewError, record_review, tally
from app.console.schema import DecisionRow, DetailRow
from tests.console.records import audit_record

NOW = 1_800_000_000.0


@pytest.fixture
def db(db_url: str):  # type: ignore[no-untyped-def]
    database = Database(db_url)
    yield database
    database.dispose()


def _id_of(db: Database, request_id: str) -> int:
    with db.session() as session:
        found = session.scalar(select(DecisionRow.id).where(DecisionRow.request_id == request_id))
    assert found is not None
    return found


def test_migrations_create_the_tables_and_run_twice(db: Database) -> None:
    Database(db.url).dispose()  # a second start migrates nothing and fails on nothing
    tables = set(inspect(db.engine).get_table_names())
    assert {"decisions", "decision_details", "reviews", "review_marks", "ingest_cursors", "alembic_version"} <= tables


def test_records_are_stored_once_and_texts_only_where_kept(db: Database) -> None:
    records = [audit_record(i, NOW + i, texts=i % 2 == 0) for i in range(10)]
    assert store_records(db, records) == 10
    assert store_records(db, records) == 0  # the same stream read again after a restart adds nothing
    with db.session() as session:
        rows = {r.request_id: r for r in session.scalars(select(DecisionRow))}
    assert rows["req-0000000"].detail.reply is not None and rows["req-0000000"].detail.messages is not None
    assert rows["req-0000001"].detail.reply is None and rows["req-0000001"].detail.messages is None
    assert [rows[f"req-{i:07d}"].has_texts for i in range(3)] == [True, False, True]
    # The stored record itself never carries the texts.
    assert all("messages" not in r.detail.record and "reply" not in r.detail.record for r in rows.values())


def test_a_long_list_is_counted_up_to_the_cap_and_pages_on_past_it(db: Database, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from app.console import queries

    monkeypatch.setattr(queries, "COUNT_CAP", 100)
    store_records(db, [audit_record(i, NOW + i) for i in range(130)])
    with db.session() as session:
        first = decisions_page(session, Filters(), size=50)
        assert (first.total, first.more, first.pages) == (100, True, 2)
        past = decisions_page(session, Filters(page=3), size=50)  # beyond the counted pages: still served
        assert past.number == 3 and [r.ts for r in past.rows] == [NOW + i for i in range(29, -1, -1)]
        few = decisions_page(session, Filters(page=9), size=500)
        assert (few.total, few.more) == (100, True)
    monkeypatch.setattr(queries, "COUNT_CAP", 130)
    with db.session() as session:
        exact = decisions_page(session, Filters(page=9), size=50)
        assert (exact.total, exact.more, exact.number) == (130, False, 3)


def test_filters_and_paging(db: Database) -> None:
    records = [audit_record(i, NOW + i, tenant="acme" if i % 3 == 0 else "globex") for i in range(120)]
    records.append(audit_record(500, NOW + 500, mode="shadow", rule=("pacification", "regenerate", "repaired"),
                                flags=["pacification"]))
    store_records(db, records)
    with db.session() as session:
        page = decisions_page(session, Filters(), size=50)
        assert (page.total, page.pages, page.number, len(page.rows)) == (121, 3, 1, 50)
        assert page.rows[0].ts == NOW + 500  # newest first
        last = decisions_page(session, Filters(page=9), size=50)
        assert last.number == 3 and len(last.rows) == 21
        acme = decisions_page(session, Filters(tenant="acme"), size=500)
        assert acme.total == 40 and {r.tenant for r in acme.rows} == {"acme"}
        repaired = decisions_page(session, Filters(action="regenerate", rule="pacification"), size=500)
        assert repaired.total == sum(1 for r in records if r["rule"] == "pacification")
        flagged = decisions_page(session, Filters(label="pacification"), size=500)
        assert flagged.total == sum(1 for r in records if "pacification" in r["flags"])
        assert decisions_page(session, Filters(would_change="yes")).total == 1
        window = decisions_page(session, Filters(since=str(NOW + 10), until=str(NOW + 20)), size=500)
        assert window.total == 10
        iso = decisions_page(session, Filters(since="2027-01-15T08:00:10", until="2027-01-15T08:00:20"), size=500)
        assert iso.total == 10  # NOW is 2027-01-15T08:00:00Z; a datetime-local value is read as UTC
        with pytest.raises(ValueError, match="neither an ISO"):
            decisions_page(session, Filters(since="yesterday"))


def test_rates_over_time_and_per_rule(db: Database) -> None:
    # 4 hours, 10 decisions an hour; every second one acted on.
    records = [audit_record(i, NOW + (i // 10) * 3600 + i, rule=("r", "regenerate", "repaired") if i % 2 else None,
                            flags=["pacification"] if i % 5 == 0 else []) for i in range(40)]
    store_records(db, records[:25])
    store_records(db, records)  # the hourly counts add only what is new
    acted = sum(1 for r in records if r["action"] != "allow")
    with db.session() as session:
        # From the hourly counts (no label or review filter), and from the decisions themselves: the same figures.
        for filters in (Filters(), Filters(reviewed="no")):
            buckets = rates_over_time(session, filters, NOW, NOW + 4 * 3600, buckets=4)
            rules = {(r, a): n for r, a, n in per_rule(session, filters, NOW, NOW + 4 * 3600)}
            assert [b.total for b in buckets] == [10, 10, 10, 10]
            assert [b.flagged for b in buckets] == [2, 2, 2, 2]
            assert sum(b.acted for b in buckets) == acted
            assert rules[("r", "regenerate")] == 20
        only_r = rates_over_time(session, Filters(rule="r", tenant="default"), NOW, NOW + 4 * 3600, buckets=2)
        assert [b.total for b in only_r] == [10, 10] and only_r[1].start == NOW + 2 * 3600
        assert rates_over_time(session, Filters(label="pacification"), NOW, NOW + 4 * 3600, buckets=4)[0].total == 2


def test_review_export_labels_follow_the_marks(db: Database) -> None:
    store_records(db, [audit_record(1, NOW, flags=["pacification", "distress"]), audit_record(2, NOW + 1, texts=False)])
    first = _id_of(db, "req-0000001")
    record_review(db, first, "rita", {"pacification": "false_flag", "distress": "correct", "rushed_advice": "missed",
                                      "crisis": "correct"}, "soothing was apt here")
    lines = list(reviewed_lines(db))
    assert len(lines) == 1
    line = lines[0]
    assert line["labels"] == {"pacification": 0, "distress": 1, "rushed_advice": 1, "crisis": 0}
    assert line["review"]["reviewer"] == "rita" and line["review"]["note"] == "soothing was apt here"
    assert line["review"]["marks"]["pacification"] == "false_flag"
    assert line["id"] == "req-0000001" and line["messages"][0]["role"] == "user" and line["reply"].startswith("Don't")
    assert line["flags"] == ["pacification", "distress"] and line["policy"] == "default"
    assert {"scores", "context", "policy_revision", "rule", "action", "tenant", "ts"} <= line.keys()
    json.dumps(line)  # one JSON line

    # A later review supersedes the earlier; the tally counts current reviews only.
    record_review(db, first, "sam", {"pacification": "correct"})
    assert [ln["labels"] for ln in iter_reviewed(db.url)] == [{"pacification": 1}]
    counts = tally(db)
    assert counts["pacification"] == {"correct": 1, "false_flag": 0, "missed": 0}
    assert counts["rushed_advice"]["missed"] == 0

    # Without kept texts the line has no messages or reply; --with-texts-only leaves it out.
    second = _id_of(db, "req-0000002")
    record_review(db, second, "rita", {"pacification": "correct"})
    lines = list(reviewed_lines(db))
    assert "messages" not in lines[1] and "reply" not in lines[1]
    assert [ln["id"] for ln in reviewed_lines(db, with_texts_only=True)] == ["req-0000001"]


@pytest.mark.parametrize(("marks", "problem"), [
    ({"pacification": "false_flag"}, "needs a flagged label"),
    ({"distress": "missed"}, "'missed' is for a label that was not flagged"),
    ({"happiness": "correct"}, "unknown label 'happiness'"),
    ({"pacification": "wrong"}, "is not one of correct, false_flag, missed"),
    ({}, "at least one label"),
])
def test_impossible_marks_are_refused_with_the_reason(db: Database, marks: dict[str, str], problem: str) -> None:
    store_records(db, [audit_record(1, NOW, flags=["distress"])])
    with pytest.raises(ReviewError, match=problem):
        record_review(db, _id_of(db, "req-0000001"), "rita", marks)
    assert list(reviewed_lines(db)) == []


def test_retention_removes_old_decisions_and_their_reviews(db: Database) -> None:
    old = audit_record(1, NOW - 100 * 86400, flags=["pacification"])
    short = audit_record(2, NOW - 2 * 86400) | {"retain_until": NOW - 86400}  # the policy's retention_days: 1
    fresh = audit_record(3, NOW - 3600)
    store_records(db, [old, short, fresh])
    record_review(db, _id_of(db, "req-0000001"), "rita", {"pacification": "correct"})
    assert prune(db, retention_days=90, now=NOW) == 2
    with db.session() as session:
        assert [r.request_id for r in session.scalars(select(DecisionRow))] == ["req-0000003"]
    assert list(reviewed_lines(db)) == []
    assert tally(db)["pacification"]["correct"] == 0
    with db.session() as session:  # the details went with their decisions
        assert session.scalar(select(func.count()).select_from(DetailRow)) == 1


def test_time_is_now_for_records_without_one(db: Database) -> None:
    record = audit_record(1, NOW)
    del record["ts"]
    store_records(db, [record])
    with db.session() as session:
        row = session.scalar(select(DecisionRow))
    assert row is not None and abs(row.ts - time.time()) < 60


def test_the_label_a_rule_acted_on_counts_as_flagged_for_review(db: Database) -> None:
    # The policy repaired for epistemic sycophancy below the model's threshold: no model flag, but the guard acted.
    store_records(db, [audit_record(1, NOW, flags=[]) | {"rule_label": "sycophancy_epistemic"}])
    decision = _id_of(db, "req-0000001")
    with pytest.raises(ReviewError, match="'missed' is for a label that was not flagged"):
        record_review(db, decision, "rita", {"sycophancy": "missed"})
    record_review(db, decision, "rita", {"sycophancy": "false_flag", "pacification": "correct"})
    (line,) = reviewed_lines(db)
    assert line["labels"] == {"pacification": 0, "sycophancy": 0} and line["flags"] == []
    record_review(db, decision, "sam", {"sycophancy": "correct"})
    assert next(iter(reviewed_lines(db)))["labels"] == {"sycophancy": 1}
