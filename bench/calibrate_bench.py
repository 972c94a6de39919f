"""Time `heedful calibrate` end to end on N reviewed decisions (target: 10,000 in <= 10 s).

    python bench/calibrate_bench.py [--decisions 10000] [--shadow 0] [--policy policies/default.yaml] [--keep DIR]

The reviewed decisions are synthetic but shaped like a `heedful review export`: every label reviewed, scores drawn
from one distribution for decisions with the label and another without (so precision and recall move with the
threshold as on real traffic), flags at the model's thresholds, a tenant and a policy. The whole command runs in this
process (reading, every rule and label, the proposed policy and its diff, the HTML report), timed with a wall clock.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from app.cli import main  # noqa: E402
from classifiers.artifacts import DEFAULT_MODEL_DIR, load_model_info  # noqa: E402
from classifiers.labels import CONTEXT_SIGNALS, REPLY_SCORES, flags_of  # noqa: E402

PREVALENCE = {"pacification": 0.25, "sycophancy_epistemic": 0.12, "sycophancy_social": 0.12, "rushed_advice": 0.2,
              "distress": 0.5, "crisis": 0.08, "advice_requested": 0.4}


def decision(rng: random.Random, number: int, thresholds: dict[str, float], reviewed: bool) -> dict[str, object]:
    labels = {name: int(rng.random() < p) for name, p in PREVALENCE.items()}
    labels["sycophancy"] = max(labels["sycophancy_epistemic"], labels["sycophancy_social"])

    def score(name: str) -> float:
        return round(rng.betavariate(5, 2) if labels[name] else rng.betavariate(1.3, 5), 4)

    reply = {name: score(name) for name in REPLY_SCORES if name != "sycophancy"}
    reply["sycophancy"] = max(reply["sycophancy_epistemic"], reply["sycophancy_social"])
    context = {name: score(name) for name in CONTEXT_SIGNALS}
    row: dict[str, object] = {"id": f"d{number}", "scores": reply, "context": context,
                              "flags": flags_of(reply, context, thresholds)}
    if reviewed:
        row |= {"policy": "default", "policy_revision": "bench", "rule": "none", "action": "allow", "tenant": "acme",
                "ts": 1_764_000_000 + number, "labels": labels,
                "review": {"reviewer": "bench", "ts": 1_764_100_000 + number, "note": "", "marks": {}}}
    return row


def write(path: Path, count: int, reviewed: bool, seed: int) -> None:
    rng = random.Random(seed)
    thresholds = load_model_info(DEFAULT_MODEL_DIR).thresholds
    with path.open("w", encoding="utf-8") as out:
        for number in range(count):
            out.write(json.dumps(decision(rng, number, thresholds, reviewed)) + "\n")


def run(decisions: int, shadow: int, policy: Path, keep: Path | None) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        folder = keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        reviews = folder / "reviews.jsonl"
        write(reviews, decisions, True, 1)
        argv = ["calibrate", "--reviews", str(reviews), "--policy", str(policy), "--target-precision", "0.8",
                "--out", str(folder / "out")]
        if shadow:
            write(folder / "shadow.jsonl", shadow, False, 2)
            argv += ["--shadow", str(folder / "shadow.jsonl")]
        printed = io.StringIO()
        start = time.perf_counter()
        with contextlib.redirect_stdout(printed), contextlib.suppress(SystemExit):
            main(argv)
        seconds = time.perf_counter() - start
        print(printed.getvalue())
        return seconds


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--decisions", type=int, default=10_000)
    parser.add_argument("--shadow", type=int, default=0, help="also a shadow sample of this many scored decisions")
    parser.add_argument("--policy", type=Path, default=REPO / "policies" / "default.yaml")
    parser.add_argument("--keep", type=Path, help="write the inputs and outputs here instead of a temporary folder")
    args = parser.parse_args()
    seconds = run(args.decisions, args.shadow, args.policy, args.keep)
    print(f"calibrate: {args.decisions:,} reviewed decisions"
          + (f" + {args.shadow:,} shadow" if args.shadow else "") + f" in {seconds:.2f} s (target <= 10 s)")


if __name__ == "__main__":
    cli()
