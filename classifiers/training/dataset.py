"""Load, validate and split the project's own labelled data (classifiers/data)."""

from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from classifiers.features import CONTEXT_LABELS, REPLY_LABELS
from classifiers.inputs import view_of

DATA_DIR = Path(__file__).resolve().parents[1] / "data"
ALL_LABELS = REPLY_LABELS + CONTEXT_LABELS


@dataclass(frozen=True)
class Example:
    id: str
    messages: list[dict[str, Any]]
    reply: str
    labels: dict[str, int]
    kind: str
    source: str
    meta: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def group(self) -> str:
        """Minimal pairs share a conversation; they must land in the same split."""
        return hashlib.sha1(json.dumps(self.messages, sort_keys=True).encode()).hexdigest()


class DataError(ValueError):
    pass


def load_file(path: Path) -> list[Example]:
    examples = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            row = json.loads(line)
            view_of(row["messages"])
            labels = {name: int(row["labels"][name]) for name in ALL_LABELS}
            if not isinstance(row["reply"], str):
                raise DataError("reply is not a string")
        except (KeyError, TypeError, ValueError, json.JSONDecodeError) as exc:
            raise DataError(f"{where}: {exc}") from exc
        if any(v not in (0, 1) for v in labels.values()):
            raise DataError(f"{where}: labels must be 0 or 1")
        meta = row.get("meta") or {}
        examples.append(Example(str(row["id"]), row["messages"], row["reply"], labels, str(meta.get("kind", "")),
                                path.stem, meta))
    return examples


def load_split(name: str, data_dir: Path = DATA_DIR) -> list[Example]:
    examples = [e for path in sorted((data_dir / name).glob("*.jsonl")) for e in load_file(path)]
    seen: set[str] = set()
    for e in examples:
        if e.id in seen:
            raise DataError(f"duplicate id {e.id!r} in {name}")
        seen.add(e.id)
    return examples


def split_dev(examples: list[Example], fraction: float, seed: int) -> tuple[list[Example], list[Example]]:
    groups = sorted({e.group for e in examples})
    random.Random(seed).shuffle(groups)
    dev_groups = set(groups[: int(len(groups) * fraction)])
    return [e for e in examples if e.group not in dev_groups], [e for e in examples if e.group in dev_groups]


_TRAILING_QUESTION = re.compile(r"(?<=[.!])\s+[^.!?]*\?\s*$")


def punctuation_augmented(examples: list[Example], share: float, seed: int) -> list[Example]:
    """Label-preserving copies that break the data's punctuation shortcut (pacifying drafts shout, engaged ones ask).

    Positives lose their exclamation marks (soothing stays soothing in a calm voice); negatives lose a trailing
    question when a statement precedes it (a reflection without its question is still a reflection, a correction still a
    correction). Without this the heads learn '!' and '?' instead of what the reply does.
    """
    rng = random.Random(seed)
    extra = []
    for e in examples:
        positive = any(e.labels[n] for n in REPLY_LABELS)
        if rng.random() >= share:
            continue
        if positive and "!" in e.reply:
            reply = e.reply.replace("!", ".")
        elif not positive and _TRAILING_QUESTION.search(e.reply):
            reply = _TRAILING_QUESTION.sub("", e.reply)
        else:
            continue
        extra.append(Example(f"{e.id}~punct", e.messages, reply, e.labels, e.kind, e.source, e.meta))
    return extra
