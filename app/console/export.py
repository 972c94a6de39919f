"""Reviewed decisions as labelled JSON lines: the batch-scoring contract ({id, messages, reply}) plus the decision and
its review, so `heedful score`, `heedful replay`, `heedful calibrate` and `heedful train-heads` read them directly.

One line per reviewed decision (its current review):
{"id", "messages", "reply", "scores", "context", "flags", "policy", "policy_revision", "rule", "action", "tenant",
 "model", "ts", "labels": {label: 0|1}, "review": {"reviewer", "ts", "note", "marks": {label: mark}}}
`messages` and `reply` appear only where the policy kept texts (spec.audit.include_texts). docs/review-console.md.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import IO, Any

from sqlalchemy import select

from app.console.db import Database
from app.console.reviews import label_value
from app.console.schema import DecisionRow, MarkRow, ReviewRow

_PAGE = 500


def export_line(decision: DecisionRow, review: ReviewRow, marks: list[MarkRow]) -> dict[str, Any]:
    detail = decision.detail
    record = detail.record
    line: dict[str, Any] = {"id": decision.request_id}
    if detail.messages is not None and detail.reply is not None:
        line["messages"] = detail.messages
        line["reply"] = detail.reply
    line |= {
        "scores": record.get("scores") or {}, "context": record.get("context") or {},
        "flags": [f for f in decision.flags.split(",") if f], "policy": decision.policy,
        "policy_revision": decision.policy_revision, "rule": decision.rule, "action": decision.action,
        "tenant": decision.tenant, "model": decision.model, "ts": decision.ts,
        **({"choice": record["choice"]} if "choice" in record else {}),
        "labels": {m.label: label_value(m.mark, m.flagged) for m in marks},
        "review": {"reviewer": review.reviewer, "ts": review.ts, "note": review.note,
                   "marks": {m.label: m.mark for m in marks}},
    }
    return line


def reviewed_lines(db: Database, with_texts_only: bool = False) -> Iterator[dict[str, Any]]:
    """Every decision's current review, oldest decision first, read a page at a time (memory stays flat)."""
    after = 0
    while True:
        with db.session() as session:
            query = (select(DecisionRow, ReviewRow).join(ReviewRow, ReviewRow.decision_id == DecisionRow.id)
                     .where(ReviewRow.current.is_(True), DecisionRow.id > after).order_by(DecisionRow.id).limit(_PAGE))
            if with_texts_only:
                query = query.where(DecisionRow.has_texts.is_(True))
            page = list(session.execute(query))
            if not page:
                return
            review_ids = [review.id for _, review in page]
            marks: dict[int, list[MarkRow]] = {}
            for mark in session.scalars(select(MarkRow).where(MarkRow.review_id.in_(review_ids))
                                        .order_by(MarkRow.label)):
                marks.setdefault(mark.review_id, []).append(mark)
            lines = [export_line(decision, review, marks.get(review.id, [])) for decision, review in page]
        yield from lines
        after = page[-1][0].id


def write_export(db: Database, out: IO[str], with_texts_only: bool = False) -> int:
    written = 0
    for line in reviewed_lines(db, with_texts_only):
        out.write(json.dumps(line, ensure_ascii=False) + "\n")
        written += 1
    return written
