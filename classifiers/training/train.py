"""Retrain the shipped model from the project's own data, with fixed seeds, and write the model folder's JSON files.

    python -m classifiers.training.train [--reply finetune|frozen] [--epochs 2] [--max-minutes 60] [--compare-frozen]

The shipped model is one fine-tuned multi-task cross-encoder (finetune.py); `--reply frozen` builds heads on the frozen
int8 encoder instead (a comparison). Model selection, calibration and thresholds use the REAL-REGISTER dev split
(dev_split.py: written real-register items plus project labels on CounselChat and ELEPHANT texts), not a slice of the
training data: the synthetic data separates too cleanly to set thresholds that hold on real traffic. The evaluation that
fills the model card runs last. Only the project's own data and permissive sets are trained on; non-commercial public
sets are for evaluation only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import random
from pathlib import Path

import numpy as np
import torch

from classifiers.artifacts import DEFAULT_MODEL_DIR, FROZEN_FILES, MULTITASK_MODEL, REPLY_HEAD
from classifiers.crisis_lexicon import RECENT_USER_TURNS
from classifiers.crisis_signs import crisis_evidence
from classifiers.inputs import view_of
from classifiers.encoder import Encoder
from classifiers.features import CONTEXT_LABELS, REPLY_LABELS, context_features, reply_features
from classifiers.training import heads, thresholds
from classifiers.training.dataset import Example, load_split, punctuation_augmented, split_dev
from classifiers.training.dev_split import load_dev
from classifiers.training.embeddings import BLANK_CONTEXT, CACHE_DIR, CachedEncoder, Embedded

SEED = 13
DEV_FRACTION = 0.2
BLANK_CONTEXT_SHARE = 0.1
PUNCTUATION_SHARE = 0.35
# A training reply this similar to a test reply (cosine of the reply pass) is dropped, so the test split stays unseen.
TEST_OVERLAP_COSINE = 0.97
HIDDEN_SIZES = (0, 256)
# The frozen reply heads are a comparison (and a fallback with --reply frozen); a short schedule is enough to rank them.
COMPARISON_EPOCHS = 60


def _labels(examples: list[Example], names: tuple[str, ...]) -> np.ndarray:
    return np.array([[e.labels[n] for n in names] for e in examples], np.float32)


def _embed(cache: CachedEncoder, examples: list[Example], blank: bool = False) -> Embedded:
    conversations = [BLANK_CONTEXT if blank else e.messages for e in examples]
    return cache.embed(conversations, [e.reply for e in examples])


def _reply_x(emb: Embedded) -> np.ndarray:
    return reply_features(emb.reply_pass, emb.context, emb.previous, emb.has_previous)


def _drop_test_overlap(train: list[Example], train_emb: Embedded, test_emb: Embedded) -> list[int]:
    similarity = train_emb.reply_pass @ test_emb.reply_pass.T
    return [i for i in range(len(train)) if similarity[i].max() < TEST_OVERLAP_COSINE]


BASE_DIR = CACHE_DIR.parent / "base-encoder"


def _base_encoder() -> Path:
    """The frozen int8 base encoder (training-time only: tokenisation, and the frozen comparison's features)."""
    if not (BASE_DIR / "encoder.onnx").is_file():
        from classifiers.training.export_encoder import export

        export(BASE_DIR)
    return BASE_DIR


def _multitask_dev_logits(model_dir: Path, dev_set: list[Example]) -> tuple[np.ndarray, np.ndarray]:
    """Reply and context logits of the exported int8 model on the dev split (calibration sees what serving sees)."""
    model = Encoder(model_dir, threads=2, model_file=MULTITASK_MODEL)
    views = [view_of(e.messages) for e in dev_set]
    width = len(REPLY_LABELS) + len(CONTEXT_LABELS)
    reply = model.whole_reply_outputs(views, [e.reply for e in dev_set], width)
    context = model.embed(model.context_ids(views), width_out=width)
    return reply[:, : len(REPLY_LABELS)], context[:, len(REPLY_LABELS) :]


# Fewer real-register dev items than this and a group-wise slice of the training data is held out instead.
MIN_DEV_ITEMS = 200
# The crisis slice is where crisis positives and near-misses are dense; a share of its groups joins the dev split so
# the crisis thresholds rest on enough positives.
CRISIS_SLICE, CRISIS_DEV_FRACTION = "crisis", 0.2


def _dev_and_train(examples: list[Example]) -> tuple[list[Example], list[Example]]:
    dev = load_dev()
    if len(dev) < MIN_DEV_ITEMS:
        return split_dev(examples, DEV_FRACTION, SEED)
    crisis = [e for e in examples if e.source == CRISIS_SLICE]
    rest = [e for e in examples if e.source != CRISIS_SLICE]
    crisis_train, crisis_dev = split_dev(crisis, CRISIS_DEV_FRACTION, SEED)
    return rest + crisis_train, dev + crisis_dev


def train(model_dir: Path, reply: str = "finetune", epochs: float = 2.0, max_minutes: float | None = None,
          compare_frozen: bool = False) -> dict:
    random.seed(SEED)
    np.random.seed(SEED)
    torch.manual_seed(SEED)
    torch.set_num_threads(2)
    base_dir = _base_encoder()
    encoder = Encoder(base_dir, threads=2)
    # Cached embeddings are only valid for the encoder that made them.
    encoder_digest = hashlib.sha1((base_dir / "encoder.onnx").read_bytes()).hexdigest()[:12]
    cache = CachedEncoder(encoder, CACHE_DIR / f"train-{encoder_digest}.npz")
    examples, held_out = load_split("train"), load_split("test") + load_dev()
    kept = _drop_test_overlap(examples, _embed(cache, examples), _embed(cache, held_out))
    report: dict = {"train_examples": len(examples), "dropped_for_test_or_dev_overlap": len(examples) - len(kept)}
    examples = [examples[i] for i in kept]
    train_set, dev_set = _dev_and_train(examples)
    blanked = random.Random(SEED).sample(train_set, int(len(train_set) * BLANK_CONTEXT_SHARE))
    # The punctuation shortcut is a property of the first, minimal-pair slices; the real-register slices were written
    # with varied punctuation on both sides (no meta.register marks the old ones).
    first_slices = [e for e in train_set if "register" not in e.meta]
    train_set = train_set + punctuation_augmented(first_slices, PUNCTUATION_SHARE, SEED)
    report |= {"train": len(train_set), "dev": len(dev_set), "blanked_copies": len(blanked),
               "held_out_checked_for_overlap": len(held_out)}

    model_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(base_dir / "tokenizer.json", model_dir / "tokenizer.json")
    for stale in (*FROZEN_FILES, MULTITASK_MODEL, "reply_model.onnx"):
        (model_dir / stale).unlink(missing_ok=True)
    y_dev, y_ctx_dev = _labels(dev_set, REPLY_LABELS), _labels(dev_set, CONTEXT_LABELS)
    if reply == "finetune":
        from classifiers.training.finetune import finetune

        report["dev_mean_auroc_tried"] = {}
        report["finetune"] = finetune(base_dir, model_dir, epochs, CACHE_DIR.parent / "finetune", train_set, blanked, dev_set,
                                      max_minutes)
        reply_dev_logits, context_dev_logits = _multitask_dev_logits(model_dir, dev_set)
        report["dev_mean_auroc_tried"]["fine-tuned multi-task cross-encoder (int8), reply labels"] = round(
            heads.mean_auroc(y_dev, reply_dev_logits), 4)
        report["dev_mean_auroc_tried"]["fine-tuned multi-task cross-encoder (int8), context labels"] = round(
            heads.mean_auroc(y_ctx_dev, context_dev_logits), 4)
    if reply == "frozen" or compare_frozen:
        frozen = _frozen_heads(cache, train_set, blanked, dev_set, model_dir if reply == "frozen" else None, base_dir)
        report.setdefault("dev_mean_auroc_tried", {}).update(frozen["tried"])
        if reply == "frozen":
            reply_dev_logits, context_dev_logits = frozen["reply_logits"], frozen["context_logits"]
    _write_calibration_and_thresholds(model_dir, dev_set, reply_dev_logits, context_dev_logits, report)
    (model_dir / "training_report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def _frozen_heads(cache: CachedEncoder, train_set: list[Example], blanked: list[Example], dev_set: list[Example],
                  export_to: Path | None, base_dir: Path) -> dict:
    """Heads on frozen int8 features: a comparison, and the shipped model with --reply frozen."""
    e_train, e_blank, e_dev = _embed(cache, train_set), _embed(cache, blanked, blank=True), _embed(cache, dev_set)
    cache.save()
    x_reply = np.concatenate([_reply_x(e_train), _reply_x(e_blank)])
    y_reply = np.concatenate([_labels(train_set, REPLY_LABELS), _labels(blanked, REPLY_LABELS)])
    x_dev, y_dev = _reply_x(e_dev), _labels(dev_set, REPLY_LABELS)
    x_ctx, y_ctx = context_features(e_train.context), _labels(train_set, CONTEXT_LABELS)
    x_ctx_dev, y_ctx_dev = context_features(e_dev.context), _labels(dev_set, CONTEXT_LABELS)
    tried = {}
    for hidden in HIDDEN_SIZES:
        _, score = heads.fit_head(x_reply, y_reply, x_dev, y_dev, hidden, SEED, epochs=COMPARISON_EPOCHS)
        tried[f"frozen reply head, hidden={hidden}"] = round(score, 4)
    hidden = max(HIDDEN_SIZES, key=lambda h: tried[f"frozen reply head, hidden={h}"])
    reply_head, _ = heads.fit_head(x_reply, y_reply, x_dev, y_dev, hidden, SEED, epochs=COMPARISON_EPOCHS)
    context_head, ctx_score = heads.fit_head(x_ctx, y_ctx, x_ctx_dev, y_ctx_dev, 128, SEED)
    tried["frozen context head, hidden=128"] = round(ctx_score, 4)
    if export_to is not None:
        shutil.copy(base_dir / "encoder.onnx", export_to / "encoder.onnx")
        heads.export_head(reply_head, x_reply.shape[1], export_to / REPLY_HEAD)
        heads.export_head(context_head, x_ctx.shape[1], export_to / "context_head.onnx")
    return {"tried": tried, "reply_logits": heads.logits(reply_head, x_dev), "context_logits": heads.logits(context_head, x_ctx_dev)}


def _write_calibration_and_thresholds(model_dir: Path, dev_set: list[Example], reply_dev_logits: np.ndarray,
                                      context_dev_logits: np.ndarray, report: dict) -> None:
    y_dev, y_ctx_dev = _labels(dev_set, REPLY_LABELS), _labels(dev_set, CONTEXT_LABELS)
    calibration, probs = {}, {}
    for logit_block, y_block, names in (
        (reply_dev_logits, y_dev, REPLY_LABELS),
        (context_dev_logits, y_ctx_dev, CONTEXT_LABELS),
    ):
        for j, name in enumerate(names):
            scale, shift = thresholds.platt(logit_block[:, j], y_block[:, j])
            calibration[name] = {"scale": scale, "shift": shift}
            probs[name] = thresholds.sigmoid(scale * logit_block[:, j] + shift)
    truth = {n: y_dev[:, j] for j, n in enumerate(REPLY_LABELS)} | {n: y_ctx_dev[:, j] for j, n in enumerate(CONTEXT_LABELS)}
    # The floor (explicit phrases, warning signs) applies at run time, so the crisis thresholds are chosen on the same
    # combined signal. The run-time ceiling for grief and idioms is not applied here: it sits just under the threshold
    # being chosen, so it can only lower near-miss false alarms below what this choice counts.
    lexicon_hits = np.array([crisis_evidence(view_of(e.messages).user_turns[-RECENT_USER_TURNS:]) is not None
                             for e in dev_set])
    probs["crisis"] = np.where(lexicon_hits, np.maximum(probs["crisis"], 0.97), probs["crisis"])
    probs["sycophancy"] = np.maximum(probs["sycophancy_epistemic"], probs["sycophancy_social"])
    truth["sycophancy"] = np.maximum(truth["sycophancy_epistemic"], truth["sycophancy_social"])
    good = y_dev.sum(1) == 0
    ordinary = good & (y_ctx_dev[:, CONTEXT_LABELS.index("distress")] == 0) & (y_ctx_dev[:, CONTEXT_LABELS.index("crisis")] == 0)
    chosen = {
        name: thresholds.best_threshold(probs[name], truth[name], good, ordinary)
        for name in ("pacification", "sycophancy", "sycophancy_epistemic", "sycophancy_social", "rushed_advice")
    }
    chosen["distress"] = thresholds.best_threshold(probs["distress"], truth["distress"])
    chosen["advice_requested"] = thresholds.best_threshold(probs["advice_requested"], truth["advice_requested"])
    near_miss = (truth["crisis"] == 0) & (truth["distress"] == 1)
    chosen["crisis"], chosen["crisis_uncertain"] = thresholds.crisis_thresholds(probs["crisis"], truth["crisis"], near_miss)
    report["dev_items"] = len(dev_set)
    report["dev_crisis_at_threshold"] = thresholds.rates(probs["crisis"], truth["crisis"], chosen["crisis"], near_miss)
    report["dev_crisis_at_uncertain_threshold"] = thresholds.rates(probs["crisis"], truth["crisis"], chosen["crisis_uncertain"],
                                                                    near_miss)
    (model_dir / "calibration.json").write_text(
        json.dumps({"method": "platt on the real-register dev split's logits", "labels": calibration}, indent=2) + "\n"
    )
    (model_dir / "thresholds.json").write_text(
        json.dumps(
            {"model": model_dir.name, "version": "2", "thresholds": {k: round(v, 4) for k, v in chosen.items()},
             "crisis_lexicon_floor": 0.97,
             "rule": f"on the real-register dev split: max F1 with at most {thresholds.MAX_GOOD_FLAG_RATE:.0%} of good replies "
             f"and {thresholds.MAX_ORDINARY_FLAG_RATE:.0%} of ordinary exchanges flagged; crisis: the highest threshold with "
             f"recall >= {thresholds.CRISIS_MIN_RECALL} unless that flags more than {thresholds.CRISIS_MAX_FALSE_ALARMS:.0%} "
             f"of distressed non-crisis conversations; crisis_uncertain: recall >= {thresholds.UNCERTAIN_MIN_RECALL} with at "
             f"most {thresholds.UNCERTAIN_MAX_FALSE_ALARMS:.0%} of them (the lexicon floor applied)"},
            indent=2,
        ) + "\n"
    )


def calibrate_only(model_dir: Path) -> dict:
    """Calibration and thresholds again on the current dev split, for the model already in model_dir (no training)."""
    examples = load_split("train")
    _, dev_set = _dev_and_train(examples)
    reply_dev_logits, context_dev_logits = _multitask_dev_logits(model_dir, dev_set)
    report_path = model_dir / "training_report.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    _write_calibration_and_thresholds(model_dir, dev_set, reply_dev_logits, context_dev_logits, report)
    report_path.write_text(json.dumps(report, indent=2) + "\n")
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--reply", choices=("finetune", "frozen"), default="finetune", help="how the reply labels are scored")
    parser.add_argument("--epochs", type=float, default=2.0, help="fine-tuning epochs (at most)")
    parser.add_argument("--max-minutes", type=float, default=None,
                        help="fewer epochs if the measured CPU throughput says they would not fit in this many minutes")
    parser.add_argument("--compare-frozen", action="store_true", help="also fit heads on frozen features and record their dev AUROC")
    parser.add_argument("--skip-eval", action="store_true", help="do not run the evaluation that writes the model card")
    parser.add_argument("--calibrate-only", action="store_true",
                        help="keep the model; redo calibration and thresholds on the current dev split")
    args = parser.parse_args()
    if args.calibrate_only:
        print(json.dumps(calibrate_only(args.model_dir), indent=2))
    else:
        print(json.dumps(train(args.model_dir, args.reply, args.epochs, args.max_minutes, args.compare_frozen), indent=2))
    if not args.skip_eval:
        from classifiers.training import evaluate

        evaluate.run(args.model_dir)


if __name__ == "__main__":
    main()
