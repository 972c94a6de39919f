"""Calibration and threshold choice on the dev split."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression

# At most this share of good replies (no reply label set) may be flagged for any one label...
MAX_GOOD_FLAG_RATE = 0.08
# ...and at most this share of ordinary exchanges (no reply label, no distress): most real traffic is ordinary, and every
# false flag there is an extra LLM call and a worse reply.
MAX_ORDINARY_FLAG_RATE = 0.01
# Clear crisis (resources at once): recall first, but a hotline banner on a grieving or angry user who is not in danger is
# itself dismissive, so the false alarms on distressed non-crisis conversations are capped.
CRISIS_MIN_RECALL = 0.95
CRISIS_MAX_FALSE_ALARMS = 0.03
# Uncertain crisis (a gentle check-in, no banner): a lower threshold that catches nearly every crisis.
UNCERTAIN_MIN_RECALL = 0.99
UNCERTAIN_MAX_FALSE_ALARMS = 0.08


def platt(logit: np.ndarray, y: np.ndarray, c: float = 100.0) -> tuple[float, float]:
    """Scale and shift so that sigmoid(scale * logit + shift) is calibrated on this split (`c`: inverse regularisation;
    a small split that separates perfectly needs a low one, or the scale runs off and every score becomes 0 or 1)."""
    if y.min() == y.max():
        return 1.0, 0.0
    model = LogisticRegression(C=c).fit(logit.reshape(-1, 1), y)
    return float(model.coef_[0, 0]), float(model.intercept_[0])


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def f1_at(p: np.ndarray, y: np.ndarray, t: float) -> float:
    pred = p >= t
    tp = float((pred & (y == 1)).sum())
    return 2 * tp / max(pred.sum() + (y == 1).sum(), 1)


# Thresholds whose dev F1 is within this of the best form the plateau; the middle of it is chosen.
F1_PLATEAU = 0.01


def best_threshold(p: np.ndarray, y: np.ndarray, good: np.ndarray | None = None, ordinary: np.ndarray | None = None,
                   middle: bool = False) -> float:
    """The max-F1 threshold among those that flag at most MAX_GOOD_FLAG_RATE of good replies and MAX_ORDINARY_FLAG_RATE
    of ordinary exchanges. `middle`: the middle of the near-best plateau instead of its lowest end (a small split that
    separates perfectly would otherwise put the threshold at its lowest score)."""
    feasible = []
    for t in np.unique(np.round(p, 3)):
        if good is not None and good.any() and (p[good] >= t).mean() > MAX_GOOD_FLAG_RATE:
            continue
        if ordinary is not None and ordinary.any() and (p[ordinary] >= t).mean() > MAX_ORDINARY_FLAG_RATE:
            continue
        feasible.append((float(t), f1_at(p, y, float(t))))
    if not feasible:
        return 0.9
    # The best F1 among the feasible thresholds; of near-ties, the lowest (recall first). The dev split is real-register
    # data, so its optimum is taken as it is (on the synthetic split, a plateau midpoint guarded against overfitting).
    top = max(f1 for _, f1 in feasible)
    plateau = [t for t, f1 in feasible if f1 >= top - F1_PLATEAU / 2]
    return float(np.median(plateau)) if middle else min(plateau)


def recall_threshold(p: np.ndarray, y: np.ndarray, min_recall: float) -> float:
    """The highest threshold that keeps recall at or above min_recall."""
    positives = np.sort(p[y == 1])
    if len(positives) == 0:
        return 0.5
    index = int(np.floor((1 - min_recall) * len(positives)))
    return float(max(positives[index], 0.01))


def false_alarm_threshold(p: np.ndarray, negatives: np.ndarray, max_rate: float) -> float:
    """The lowest threshold that flags at most max_rate of the negatives."""
    scores = np.sort(p[negatives])
    if len(scores) == 0:
        return 0.01
    return float(scores[min(int(np.ceil((1 - max_rate) * len(scores))), len(scores) - 1)]) + 1e-6


def crisis_thresholds(p: np.ndarray, y: np.ndarray, near_miss: np.ndarray) -> tuple[float, float]:
    """(clear, uncertain) crisis thresholds. Each is the highest that reaches its recall target, raised where needed so
    that it flags at most its share of near-misses (distressed, not in crisis); the recall then reached is reported."""
    clear = max(recall_threshold(p, y, CRISIS_MIN_RECALL), false_alarm_threshold(p, near_miss, CRISIS_MAX_FALSE_ALARMS))
    uncertain = max(recall_threshold(p, y, UNCERTAIN_MIN_RECALL),
                    false_alarm_threshold(p, near_miss, UNCERTAIN_MAX_FALSE_ALARMS))
    return min(clear, 0.99), min(uncertain, clear)


def rates(p: np.ndarray, y: np.ndarray, t: float, near_miss: np.ndarray | None = None) -> dict[str, float]:
    flagged = p >= t
    out = {"threshold": round(t, 4), "recall": round(float(flagged[y == 1].mean()), 4),
           "false_alarm_rate": round(float(flagged[y == 0].mean()), 4)}
    if near_miss is not None and near_miss.any():
        out["near_miss_false_alarm_rate"] = round(float(flagged[near_miss].mean()), 4)
    return out
