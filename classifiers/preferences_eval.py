"""Precision and recall of the stated-preference detector (classifiers/preferences.py) per preference, on the held-out
written set classifiers/data/preferences_eval.jsonl (its first line says how it was made).

    python -m classifiers.preferences_eval [--errors] [--data FILE]
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from classifiers.preferences import PREFERENCES, detect

DATA = Path(__file__).resolve().parent / "data" / "preferences_eval.jsonl"
TARGET_PRECISION, TARGET_RECALL = 0.9, 0.8


@dataclass(frozen=True)
class Item:
    text: str
    labels: frozenset[str]


@dataclass
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0


def load(path: Path) -> list[Item]:
    items = []
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if "_about" in row:
            continue
        unknown = set(row["labels"]) - set(PREFERENCES)
        if unknown:
            raise ValueError(f"{path}: unknown label(s) {sorted(unknown)} in {row['text']!r}")
        items.append(Item(row["text"], frozenset(row["labels"])))
    return items


def evaluate(items: list[Item]) -> tuple[dict[str, Counts], list[tuple[str, set[str], set[str]]]]:
    counts = {name: Counts() for name in PREFERENCES}
    errors = []
    for item in items:
        found = {s.preference for s in detect(item.text)}
        for name in PREFERENCES:
            wanted, got = name in item.labels, name in found
            counts[name].tp += wanted and got
            counts[name].fp += got and not wanted
            counts[name].fn += wanted and not got
        if found != item.labels:
            errors.append((item.text, set(item.labels), found))
    return counts, errors


def report(items: list[Item], counts: dict[str, Counts]) -> str:
    lines = [f"{len(items)} items ({sum(1 for i in items if not i.labels)} state nothing)", "",
             "| preference | positives | TP | FP | FN | precision | recall |", "|---|---|---|---|---|---|---|"]
    for name, c in counts.items():
        lines.append(f"| {name} | {c.tp + c.fn} | {c.tp} | {c.fp} | {c.fn} | {c.precision:.2f} | {c.recall:.2f} |")
    total = Counts(sum(c.tp for c in counts.values()), sum(c.fp for c in counts.values()),
                   sum(c.fn for c in counts.values()))
    lines.append(f"| all (micro) | {total.tp + total.fn} | {total.tp} | {total.fp} | {total.fn} | "
                 f"{total.precision:.2f} | {total.recall:.2f} |")
    missed = [n for n, c in counts.items() if c.precision < TARGET_PRECISION or c.recall < TARGET_RECALL]
    lines += ["", f"targets: precision >= {TARGET_PRECISION}, recall >= {TARGET_RECALL}: "
              + ("met for every preference" if not missed else "missed for " + ", ".join(missed))]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--errors", action="store_true", help="also list every item the detector got wrong")
    args = parser.parse_args(argv)
    items = load(args.data)
    counts, errors = evaluate(items)
    print(report(items, counts))
    if args.errors:
        print("\nerrors (text | expected | detected):")
        for text, wanted, found in errors:
            print(f"- {text!r} | {sorted(wanted)} | {sorted(found)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
