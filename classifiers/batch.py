"""The batch-scoring contract: JSONL in ({id, messages, reply}), JSONL out ({id, scores, context, flags}), in input order.

Every line is validated before anything is scored or written; a bad line stops the run with its line number.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from classifiers.inputs import ConversationError, view_of
from classifiers.runtime import SCORE_LABELS, Scorer

BATCH = 64


class InputLineError(ValueError):
    def __init__(self, line: int, problem: str) -> None:
        super().__init__(f"line {line}: {problem}")
        self.line, self.problem = line, problem


@dataclass(frozen=True)
class ScoringItem:
    id: Any
    messages: list[dict[str, Any]]
    reply: str


def parse_line(text: str, number: int) -> ScoringItem:
    text = text.lstrip("\ufeff").rstrip("\r\n")
    try:
        row = json.loads(text)
    except json.JSONDecodeError as exc:
        # The column counts characters of this line from 1 (a byte-order mark or CR is not counted as text).
        raise InputLineError(number, f"not valid JSON ({exc.msg} at column {exc.colno}, character {exc.pos + 1} of the "
                                     f"line)") from exc
    if not isinstance(row, dict):
        raise InputLineError(number, "expected a JSON object")
    for name in ("id", "messages", "reply"):
        if name not in row:
            raise InputLineError(number, f"missing field {name!r}")
    if not isinstance(row["messages"], list):
        raise InputLineError(number, "'messages' must be a list of chat messages")
    if not isinstance(row["reply"], str):
        raise InputLineError(number, "'reply' must be a string")
    try:
        view_of(row["messages"])
    except ConversationError as exc:
        raise InputLineError(number, f"messages: {exc}") from exc
    return ScoringItem(row["id"], row["messages"], row["reply"])


def read_items(stream: IO[str]) -> list[ScoringItem]:
    items = []
    for number, text in enumerate(stream, start=1):
        if text.strip():
            items.append(parse_line(text, number))
    return items


def score_items(scorer: Scorer, items: list[ScoringItem]) -> Iterator[dict[str, Any]]:
    for start in range(0, len(items), BATCH):
        chunk = items[start : start + BATCH]
        for item, scores in zip(chunk, scorer.score_many([(i.messages, i.reply) for i in chunk]), strict=True):
            yield {
                "id": item.id,
                "scores": {name: round(scores.reply[name], 6) for name in SCORE_LABELS},
                "context": {name: round(value, 6) for name, value in scores.context.items()},
                "flags": scores.flags,
            }
