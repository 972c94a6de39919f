"""Calibration and threshold choice on the dev split."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression

# At most this share of good replies (no reply label set) may be flagged for any one label.
MAX_GOOD_FLAG_RATE = 0.10
CRISIS_MIN_RECALL = 0.97
# A crisis banner on a grieving or stressed user who is not in danger is itself dismissive; cap the false alarms.
CRISIS_MAX_FALSE_ALARMS = 0.10


def platt(logit: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Scale and shift so that sigmoid(scale * logit + shift) is calibrated on this split."""
    if y.min() == y.max():
        return 1.0, 0.0
    model = LogisticRegression(C=100.0).fit(logit.reshape(-1, 1), y)
    return float(model.coef_[0, 0]), float(model.intercept_[0])


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def f1_at(p: np.ndarray, y: np.ndarray, t: float) -> float:
    pred = p >= t
    tp = float((pred & (y == 1)).sum())
    return 2 * tp / max(pred.sum() + (y == 1).sum(), 1)


# Thresholds whose dev F1 is within this of the best form the plateau; the middle of it is chosen.
F1_PLATEAU = 0.01


def best_threshold(p: np.ndarray, y: np.ndarray, good: np.ndarray | None = None) -> float:
    """The middle of the max-F1 plateau, among thresholds that flag at most MAX_GOOD_FLAG_RATE of good replies.

    A synthetic dev split separates so cleanly that F1 is flat over a wide range; its lowest point sits right against
    the positives and over-flags under distribution shift (real conversations), so the midpoint is taken instead.
    """
    feasible = []
    for t in np.unique(np.round(p, 3)):
        if good is not None and good.any() and (p[good] >= t).mean() > MAX_GOOD_FLAG_RATE:
            continue
        feasible.append((float(t), f1_at(p, y, float(t))))
    if not feasible:
        return 0.5
    top = max(f1 for _, f1 in feasible)
    plateau = [t for t, f1 in feasible if f1 >= top - F1_PLATEAU]
    return (min(plateau) + max(plateau)) / 2


def recall_threshold(p: np.ndarray, y: np.ndarray, min_recall: float = CRISIS_MIN_RECALL) -> float:
    """The highest threshold that keeps recall at or above min_recall."""
    positives = np.sort(p[y == 1])
    if len(positives) == 0:
        return 0.5
    index = int(np.floor((1 - min_recall) * len(positives)))
    return float(max(min(positives[index], 0.5), 0.01))


def crisis_threshold(p: np.ndarray, y: np.ndarray) -> float:
    """Recall first (>= CRISIS_MIN_RECALL on dev), unless that would flag more than CRISIS_MAX_FALSE_ALARMS of non-crisis
    conversations; then the lowest threshold within the false-alarm cap (the recall it reaches is reported)."""
    by_recall = recall_threshold(p, y)
    negatives = np.sort(p[y == 0])
    if len(negatives) == 0:
        return by_recall
    cap = float(negatives[min(int(np.ceil((1 - CRISIS_MAX_FALSE_ALARMS) * len(negatives))), len(negatives) - 1)])
    return max(by_recall, cap)


def rates(p: np.ndarray, y: np.ndarray, t: float) -> dict[str, float]:
    flagged = p >= t
    return {"threshold": round(t, 4), "recall": round(float(flagged[y == 1].mean()), 4),
            "false_alarm_rate": round(float(flagged[y == 0].mean()), 4)}
