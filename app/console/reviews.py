"""Reviews: a reviewer marks each label of a decision correct, false flag or missed, with a note; every review is
attributed and a later one supersedes the earlier (the history stays)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import func, select, update

from app.console.db import Database
from app.console.schema import DecisionRow, MarkRow, ReviewRow
from classifiers.labels import CONTEXT_SIGNALS, HEADLINE_SCORES, LABELS

REVIEW_LABELS = HEADLINE_SCORES + CONTEXT_SIGNALS
MARKS = ("correct", "false_flag", "missed")


class ReviewError(ValueError):
    """A review that cannot be stored as given: says which label and why."""


def review_label(label: str) -> str:
    """The reviewed label a rule's corrective label belongs to (a kind of sycophancy counts as sycophancy)."""
    return next((parent.name for parent in LABELS if label in parent.combines), label)


def flags_of_row(row: DecisionRow) -> set[str]:
    """What a reviewer judges as flagged: the model's flags, and the label the deciding rule acted on (a policy may act
    below the model's threshold; then the guard treated the label as present all the same)."""
    flagged = {f for f in row.flags.split(",") if f}
    return flagged | {row.acted_on} if row.acted_on else flagged


def label_value(mark: str, flagged: bool) -> int:
    """The label a mark means: a correct flag or a missed one is a positive; a false flag or a correct non-flag is not."""
    if mark == "missed":
        return 1
    if mark == "false_flag":
        return 0
    return 1 if flagged else 0


def check_marks(marks: dict[str, str], flags: set[str]) -> None:
    for label, mark in marks.items():
        if label not in REVIEW_LABELS:
            raise ReviewError(f"unknown label {label!r}; labels: {', '.join(REVIEW_LABELS)}")
        if mark not in MARKS:
            raise ReviewError(f"label {label}: mark {mark!r} is not one of {', '.join(MARKS)}")
        if mark == "false_flag" and label not in flags:
            raise ReviewError(f"label {label}: 'false_flag' needs a flagged label, and {label} was not flagged "
                              "(mark it 'correct' or 'missed')")
        if mark == "missed" and label in flags:
            raise ReviewError(f"label {label}: 'missed' is for a label that was not flagged, and {label} was "
                              "(mark it 'correct' or 'false_flag')")


@dataclass(frozen=True)
class StoredReview:
    id: int
    decision_id: int
    reviewer: str
    ts: float


def record_review(db: Database, decision_id: int, reviewer: str, marks: dict[str, str], note: str = "") -> StoredReview:
    if not reviewer:
        raise ReviewError("a review needs a reviewer")
    if not marks:
        raise ReviewError("a review needs at least one label marked")
    with db.session() as session, session.begin():
        decision = session.get(DecisionRow, decision_id, with_for_update=db.backend == "postgresql")
        if decision is None:
            raise ReviewError(f"no decision {decision_id}")
        flags = flags_of_row(decision)
        check_marks(marks, flags)
        session.execute(update(ReviewRow).where(ReviewRow.decision_id == decision_id, ReviewRow.current.is_(True))
                        .values(current=False))
        review = ReviewRow(decision_id=decision_id, reviewer=reviewer, ts=time.time(), note=note[:4000], current=True)
        session.add(review)
        session.flush()
        session.add_all(MarkRow(review_id=review.id, label=label, mark=mark, flagged=label in flags)
                        for label, mark in marks.items())
        decision.reviewed = True
        return StoredReview(review.id, decision_id, reviewer, review.ts)


def current_review(db: Database, decision_id: int) -> tuple[ReviewRow, dict[str, str]] | None:
    with db.session() as session:
        review = session.scalar(select(ReviewRow).where(ReviewRow.decision_id == decision_id, ReviewRow.current.is_(True)))
        if review is None:
            return None
        found = session.execute(select(MarkRow.label, MarkRow.mark).where(MarkRow.review_id == review.id))
        marks = {label: mark for label, mark in found}
        return review, marks


def review_history(db: Database, decision_id: int) -> list[ReviewRow]:
    with db.session() as session:
        return list(session.scalars(select(ReviewRow).where(ReviewRow.decision_id == decision_id)
                                    .order_by(ReviewRow.ts.desc())))


def tally(db: Database) -> dict[str, dict[str, int]]:
    """Per label, how many current reviews marked it correct, false_flag or missed."""
    counts: dict[str, dict[str, int]] = {label: dict.fromkeys(MARKS, 0) for label in REVIEW_LABELS}
    with db.session() as session:
        rows = session.execute(select(MarkRow.label, MarkRow.mark, func.count()).join(ReviewRow)
                               .where(ReviewRow.current.is_(True)).group_by(MarkRow.label, MarkRow.mark))
        for label, mark, count in rows:
            counts.setdefault(label, dict.fromkeys(MARKS, 0))[mark] = count
    return counts
