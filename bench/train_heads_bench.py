"""Time `heedful train-heads` on N reviewed labels (target: 2,000 in <= 15 minutes on 2 cores).

    python bench/train_heads_bench.py [--labels 2000] [--shipped-sample 3000] [--threads 2]

The "reviews" are the project's labelled held-out lines (classifiers/data/test, holdout, dev) written as a review export
with texts and the labels a reviewer marks (headline labels and context signals). Wall time and CPU time (this process,
all threads) are printed: on a shared machine the wall time says more about the neighbours than about the command.
Needs the train extra.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from classifiers.artifacts import DEFAULT_MODEL_DIR  # noqa: E402
from classifiers.training.dataset import DATA_DIR  # noqa: E402
from classifiers.training.own_heads import train_heads  # noqa: E402


def export(path: Path, count: int) -> int:
    lines = [line for split in ("test", "holdout", "dev") for file in sorted((DATA_DIR / split).glob("*.jsonl"))
             for line in file.read_text().splitlines() if line.strip()][:count]
    with path.open("w") as out:
        for text in lines:
            row = json.loads(text)
            labels = row["labels"]
            marked = {name: labels[name] for name in ("pacification", "rushed_advice", "distress", "crisis",
                                                      "advice_requested")}
            marked["sycophancy"] = max(labels["sycophancy_epistemic"], labels["sycophancy_social"])
            out.write(json.dumps({"id": row["id"], "messages": row["messages"], "reply": row["reply"], "scores": {},
                                  "context": {}, "flags": [], "policy": "default", "labels": marked}) + "\n")
    return len(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--labels", type=int, default=2000)
    parser.add_argument("--shipped-sample", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        reviews = Path(tmp) / "reviews.jsonl"
        count = export(reviews, args.labels)
        start, cpu = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
        table = train_heads(reviews, Path(tmp) / "model", DEFAULT_MODEL_DIR, shipped_sample=args.shipped_sample,
                            threads=args.threads, progress=lambda line: print(line, flush=True))
        wall = time.perf_counter() - start
        used = resource.getrusage(resource.RUSAGE_SELF)
        seconds = used.ru_utime - cpu.ru_utime + used.ru_stime - cpu.ru_stime
    print(table)
    print(f"train-heads: {count:,} labels + {args.shipped_sample:,} shipped examples, {args.threads} threads: "
          f"{wall:.0f} s wall, {seconds:.0f} s CPU (target: 2,000 labels <= 15 min on 2 cores)")


if __name__ == "__main__":
    main()
