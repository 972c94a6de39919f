"""Calibration and threshold choice on the dev split."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression

# At most this share of good replies (no reply label set) may be flagged for any one label.
MAX_GOOD_FLAG_RATE = 0.10
CRISIS_MIN_RECALL = 0.97


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


def best_threshold(p: np.ndarray, y: np.ndarray, good: np.ndarray | None = None) -> float:
    """Max F1 on positives, among thresholds that flag at most MAX_GOOD_FLAG_RATE of good replies."""
    best_t, best_f1 = 0.5, -1.0
    for t in np.unique(np.round(p, 3)):
        if good is not None and good.any() and (p[good] >= t).mean() > MAX_GOOD_FLAG_RATE:
            continue
        f1 = f1_at(p, y, float(t))
        if f1 > best_f1:
            best_t, best_f1 = float(t), f1
    return best_t


def recall_threshold(p: np.ndarray, y: np.ndarray, min_recall: float = CRISIS_MIN_RECALL) -> float:
    """The highest threshold that keeps recall at or above min_recall."""
    positives = np.sort(p[y == 1])
    if len(positives) == 0:
        return 0.5
    index = int(np.floor((1 - min_recall) * len(positives)))
    return float(max(min(positives[index], 0.5), 0.01))
