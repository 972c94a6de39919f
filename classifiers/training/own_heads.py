"""`heedful train-heads`: the shipped model with its output head retrained on a deployment's reviewed labels.

    heedful train-heads --reviews reviewed.jsonl --out models/acme-v1

What it does, in order:
1. reads the reviewed decisions that kept texts (messages and the draft reply) and their labels; a label a review did not
   give is left out of the loss for that decision, not counted as "absent";
2. refuses unless at least one label has MIN_POSITIVES and MIN_NEGATIVES reviews (labels under that keep the shipped
   head's output, calibration and threshold);
3. holds out a share of the conversations for the evaluation, and a further share of the rest for early stopping,
   calibration and thresholds;
4. reads the features the shipped head reads (the fine-tuned encoder's pooled output, through the shipped int8 graph, one
   row at a time exactly as serving does) for the user's rows and a sample of the shipped training data;
5. trains a new linear head starting from the shipped one, keeping the shipped head if no epoch beats it on the dev part;
6. writes model.onnx (the shipped graph with the new head), calibration.json and thresholds.json (Platt scaling and
   thresholds on the dev part), metrics.json and MODEL_CARD.md (the shipped model against the new one on the held-out part).

Fine-tuning the encoder itself is not done here: on 2 CPU cores it takes about an hour on the shipped data
(classifiers/training/train.py), and a few thousand reviews are too few to move 22M weights safely.
"""

from __future__ import annotations

import json
import random
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from classifiers.artifacts import MULTITASK_MODEL, load_model_info
from classifiers.encoder import EMBEDDING_DIM, Encoder
from classifiers.features import CONTEXT_LABELS, REPLY_LABELS
from classifiers.inputs import ConversationError, view_of
from classifiers.labels import ALL_OUTPUTS, BY_NAME, CRISIS_UNCERTAIN, reviewed_truth
from classifiers.training.dataset import DATA_DIR, Example, load_split, split_dev

if TYPE_CHECKING:  # the train extra (torch, onnx, scikit-learn) is imported only once the reviews can be trained on
    from classifiers.training.finetune import Rows

# A label needs this many reviewed decisions with it and without it before its head is retrained and evaluated:
# with 25% held out, about 10 of each are left to measure AUROC on, below which the measurement says nothing.
MIN_POSITIVES = 40
MIN_NEGATIVES = 40
DEV_SHARE = 0.25  # of what is not held out: early stopping, calibration, thresholds
THRESHOLD_RANGE = (0.05, 0.95)
FEATURES_MODEL = "features.onnx"
# The dev part is a few hundred reviews: calibration is regularised so that a clean separation there does not turn every
# score into 0 or 1.
PLATT_C = 1.0


class CannotTrain(ValueError):
    """The reviews cannot support a retrained head (no texts, or too few labels): the message says what is missing."""


@dataclass(frozen=True)
class Reviewed:
    examples: list[Example]
    without_texts: int
    counts: dict[str, tuple[int, int]]  # label -> (positives, negatives) among the examples


def _known_labels(labels: dict[str, Any]) -> tuple[dict[str, int], list[str]]:
    """The seven model outputs' labels from a review's labels, and the outputs it says nothing about. A combined
    `sycophancy: 0` means neither kind; `sycophancy: 1` cannot say which kind, so both stay unknown unless given."""
    marks = {name: int(value) for name, value in labels.items() if value in (0, 1)}
    known = {name: truth for name in ALL_OUTPUTS if (truth := reviewed_truth(marks, name)) is not None}
    return known, [name for name in ALL_OUTPUTS if name not in known]


def _file_rows(path: Path) -> Iterator[tuple[str, Any]]:
    with path.open(encoding="utf-8") as stream:
        for number, text in enumerate(stream, start=1):
            if not text.strip():
                continue
            try:
                yield f"{path}:{number}", json.loads(text)
            except json.JSONDecodeError as exc:
                raise CannotTrain(f"{path}:{number}: not valid JSON ({exc.msg})") from exc


def read_reviewed(path: Path) -> Reviewed:
    return reviewed_from(_file_rows(path), str(path))


def reviewed_from(rows: Iterable[tuple[str, Any]], source: str) -> Reviewed:
    """The trainable examples of reviewed decisions given as (where, export dict) pairs."""
    examples, without_texts = [], 0
    for where, row in rows:
        if not isinstance(row, dict) or not isinstance(row.get("labels"), dict):
            raise CannotTrain(f"{where}: not a reviewed decision (no 'labels' object)")
        if not isinstance(row.get("messages"), list) or not isinstance(row.get("reply"), str):
            without_texts += 1
            continue
        try:
            view_of(row["messages"])
        except ConversationError as exc:
            raise CannotTrain(f"{where}: messages: {exc}") from exc
        known, unknown = _known_labels(row["labels"])
        if not known:
            continue
        examples.append(Example(str(row.get("id", where)), row["messages"], row["reply"],
                                {name: known.get(name, 0) for name in ALL_OUTPUTS}, "reviewed", "reviewed",
                                {"unknown_labels": unknown}))
    if not examples:
        raise CannotTrain(
            f"{source} holds no reviewed decision with texts ({without_texts} without): training needs the conversation "
            f"and the draft. Keep texts for the decisions you review (the policy's spec.audit.include_texts: true) and "
            f"export again")
    counts = {}
    for name in ALL_OUTPUTS:
        values = [e.labels[name] for e in examples if name not in e.meta["unknown_labels"]]
        counts[name] = (sum(values), len(values) - sum(values))
    return Reviewed(examples, without_texts, counts)


def _trained_labels(counts: dict[str, tuple[int, int]]) -> list[str]:
    return [n for n, (pos, neg) in counts.items() if pos >= MIN_POSITIVES and neg >= MIN_NEGATIVES]


def _refusal(reviewed: Reviewed) -> str:
    table = ", ".join(f"{n} {pos}+/{neg}-" for n, (pos, neg) in reviewed.counts.items())
    return (f"too few labels to train or evaluate anything: every label needs at least {MIN_POSITIVES} positive and "
            f"{MIN_NEGATIVES} negative reviews with texts; you have {table}")


def _split(examples: list[Example], share: float, seed: int) -> tuple[list[Example], list[Example]]:
    """(rest, held out) by conversation, so two drafts of one conversation never sit on both sides."""
    return split_dev(examples, share, seed)


def _features(encoder: Encoder, rows: "Rows") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = encoder.embed(rows.rows, width_out=EMBEDDING_DIM)
    return x, np.array(rows.labels, np.float32), np.array(rows.masks, np.float32)


def _whole_logits(encoder: Encoder, examples: list[Example], weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Each example's seven logits as serving computes them with this head (every reply window, the highest per label),
    from the features: the head is the model's last layer, so this is what the exported model gives."""
    views = [view_of(e.messages) for e in examples]
    windows = encoder.reply_windows(views, [e.reply for e in examples])
    flat = [row for rows in windows for row in rows]
    logits = encoder.embed(flat, width_out=EMBEDDING_DIM) @ weight.T + bias
    ends = np.cumsum([len(rows) for rows in windows])
    reply = np.stack([logits[end - len(rows): end].max(axis=0) for rows, end in zip(windows, ends, strict=True)])
    context = encoder.embed(encoder.context_ids(views), width_out=EMBEDDING_DIM) @ weight.T + bias
    return np.concatenate([reply[:, : len(REPLY_LABELS)], context[:, len(REPLY_LABELS):]], axis=1)


def _truth(examples: list[Example], name: str) -> tuple[np.ndarray, np.ndarray]:
    """(known, y) for a model output or the combined sycophancy over examples."""
    label = BY_NAME[name]
    parts = label.combines or (name,)
    known = np.array([all(p not in e.meta.get("unknown_labels", ()) for p in parts) for e in examples], dtype=bool)
    y = np.array([max(e.labels[p] for p in parts) for e in examples], dtype=np.int8)
    return known, y


def _probabilities(logits: np.ndarray, calibration: dict[str, dict[str, float]]) -> dict[str, np.ndarray]:
    from classifiers.training import thresholds

    probs = {name: thresholds.sigmoid(calibration[name]["scale"] * logits[:, j] + calibration[name]["shift"])
             for j, name in enumerate(ALL_OUTPUTS)}
    for label in BY_NAME.values():
        if label.combines:
            probs[label.name] = np.maximum.reduce([probs[n] for n in label.combines])
    return probs


def _calibrate(logits: np.ndarray, dev: list[Example], trained: list[str], base_dir: Path) -> tuple[dict, dict]:
    """Platt scaling and thresholds for the retrained labels on the dev part; the shipped ones for the rest."""
    from classifiers.training import thresholds

    calibration = json.loads((base_dir / "calibration.json").read_text())["labels"]
    chosen = dict(load_model_info(base_dir).thresholds)
    for j, name in enumerate(ALL_OUTPUTS):
        known, y = _truth(dev, name)
        if name in trained and 0 < y[known].sum() < known.sum():
            scale, shift = thresholds.platt(logits[known, j], y[known], c=PLATT_C)
            calibration[name] = {"scale": scale, "shift": shift}
    probs = _probabilities(logits, calibration)
    for name in (*trained, *(c.name for c in BY_NAME.values() if set(c.combines) & set(trained))):
        known, y = _truth(dev, name)
        if not 0 < y[known].sum() < known.sum():
            continue
        if name == "crisis":
            distress_known, distress = _truth(dev, "distress")
            near_miss = (y == 0) & distress_known & (distress == 1) & known
            chosen["crisis"], chosen[CRISIS_UNCERTAIN] = thresholds.crisis_thresholds(probs[name][known], y[known],
                                                                                        near_miss[known])
        else:
            # A small dev part that separates perfectly can put the best threshold at an extreme score, where it would
            # flag everything or nothing the moment traffic shifts a little.
            best = thresholds.best_threshold(probs[name][known], y[known], middle=True)
            chosen[name] = min(max(best, THRESHOLD_RANGE[0]), THRESHOLD_RANGE[1])
    return calibration, {k: round(float(v), 4) for k, v in chosen.items()}


def _evaluate(base_dir: Path, out_dir: Path, held_out: list[Example], threads: int) -> dict[str, Any]:
    """Per label AUROC and F1 (at each model's own threshold) of the shipped and the new model on the held-out part."""
    from sklearn.metrics import f1_score, roc_auc_score

    from classifiers.runtime import Scorer

    items = [(e.messages, e.reply) for e in held_out]
    scored = {which: Scorer(folder, threads=threads).score_many(items) for which, folder in (("shipped", base_dir),
                                                                                           ("new", out_dir))}
    thresholds_of = {"shipped": load_model_info(base_dir).thresholds, "new": load_model_info(out_dir).thresholds}
    table: dict[str, Any] = {}
    for name in (*REPLY_LABELS, "sycophancy", *CONTEXT_LABELS):
        known, y = _truth(held_out, name)
        y = y[known]
        if not 0 < y.sum() < len(y):
            continue
        row: dict[str, Any] = {"n": int(len(y)), "positives": int(y.sum())}
        for which, scores in scored.items():
            s = np.array([sc.reply.get(name, sc.context.get(name, 0.0)) for sc in scores])[known]
            threshold = thresholds_of[which].get(name, 0.5)
            row[which] = {"auroc": round(float(roc_auc_score(y, s)), 4),
                          "f1": round(float(f1_score(y, s >= threshold, zero_division=0)), 4), "threshold": threshold}
        table[name] = row
    return table


def train_heads(reviews: Path | Reviewed, out_dir: Path, base_dir: Path, holdout: float = 0.25, shipped_sample: int = 3000,
                seed: int = 13, threads: int = 2, progress: Callable[[str], None] = print) -> str:
    """Train, export, calibrate and evaluate; returns the text of the comparison (also in MODEL_CARD.md).

    Raises CannotTrain before anything is computed when the reviews cannot support it, and ImportError (its `name` the
    missing package) when the train extra is not installed."""
    started = time.monotonic()
    reviewed = reviews if isinstance(reviews, Reviewed) else read_reviewed(reviews)
    trained = _trained_labels(reviewed.counts)
    if not trained:
        raise CannotTrain(_refusal(reviewed))
    if out_dir.exists() and any(out_dir.iterdir()):
        raise CannotTrain(f"{out_dir} exists and is not empty; choose a new folder for the new model")
    import onnx
    import torch

    from classifiers.training import head_onnx, heads
    from classifiers.training.finetune import Rows

    torch.set_num_threads(threads)
    rest, held_out = _split(reviewed.examples, holdout, seed)
    train_part, dev_part = _split(rest, DEV_SHARE, seed + 1)
    shipped: list[Example] = []
    if shipped_sample and (DATA_DIR / "train").is_dir():
        everything = load_split("train")
        shipped = random.Random(seed).sample(everything, min(shipped_sample, len(everything)))
    progress(f"train-heads: {len(reviewed.examples)} reviewed decisions with texts ({reviewed.without_texts} without); "
             f"retraining {', '.join(trained)}; {len(train_part)} train, {len(dev_part)} dev, {len(held_out)} held out; "
             f"{len(shipped)} shipped examples mixed in")

    base = head_onnx.load(base_dir / MULTITASK_MODEL)
    with tempfile.TemporaryDirectory() as scratch:
        # The shipped graph up to the head, under the shipped tokeniser: the run time's own Encoder reads its features.
        onnx.save(head_onnx.features_model(base), str(Path(scratch) / FEATURES_MODEL))
        shutil.copy(base_dir / "tokenizer.json", Path(scratch) / "tokenizer.json")
        encoder = Encoder(Path(scratch), threads=threads, model_file=FEATURES_MODEL)
    train_rows = Rows().add_replies(encoder, train_part + shipped).add_contexts(encoder, train_part + shipped)
    dev_rows = Rows().add_replies(encoder, dev_part).add_contexts(encoder, dev_part)
    x, y, mask = _features(encoder, train_rows)
    x_dev, y_dev, mask_dev = _features(encoder, dev_rows)
    progress(f"train-heads: features of {len(x) + len(x_dev)} rows in {time.monotonic() - started:.0f} s")

    weight, bias = head_onnx.head_weights(base)
    columns = np.array([name in trained for name in ALL_OUTPUTS])
    head, dev_auroc = heads.fit_head(x, y, x_dev, y_dev, 0, seed, mask=mask * columns, dev_mask=mask_dev * columns,
                                     init=(weight, bias))
    linear = head[1]
    new_weight = np.where(columns[:, None], linear.weight.detach().numpy(), weight)
    new_bias = np.where(columns, linear.bias.detach().numpy(), bias)
    start_auroc = heads.mean_auroc(y_dev, x_dev @ weight.T + bias, mask_dev * columns)

    out_dir.mkdir(parents=True, exist_ok=True)
    onnx.save(head_onnx.with_head(base, new_weight, new_bias), str(out_dir / MULTITASK_MODEL))
    shutil.copy(base_dir / "tokenizer.json", out_dir / "tokenizer.json")
    calibration, chosen = _calibrate(_whole_logits(encoder, dev_part, new_weight, new_bias), dev_part, trained, base_dir)
    (out_dir / "calibration.json").write_text(json.dumps(
        {"method": "platt on the dev part of the reviewed labels (retrained labels); shipped for the rest",
         "labels": calibration}, indent=2) + "\n")
    base_info = load_model_info(base_dir)
    (out_dir / "thresholds.json").write_text(json.dumps(
        {"model": out_dir.name, "version": "1", "base": f"{base_info.name} v{base_info.version}", "thresholds": chosen,
         "crisis_lexicon_floor": base_info.crisis_lexicon_floor,
         "rule": "retrained labels: max F1 on the dev part of the reviewed labels (crisis: the recall targets of "
                 "classifiers/training/thresholds.py); other labels: the base model's"}, indent=2) + "\n")
    evaluation = _evaluate(base_dir, out_dir, held_out, threads)
    seconds = time.monotonic() - started
    report = {"base": f"{base_info.name} v{base_info.version}", "reviewed_with_texts": len(reviewed.examples),
              "reviewed_without_texts": reviewed.without_texts, "label_counts": reviewed.counts, "retrained": trained,
              "train": len(train_part), "dev": len(dev_part), "held_out": len(held_out), "shipped_examples": len(shipped),
              "train_rows": len(x), "dev_mean_auroc": {"shipped head": round(start_auroc, 4), "new head": round(dev_auroc, 4)},
              "held_out_evaluation": evaluation, "seconds": round(seconds, 1), "seed": seed}
    (out_dir / "metrics.json").write_text(json.dumps(report, indent=2) + "\n")
    from classifiers.training.own_card import card, comparison

    (out_dir / "MODEL_CARD.md").write_text(card(report, out_dir.name))
    return comparison(report)
