"""The real-register dev split: what model selection, calibration and thresholds are chosen on.

Two parts (classifiers/data/dev):
- `*.jsonl`: items written for the project in real registers and assistant styles (CC0, committed);
- `refs/*.jsonl`: project labels on real texts from permissive public sets (CounselChat answers, MIT; ELEPHANT responses,
  CC0). Only the reference and the labels are committed; the text is read from ../shared/data at run time, so the
  long answers are not republished. Where ../shared/data is absent, this part is skipped.
"""

from __future__ import annotations

import csv
import gzip
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from classifiers.training.dataset import ALL_LABELS, DATA_DIR, Example, load_split

DEFAULT_DATA_ROOT = Path(__file__).resolve().parents[2].parent / "shared" / "data"
DEV_DIR = DATA_DIR / "dev"


def _rows(path: Path) -> list[dict[str, str]]:
    csv.field_size_limit(sys.maxsize)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", newline="") as handle:  # type: ignore[operator]
        return list(csv.DictReader(handle))


class _Sources:
    """Lazily opened public files, keyed by set name and file."""

    def __init__(self, data_root: Path) -> None:
        self.root = data_root
        self._cache: dict[str, list[dict[str, str]]] = {}

    def rows(self, relative: str) -> list[dict[str, str]]:
        if relative not in self._cache:
            self._cache[relative] = _rows(self.root / relative)
        return self._cache[relative]

    def resolve(self, ref: dict[str, Any]) -> tuple[list[dict[str, str]], str] | None:
        if ref.get("set") == "counselchat":
            rows = self.rows("counselchat/20200325_counsel_chat.csv.gz")
            index = int(ref["answer_index"])
            row = next((r for r in rows if r.get("") == str(index)), None) or (rows[index] if index < len(rows) else None)
            if row is None:
                return None
            title, text = (row.get("questionTitle") or "").strip(), (row.get("questionText") or "").strip()
            question = text if text.startswith(title) else f"{title}\n\n{text}".strip()
            return [{"role": "user", "content": question}], (row.get("answerText") or "").strip()
        if ref.get("set") == "elephant":
            rows = self.rows(f"elephant/{ref['file']}")
            row = rows[int(ref["row"])]
            prompt = (row.get("prompt") or "").strip()
            reply = (row.get(ref.get("reply_column", "gpt_response")) or "").strip()
            return [{"role": "user", "content": prompt}], reply
        return None


def _refs(data_root: Path) -> Iterator[Example]:
    if not data_root.is_dir():
        return
    sources = _Sources(data_root)
    for path in sorted((DEV_DIR / "refs").glob("*.jsonl")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            row = json.loads(line)
            try:
                resolved = sources.resolve(row["ref"])
            except (OSError, KeyError, IndexError, ValueError):
                resolved = None
            if resolved is None or not resolved[1] or not resolved[0][0]["content"]:
                continue
            messages, reply = resolved
            labels = {name: int(row["labels"][name]) for name in ALL_LABELS}
            meta = {"kind": "real", "register": row["ref"]["set"], "style": "human" if row["ref"]["set"] == "counselchat"
                    else "assistant"}
            yield Example(f"{path.stem}:{number}", messages, reply, labels, "real", f"dev-{row['ref']['set']}", meta)


def load_dev(data_root: Path = DEFAULT_DATA_ROOT) -> list[Example]:
    """The written dev items, plus the referenced real ones where ../shared/data is present."""
    written = load_split("dev") if DEV_DIR.is_dir() else []
    return written + list(_refs(data_root))
