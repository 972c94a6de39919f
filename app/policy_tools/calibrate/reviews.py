"""Reading reviewed decisions (the `heedful review export` lines) and a shadow sample (`heedful score` output lines).

A reviewed decision: {"id", "scores", "context", "flags", "policy", "policy_revision", "rule", "action", "tenant", "ts",
"labels": {"<label>": 0|1}, "review": {...}} and, where the policy kept texts, "messages" and "reply". Only what calibration
needs is kept; a line that lacks it stops the read with its file and line.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any



class ReviewsError(ValueError):
    """A line of an input file that calibration cannot use: says which file, which line and what is wrong."""


@dataclass(frozen=True)
class Decision:
    """One decision as calibration sees it: the scores a policy saw, the request facts, and what reviewers said."""

    id: Any
    scores: dict[str, float]
    context: dict[str, float]
    flags: tuple[str, ...]
    labels: dict[str, int] = field(default_factory=dict)
    policy: str = ""
    revision: str = ""
    tenant: str = ""
    model: str = ""
    turns: int = 1

    def score(self, name: str) -> float | None:
        """The reply score or context signal called name (None when the record does not carry it)."""
        value = self.scores.get(name)
        return self.context.get(name) if value is None else value


def _numbers(row: dict[str, Any], key: str, where: str) -> dict[str, float]:
    value = row.get(key)
    if not isinstance(value, dict):
        raise ReviewsError(f"{where}: {key!r} must be an object of scores (got {type(value).__name__})")
    out = {}
    for name, number in value.items():
        if isinstance(number, bool) or not isinstance(number, int | float):
            raise ReviewsError(f"{where}: {key}.{name} must be a number (got {number!r})")
        out[str(name)] = float(number)
    return out


def _labels(row: dict[str, Any], where: str) -> dict[str, int]:
    value = row.get("labels")
    if not isinstance(value, dict):
        raise ReviewsError(f"{where}: 'labels' must be an object of label -> 0 or 1 (a reviewed decision; is this a "
                           f"`heedful review export` file?)")
    out = {}
    for name, flag in value.items():
        if flag not in (0, 1) or isinstance(flag, float):
            raise ReviewsError(f"{where}: labels.{name} must be 0 or 1 (got {flag!r})")
        out[str(name)] = int(flag)
    return out


def parse_decision(row: Any, where: str, reviewed: bool) -> Decision:
    if not isinstance(row, dict):
        raise ReviewsError(f"{where}: expected a JSON object")
    if "scores" not in row or row["scores"] is None:
        raise ReviewsError(f"{where}: no 'scores' (the decision was not scored: a failed guard has nothing to calibrate)")
    messages = row.get("messages")
    turns = sum(1 for m in messages if isinstance(m, dict) and m.get("role") == "user") if isinstance(messages, list) else 1
    return Decision(
        id=row.get("id", row.get("request_id")),
        scores=_numbers(row, "scores", where),
        context=_numbers(row, "context", where),
        flags=tuple(str(f) for f in row.get("flags") or ()),
        labels=_labels(row, where) if reviewed else {},
        policy=str(row.get("policy") or ""),
        revision=str(row.get("policy_revision") or ""),
        tenant=str(row.get("tenant") or ""),
        model=str(row.get("model") or ""),
        turns=max(turns, 1),
    )


def parse_lines(lines: Iterable[str], source: str, reviewed: bool) -> Iterator[Decision]:
    for number, text in enumerate(lines, start=1):
        text = text.lstrip("\ufeff").strip()
        if not text:
            continue
        where = f"{source}:{number}"
        try:
            row = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ReviewsError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from exc
        yield parse_decision(row, where, reviewed)


def read_reviews(path: Path) -> list[Decision]:
    """Reviewed decisions from an export file."""
    return _read(path, reviewed=True)


def read_shadow(path: Path) -> list[Decision]:
    """An unreviewed traffic sample: `heedful score` output lines (or audit records), for rates as traffic sees them."""
    return _read(path, reviewed=False)


def _read(path: Path, reviewed: bool) -> list[Decision]:
    try:
        with path.open(encoding="utf-8") as stream:
            return list(parse_lines(stream, str(path), reviewed))
    except (OSError, UnicodeDecodeError) as exc:
        raise ReviewsError(f"cannot read {path}: {exc}") from exc


def reviews_in_database(db_url: str) -> list[Decision]:
    """Reviewed decisions straight from the review console's database (the same lines `heedful review export` writes)."""
    from app.console.db import iter_reviewed

    try:
        return [parse_decision(row, f"{db_url}: decision {row.get('id')}", True) for row in iter_reviewed(db_url)]
    except ReviewsError:
        raise
    except Exception as exc:  # SQLAlchemy's errors name the database problem; the URL is the user's own
        raise ReviewsError(f"cannot read reviews from {db_url}: {type(exc).__name__}: {exc}") from exc
