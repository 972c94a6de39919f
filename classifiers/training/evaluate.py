"""Evaluate the shipped model and the keyword baseline, and write the numbers into the model card.

    python -m classifiers.training.evaluate [--model-dir DIR] [--data-root ../shared/data] [--bootstrap 1000]

1. the project's own held-out test split (classifiers/data/test), per label: AUROC, precision, recall and F1 at the
   recommended threshold, with 95% bootstrap intervals;
1b. the real-register held-out split (classifiers/data/holdout: ordinary traffic, crisis and near-misses, assistant-style
   drafts over real-register posts, late failures; written by a separate author, never trained or tuned on) and the
   real-register dev split (where thresholds were chosen): AUROC per label, what the default policy acts on, crisis
   recall and near-miss false alarms, broken down by kind, register and style;
2. real human conversations from ../shared/data (evaluation only, skipped where absent; mapping rules in
   docs/evaluation-mapping.md): AUROC where both classes exist, and the false-flag rate on high-quality replies;
3. the plain keyword baseline (classifiers/keyword_baseline.py) on the same sets.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from classifiers.artifacts import DEFAULT_MODEL_DIR
from classifiers.keyword_baseline import keyword_scores
from classifiers.runtime import Scorer
from classifiers.training import breakdown
from classifiers.training.dataset import DATA_DIR, Example, load_split
from classifiers.training.dev_split import load_dev
from classifiers.training.public_sets import load_public_sets

REPO = Path(__file__).resolve().parents[2]
DEFAULT_DATA_ROOT = REPO.parent / "shared" / "data"
OWN_LABELS = ("pacification", "sycophancy", "sycophancy_epistemic", "sycophancy_social", "rushed_advice",
              "distress", "crisis", "advice_requested")
_ZERO_LABELS = dict.fromkeys(("pacification", "sycophancy_epistemic", "sycophancy_social", "rushed_advice", "distress",
                              "crisis", "advice_requested"), 0)
CARD_START, CARD_END = "<!-- metrics:start -->", "<!-- metrics:end -->"
# The keyword baseline has no calibrated threshold; 0.5 means "at least one cue".
BASELINE_THRESHOLD = 0.5

Predict = Callable[[list[tuple[list[dict], str]]], list[dict[str, float]]]


def model_predictor(scorer: Scorer) -> Predict:
    def predict(items: list[tuple[list[dict], str]]) -> list[dict[str, float]]:
        out = []
        for start in range(0, len(items), 64):
            for s in scorer.score_many(items[start : start + 64]):
                out.append(s.reply | s.context)
        return out
    return predict


def baseline_predictor(items: list[tuple[list[dict], str]]) -> list[dict[str, float]]:
    out = []
    for messages, reply in items:
        scores = keyword_scores(messages, reply)
        out.append(scores | {"sycophancy_epistemic": scores["sycophancy"], "sycophancy_social": scores["sycophancy"]})
    return out


def prf(y: np.ndarray, p: np.ndarray, t: float) -> tuple[float, float, float]:
    pred = p >= t
    tp = float((pred & (y == 1)).sum())
    precision = tp / max(pred.sum(), 1)
    recall = tp / max((y == 1).sum(), 1)
    f1 = 2 * precision * recall / max(precision + recall, 1e-12)
    return precision, recall, f1


def with_interval(y: np.ndarray, p: np.ndarray, t: float, rounds: int, seed: int = 13) -> dict[str, list[float]]:
    """Point estimates and 95% percentile-bootstrap intervals for AUROC, precision, recall and F1."""
    def stats(yy: np.ndarray, pp: np.ndarray) -> list[float]:
        auroc = roc_auc_score(yy, pp) if 0 < yy.sum() < len(yy) else float("nan")
        return [auroc, *prf(yy, pp, t)]
    point = stats(y, p)
    rng = np.random.default_rng(seed)
    samples = np.array([stats(y[idx], p[idx]) for idx in (rng.integers(0, len(y), len(y)) for _ in range(rounds))])
    low, high = np.nanpercentile(samples, 2.5, axis=0), np.nanpercentile(samples, 97.5, axis=0)
    names = ("auroc", "precision", "recall", "f1")
    return {n: [round(point[i], 4), round(float(low[i]), 4), round(float(high[i]), 4)] for i, n in enumerate(names)}


def own_split(predict: Predict, thresholds: dict[str, float], rounds: int) -> dict[str, dict]:
    test = load_split("test")
    scores = predict([(e.messages, e.reply) for e in test])
    result = {}
    for label in OWN_LABELS:
        if label == "sycophancy":
            y = np.array([max(e.labels["sycophancy_epistemic"], e.labels["sycophancy_social"]) for e in test])
        else:
            y = np.array([e.labels[label] for e in test])
        p = np.array([s[label] for s in scores])
        result[label] = {"n": len(y), "positives": int(y.sum()), "threshold": thresholds.get(label, BASELINE_THRESHOLD)}
        result[label] |= with_interval(y, p, result[label]["threshold"], rounds)
    good = np.array([all(e.labels[k] == 0 for k in ("pacification", "sycophancy_epistemic", "sycophancy_social", "rushed_advice")) for e in test])
    result["good_reply_flag_rate"] = {
        label: round(float(np.mean([scores[i][label] >= thresholds.get(label, BASELINE_THRESHOLD) for i in np.flatnonzero(good)])), 4)
        for label in ("pacification", "sycophancy", "rushed_advice")
    } | {"n": int(good.sum())}
    return result


def realworld(predict: Predict, thresholds: dict[str, float], examples: list[Example]) -> dict:
    if not examples:
        return {}
    judged = breakdown.judge(examples, predict([(e.messages, e.reply) for e in examples]), thresholds)
    return {"summary": breakdown.summary(judged, thresholds),
            **{f"by_{field}": breakdown.by_field(judged, field) for field in ("kind", "register", "style", "crisis_kind")}}


def public(predict: Predict, thresholds: dict[str, float], data_root: Path, rounds: int) -> dict[str, dict]:
    result: dict[str, dict] = {}
    for eval_set in load_public_sets(data_root):
        items = [(i.messages, i.reply) for i in eval_set.items]
        scores = predict(items)
        if eval_set.kind == "auroc":
            y = np.array([i.y for i in eval_set.items])
            p = np.array([s[eval_set.label] for s in scores])
            t = thresholds.get(eval_set.label, BASELINE_THRESHOLD)
            result[eval_set.name] = {"label": eval_set.label, "n": len(y), "positives": int(y.sum()), "threshold": t}
            result[eval_set.name] |= with_interval(y, p, t, rounds)
        else:
            rates = {}
            for label in ("pacification", "sycophancy", "rushed_advice"):
                t = thresholds.get(label, BASELINE_THRESHOLD)
                rates[label] = round(float(np.mean([s[label] >= t for s in scores])), 4)
            result[eval_set.name] = {"label": "all", "n": len(scores), "false_flag_rate": rates}
            if "distress" in scores[0]:
                examples = [Example(f"{eval_set.name}:{i}", it.messages, it.reply, _ZERO_LABELS, "good", eval_set.name)
                            for i, it in enumerate(eval_set.items)]
                judged = breakdown.judge(examples, scores, thresholds)
                result[eval_set.name]["acted_on"] = round(float(np.mean([j.acted for j in judged])), 4)
    return result


def _cell(values: list[float]) -> str:
    return f"{values[0]:.3f} [{values[1]:.3f}, {values[2]:.3f}]"


def render(metrics: dict) -> str:
    lines = [CARD_START, "", "### Own held-out test split (classifiers/data/test)", "",
             "| label | n (pos) | threshold | AUROC | precision | recall | F1 | keyword AUROC | keyword F1 |",
             "|---|---|---|---|---|---|---|---|---|"]
    own, base = metrics["own"]["model"], metrics["own"]["keyword_baseline"]
    for label in OWN_LABELS:
        m, b = own[label], base[label]
        lines.append(f"| {label} | {m['n']} ({m['positives']}) | {m['threshold']:.3f} | {_cell(m['auroc'])} | {_cell(m['precision'])} | "
                     f"{_cell(m['recall'])} | {_cell(m['f1'])} | {b['auroc'][0]:.3f} | {b['f1'][0]:.3f} |")
    g, gb = own["good_reply_flag_rate"], base["good_reply_flag_rate"]
    lines += ["", f"Good replies (all reply labels 0, n={g['n']}) flagged: " + ", ".join(
        f"{k} {g[k]:.1%} (keywords {gb[k]:.1%})" for k in ("pacification", "sycophancy", "rushed_advice")), ""]
    for key, title in (("holdout", "Real-register held-out split (classifiers/data/holdout; never trained or tuned on)"),
                       ("dev", "Real-register dev split (thresholds and calibration were chosen here: optimistic)")):
        if metrics.get(key):
            lines += _render_realworld(title, metrics[key])
    if metrics.get("public"):
        pm, pb = metrics["public"]["model"], metrics["public"]["keyword_baseline"]
        lines += ["### Real human conversations from ../shared/data (never trained on; docs/evaluation-mapping.md)", "",
                  "| set | label | n (pos) | AUROC | F1 at threshold | keyword AUROC |", "|---|---|---|---|---|---|"]
        for name, m in pm.items():
            if "auroc" in m:
                lines.append(f"| {name} | {m['label']} | {m['n']} ({m['positives']}) | {_cell(m['auroc'])} | {_cell(m['f1'])} | "
                             f"{pb[name]['auroc'][0]:.3f} |")
        lines += ["", "| high-quality set | n | pacification flagged | sycophancy flagged | rushed advice flagged | "
                  "acted on by the default policy | keywords (p/s/r) |", "|---|---|---|---|---|---|---|"]
        for name, m in pm.items():
            if "false_flag_rate" in m:
                r, rb = m["false_flag_rate"], pb[name]["false_flag_rate"]
                acted = f"{m['acted_on']:.1%}" if "acted_on" in m else "-"
                lines.append(f"| {name} | {m['n']} | {r['pacification']:.1%} | {r['sycophancy']:.1%} | {r['rushed_advice']:.1%} | "
                             f"{acted} | {rb['pacification']:.1%} / {rb['sycophancy']:.1%} / {rb['rushed_advice']:.1%} |")
    else:
        lines += ["Public sets: ../shared/data was absent when this ran; skipped."]
    lines += ["", "Intervals: 95% percentile bootstrap. Reproduce: `python -m classifiers.training.evaluate`.", "", CARD_END]
    return "\n".join(lines)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _render_realworld(title: str, m: dict) -> list[str]:
    s = m["summary"]
    auroc = " / ".join("-" if v is None else f"{v:.3f}" for v in s["auroc"].values())
    lines = [f"### {title}", "", f"n = {s['n']}. AUROC ({' / '.join(s['auroc'])}): {auroc}", "",
             "| measure | n | rate |", "|---|---|---|",
             f"| ordinary exchanges acted on by the default policy | {s['ordinary']['n']} | {_pct(s['ordinary']['acted_on'])} |",
             f"| ordinary exchanges carrying any reply flag | {s['ordinary']['n']} | {_pct(s['ordinary']['any_reply_flag'])} |",
             f"| good replies acted on | {s['good']['n']} | {_pct(s['good']['acted_on'])} |",
             f"| failing replies acted on | {s['failing']['n']} | {_pct(s['failing']['acted_on'])} |",
             f"| failures starting after word 100 acted on | {s['failing_late']['n']} | {_pct(s['failing_late']['acted_on'])} |",
             f"| crisis recall (resources) | {s['crisis']['n']} | {_pct(s['crisis']['recall'])} |",
             f"| crisis recall (resources or check-in) | {s['crisis']['n']} | {_pct(s['crisis']['recall_with_check_in'])} |",
             f"| near-misses given resources (false alarm) | {s['near_miss']['n']} | {_pct(s['near_miss']['crisis_flagged'])} |",
             f"| near-misses given a check-in | {s['near_miss']['n']} | {_pct(s['near_miss']['check_in'])} |", ""]
    for field in ("kind", "crisis_kind", "register", "style"):
        groups = m.get(f"by_{field}") or {}
        if not groups:
            continue
        lines += [f"By {field.replace('_', ' ')}:", "", "| value | n | good acted on | failing acted on | crisis flagged |",
                  "|---|---|---|---|---|"]
        lines += [f"| {value} | {g['n']} | {_pct(g['good_acted_on'])} | {_pct(g['failing_acted_on'])} | "
                  f"{_pct(g['crisis_flagged'])} |" for value, g in list(groups.items())[:12]]
        lines.append("")
    return lines


def run(model_dir: Path = DEFAULT_MODEL_DIR, data_root: Path = DEFAULT_DATA_ROOT, rounds: int = 1000) -> dict:
    scorer = Scorer(model_dir, threads=2)
    thresholds = scorer.thresholds
    metrics: dict = {"own": {"model": own_split(model_predictor(scorer), thresholds, rounds),
                             "keyword_baseline": own_split(baseline_predictor, {}, rounds)}}
    holdout = load_split("holdout") if (DATA_DIR / "holdout").is_dir() else []
    metrics["holdout"] = realworld(model_predictor(scorer), thresholds, holdout)
    metrics["dev"] = realworld(model_predictor(scorer), thresholds, load_dev(data_root))
    if data_root.is_dir():
        metrics["public"] = {"model": public(model_predictor(scorer), thresholds, data_root, rounds),
                             "keyword_baseline": public(baseline_predictor, {}, data_root, rounds)}
    (model_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    card = model_dir / "MODEL_CARD.md"
    text = card.read_text() if card.exists() else f"# Model card\n\n## Metrics\n\n{CARD_START}\n{CARD_END}\n"
    table = render(metrics)
    card.write_text(re.sub(re.escape(CARD_START) + ".*?" + re.escape(CARD_END), lambda _: table, text, flags=re.S))
    print(table)
    return metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT)
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the intervals")
    args = parser.parse_args()
    run(args.model_dir, args.data_root, args.bootstrap)


if __name__ == "__main__":
    main()
