"""Inter-annotator agreement of the double-labelled slices, from the committed files (meta.labels_writer and
meta.labels_second on every line; see classifiers/data/ADJUDICATION.md).

    python -m classifiers.training.agreement          # a Markdown table: Cohen's kappa and raw agreement per label
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

from classifiers.training.dataset import ALL_LABELS, DATA_DIR


def kappa(pairs: Counter[tuple[int, int]]) -> float | None:
    n = sum(pairs.values())
    if not n:
        return None
    observed = (pairs[(0, 0)] + pairs[(1, 1)]) / n
    first, second = (pairs[(1, 0)] + pairs[(1, 1)]) / n, (pairs[(0, 1)] + pairs[(1, 1)]) / n
    expected = first * second + (1 - first) * (1 - second)
    return None if expected >= 1 else (observed - expected) / (1 - expected)


def agreement(data_dir: Path = DATA_DIR) -> dict[str, dict[str, dict[str, float | int | None]]]:
    """Per file (and 'all'): per label, n, kappa, raw agreement and the adjudicated positive count."""
    tables: dict[str, dict[str, Counter[tuple[int, int]]]] = defaultdict(lambda: defaultdict(Counter))
    positives: dict[str, Counter[str]] = defaultdict(Counter)
    for path in sorted(data_dir.glob("*/*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            meta = row.get("meta") or {}
            if "labels_second" not in meta:
                continue
            name = f"{path.parent.name}/{path.stem}"
            for label in ALL_LABELS:
                pair = (int(meta["labels_writer"][label]), int(meta["labels_second"][label]))
                for key in (name, "all"):
                    tables[key][label][pair] += 1
                    positives[key][label] += int(row["labels"][label])
    out: dict[str, dict[str, dict[str, float | int | None]]] = {}
    for name, labels in tables.items():
        out[name] = {}
        for label, pairs in labels.items():
            n = sum(pairs.values())
            k = kappa(pairs)
            out[name][label] = {"n": n, "kappa": None if k is None else round(k, 3),
                                "agreement": round((pairs[(0, 0)] + pairs[(1, 1)]) / n, 3), "positives": positives[name][label]}
    return out


def render(result: dict[str, dict[str, dict[str, float | int | None]]]) -> str:
    lines = ["| slice | " + " | ".join(ALL_LABELS) + " |", "|---|" + "---|" * len(ALL_LABELS)]
    for name in sorted(result, key=lambda n: (n == "all", n)):
        cells = []
        for label in ALL_LABELS:
            cell = result[name].get(label)
            cells.append("-" if not cell or cell["kappa"] is None else f"{cell['kappa']:.2f} ({cell['positives']})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    print("Cohen's kappa between writer and blind second labeller (adjudicated positives in brackets):\n")
    print(render(agreement()))


if __name__ == "__main__":
    main()
