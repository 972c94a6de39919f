"""The model card and the printed comparison of a model made by `heedful train-heads` (from its metrics.json report)."""

from __future__ import annotations

from typing import Any

from classifiers.training.own_heads import MIN_NEGATIVES, MIN_POSITIVES


def comparison(report: dict[str, Any]) -> str:
    """Per label AUROC and F1 of the shipped and the new model on the held-out reviews, side by side."""
    lines = ["| label | held out (positives) | AUROC shipped | AUROC new | F1 shipped | F1 new | retrained |",
             "|---|---|---|---|---|---|---|"]
    for name, row in report["held_out_evaluation"].items():
        retrained = "yes" if name in report["retrained"] or (name == "sycophancy" and {"sycophancy_epistemic",
                                                                                       "sycophancy_social"} & set(report["retrained"])) else "no"
        lines.append(f"| {name} | {row['n']} ({row['positives']}) | {row['shipped']['auroc']:.3f} | {row['new']['auroc']:.3f} "
                     f"| {row['shipped']['f1']:.3f} (t={row['shipped']['threshold']:g}) | {row['new']['f1']:.3f} "
                     f"(t={row['new']['threshold']:g}) | {retrained} |")
    if not report["held_out_evaluation"]:
        lines.append("| (no label has both classes in the held-out part) | | | | | | |")
    return "\n".join(lines)


def card(report: dict[str, Any], name: str) -> str:
    counts = ", ".join(f"{label} {pos}+/{neg}-" for label, (pos, neg) in report["label_counts"].items())
    dev = report["dev_mean_auroc"]
    return f"""# Model card: {name}

## What it is
{report["base"]} (the shipped Heedful classifier) with its **output head retrained** by `heedful train-heads` on this
deployment's reviewed decisions: {", ".join(report["retrained"])}. The encoder, tokeniser and input layout are the shipped
model's, unchanged; only the last linear layer (pooled features to the seven logits) was trained, starting from the
shipped head, for the labels above. The other outputs, their calibration and thresholds are the shipped model's.
Serve it with `heedful serve --model-path <this folder>`; score with `heedful score --model <this folder>`.

## Data
- Reviewed decisions with texts: {report["reviewed_with_texts"]} ({report["reviewed_without_texts"]} more had no texts and
  were not used). Labels (positive+/negative-, where a reviewer gave them): {counts}.
- Split by conversation: {report["train"]} for training, {report["dev"]} for early stopping, calibration and thresholds,
  {report["held_out"]} held out for the evaluation below (never trained, calibrated or thresholded on).
- Mixed in: {report["shipped_examples"]} examples of the shipped training data (classifiers/data/train), so the head keeps
  what it knew where the reviews are silent. {report["train_rows"]} training rows in all (a long draft gives one row per
  window; each conversation one context row).
- A label is retrained only with at least {MIN_POSITIVES} positive and {MIN_NEGATIVES} negative reviews.

## Evaluation on the held-out reviews
Both models scored the same held-out decisions through the run time (`classifiers.runtime.Scorer`), exactly as served.
F1 is at each model's own threshold (thresholds.json). Dev mean AUROC of the retrained labels: shipped head
{dev["shipped head"]:.3f}, new head {dev["new head"]:.3f} (the new head is the shipped one when no epoch beat it).

{comparison(report)}

## How far to trust it
- The held-out part is small: with tens of positives, an AUROC difference under about 0.03 is within noise. Re-run with
  a different `--seed` to see how much the figures move.
- Reviewed decisions are not a random sample of traffic (the console keeps every repair and a few passes), so these
  figures describe reviewed traffic. Check the new model on a shadow sample (`heedful replay`, `heedful calibrate
  --shadow`) before serving it.
- Labels come from this deployment's reviewers; where they disagree with ../shared/docs/labels.md, so will the model.

## Reproduce
`heedful train-heads --reviews <the export> --out <folder> --seed {report["seed"]}` ({report["seconds"]:.0f} s here).
"""
