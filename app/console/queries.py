"""What the pages ask of the database: filtered, paged decisions; the values each filter offers; rates over time."""

from __future__ import annotations

import time
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import Integer, and_, case, func, select
from sqlalchemy.orm import Session

from app.console.schema import DecisionRow, HourRow

PAGE_SIZE = 50
FACETS = ("policy", "rule", "action", "outcome", "tenant")


def parse_time(value: str | None) -> float | None:
    """An ISO date or date-time (UTC where no zone is given, as a datetime-local field sends), or epoch seconds."""
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"time {value!r} is neither an ISO date-time nor epoch seconds") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


@dataclass(frozen=True)
class Filters:
    policy: str = ""
    rule: str = ""
    action: str = ""
    outcome: str = ""
    tenant: str = ""
    label: str = ""
    since: str = ""
    until: str = ""
    would_change: str = ""  # "yes": shadow-mode decisions whose repair was not returned
    reviewed: str = ""  # "yes" / "no"
    page: int = 1

    @classmethod
    def from_query(cls, query: dict[str, str]) -> Filters:
        values: dict[str, Any] = {f.name: query.get(f.name, "").strip()[:200] for f in fields(cls) if f.name != "page"}
        try:
            page = max(1, int(query.get("page", "1") or 1))
        except ValueError:
            page = 1
        return cls(**values, page=page)

    def query_string(self, **changes: Any) -> str:
        chosen = replace(self, **changes)
        return urlencode({f.name: getattr(chosen, f.name) for f in fields(chosen)
                          if getattr(chosen, f.name) not in ("", 1) or (f.name == "page" and chosen.page > 1)})

    def where(self) -> list[Any]:
        clauses: list[Any] = [getattr(DecisionRow, name) == getattr(self, name) for name in FACETS if getattr(self, name)]
        if self.label:
            clauses.append(DecisionRow.flags.like(f"%,{self.label},%"))
        since, until = parse_time(self.since), parse_time(self.until)
        if since is not None:
            clauses.append(DecisionRow.ts >= since)
        if until is not None:
            clauses.append(DecisionRow.ts < until)
        if self.would_change == "yes":
            clauses.append(DecisionRow.would_change.is_(True))
        if self.reviewed in ("yes", "no"):
            clauses.append(DecisionRow.reviewed.is_(self.reviewed == "yes"))
        return clauses


# A list counts at most this many matches: counting every one of 100,000 filtered decisions took longer than the page's
# 200 ms budget, and past 200 pages the number is not what a reviewer reads. Past it the page says "10000+".
COUNT_CAP = 10_000


@dataclass(frozen=True)
class Page:
    rows: list[DecisionRow]
    total: int  # at most COUNT_CAP
    number: int
    pages: int  # of `total`; more follow when `more`
    more: bool = False  # more than COUNT_CAP decisions match


def _filtered(statement: Any, filters: Filters) -> Any:  # any Select: its row type stays the caller's
    clauses = filters.where()
    return statement.where(and_(*clauses)) if clauses else statement


def decisions_page(session: Session, filters: Filters, size: int = PAGE_SIZE) -> Page:
    matching = _filtered(select(DecisionRow.id), filters).limit(COUNT_CAP + 1).subquery()
    counted = session.scalar(select(func.count()).select_from(matching)) or 0
    total, more = min(counted, COUNT_CAP), counted > COUNT_CAP
    pages = max(1, -(-total // size))
    number = filters.page if more else min(filters.page, pages)
    # Only the list's columns: the stored record and texts stay in the database until a decision is opened.
    columns = (DecisionRow.id, DecisionRow.ts, DecisionRow.policy, DecisionRow.rule, DecisionRow.action,
               DecisionRow.outcome, DecisionRow.tenant, DecisionRow.flags, DecisionRow.would_change,
               DecisionRow.reviewed, DecisionRow.mode)
    statement = _filtered(select(*columns), filters).order_by(DecisionRow.ts.desc(), DecisionRow.id.desc())
    rows = session.execute(statement.offset((number - 1) * size).limit(size)).all()
    return Page([row for row in rows], total, number, pages, more)  # type: ignore[misc]


def facet_values(session: Session, recent: int = 5000) -> dict[str, list[str]]:
    """The values each filter menu offers: those of the newest `recent` decisions (read from the time index alone)."""
    newest = select(*(getattr(DecisionRow, name) for name in FACETS)).order_by(DecisionRow.ts.desc()).limit(recent)
    seen: dict[str, set[str]] = {name: set() for name in FACETS}
    for row in session.execute(newest):
        for name, value in zip(FACETS, row, strict=True):
            if value:
                seen[name].add(value)
    return {name: sorted(values)[:200] for name, values in seen.items()}


@dataclass(frozen=True)
class Bucket:
    start: float
    total: int
    flagged: int
    acted: int


def _hourly(filters: Filters) -> list[Any] | None:
    """The filters as conditions on the hourly counts, or None where those counts cannot answer (a flagged label, the
    review state)."""
    if filters.label or filters.reviewed:
        return None
    clauses: list[Any] = [getattr(HourRow, name) == getattr(filters, name) for name in FACETS if getattr(filters, name)]
    if filters.would_change == "yes":
        clauses.append(HourRow.would_change.is_(True))
    return clauses


def rates_over_time(session: Session, filters: Filters, since: float, until: float, buckets: int = 24) -> list[Bucket]:
    """Decisions, flagged ones and acted-on ones (any action but allow) per time bucket: from the hourly counts (whole
    hours) where the filters allow, else from the decisions themselves."""
    hourly = _hourly(filters)
    if hourly is not None:
        first, last = int(since // 3600), -int(-until // 3600)
        per = max(1, -(-(last - first) // buckets))
        statement = (select(HourRow.hour, func.sum(HourRow.decisions), func.sum(HourRow.flagged), func.sum(HourRow.acted))
                     .where(HourRow.hour >= first, HourRow.hour < last, *hourly).group_by(HourRow.hour))
        sums: dict[int, list[int]] = {}
        for hour, n, f, a in session.execute(statement):
            entry = sums.setdefault((int(hour) - first) // per, [0, 0, 0])
            for i, value in enumerate((n, f, a)):
                entry[i] += int(value or 0)
        count = -(-(last - first) // per)
        return [Bucket(float((first + i * per) * 3600), *sums.get(i, [0, 0, 0])) for i in range(count)]
    width = max(1.0, (until - since) / buckets)
    offset = (DecisionRow.ts - since) / width
    # SQLite's CAST truncates; PostgreSQL's rounds, so it floors first.
    postgres = session.get_bind().dialect.name == "postgresql"
    index = func.cast(func.floor(offset) if postgres else offset, Integer())
    statement = _filtered(select(index, func.count(), func.sum(case((DecisionRow.flagged.is_(True), 1), else_=0)),
                                 func.sum(case((DecisionRow.action != "allow", 1), else_=0)))
                          .where(DecisionRow.ts >= since, DecisionRow.ts < until), filters).group_by(index)
    found = {int(i): (int(n), int(f or 0), int(a or 0)) for i, n, f, a in session.execute(statement)}
    return [Bucket(since + i * width, *found.get(i, (0, 0, 0))) for i in range(buckets)]


def per_rule(session: Session, filters: Filters, since: float, until: float) -> list[tuple[str, str, int]]:
    """(rule, action, decisions) in the window, most frequent first."""
    hourly = _hourly(filters)
    if hourly is not None:
        total = func.sum(HourRow.decisions)
        statement = (select(HourRow.rule, HourRow.action, total)
                     .where(HourRow.hour >= int(since // 3600), HourRow.hour < -int(-until // 3600), *hourly)
                     .group_by(HourRow.rule, HourRow.action).order_by(total.desc()).limit(30))
        return [(r, a, int(n)) for r, a, n in session.execute(statement)]
    statement = _filtered(select(DecisionRow.rule, DecisionRow.action, func.count())
                          .where(DecisionRow.ts >= since, DecisionRow.ts < until), filters)
    statement = statement.group_by(DecisionRow.rule, DecisionRow.action).order_by(func.count().desc()).limit(30)
    return [(r, a, int(n)) for r, a, n in session.execute(statement)]
