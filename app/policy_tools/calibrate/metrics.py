"""Precision, recall and action rate of one threshold (or a grid of them) with 95% intervals, and the threshold choice.

Everything is counted, not modelled: at a threshold, `flagged` reviewed decisions act, `true_positives` of them were marked
as having the label by a reviewer, `positives` reviewed decisions have it at all; `acted` of the `traffic` decisions
(the shadow sample, or the reviewed ones when there is none) act. Intervals are Wilson score intervals on those counts:
they say how much the sample can tell, not how far the reviews are from the truth.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# The thresholds a proposal may take: two decimals, as a person writes them in a policy.
GRID = np.round(np.arange(1, 100) / 100, 2)
# Fewer flagged reviewed decisions than this at a threshold and its precision is not trusted enough to propose it.
MIN_FLAGGED = 20
_Z = 1.96

# thresholds (k,) -> which decisions act at each, (k, n) booleans
Acts = Callable[[np.ndarray], np.ndarray]


def wilson(k: int, n: int) -> tuple[float, float]:
    """95% Wilson score interval of a proportion k/n ((0, 1) when n is 0)."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    centre = (p + _Z * _Z / (2 * n)) / (1 + _Z * _Z / n)
    half = _Z * math.sqrt(p * (1 - p) / n + _Z * _Z / (4 * n * n)) / (1 + _Z * _Z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Point:
    threshold: float
    flagged: int
    true_positives: int
    positives: int
    reviewed: int
    acted: int
    traffic: int

    @property
    def precision(self) -> float | None:
        return self.true_positives / self.flagged if self.flagged else None

    @property
    def recall(self) -> float | None:
        return self.true_positives / self.positives if self.positives else None

    @property
    def rate(self) -> float | None:
        return self.acted / self.traffic if self.traffic else None

    @property
    def precision_interval(self) -> tuple[float, float]:
        return wilson(self.true_positives, self.flagged)

    @property
    def recall_interval(self) -> tuple[float, float]:
        return wilson(self.true_positives, self.positives)

    @property
    def rate_interval(self) -> tuple[float, float]:
        return wilson(self.acted, self.traffic)

    def as_dict(self) -> dict[str, object]:
        def rounded(value: float | None) -> float | None:
            return None if value is None else round(value, 4)

        return {"threshold": self.threshold, "precision": rounded(self.precision),
                "precision_95": [round(x, 4) for x in self.precision_interval], "recall": rounded(self.recall),
                "recall_95": [round(x, 4) for x in self.recall_interval], "action_rate": rounded(self.rate),
                "action_rate_95": [round(x, 4) for x in self.rate_interval], "flagged": self.flagged,
                "true_positives": self.true_positives, "positives": self.positives, "reviewed": self.reviewed,
                "acted": self.acted, "traffic": self.traffic}


def points(thresholds: np.ndarray, reviewed_acts: Acts, truth: np.ndarray, traffic_acts: Acts, traffic: int) -> list[Point]:
    """The counts at each threshold, all thresholds at once."""
    acts = reviewed_acts(thresholds)
    flagged = acts.sum(axis=1)
    true_positives = (acts & (truth == 1)[None, :]).sum(axis=1)
    acted = traffic_acts(thresholds).sum(axis=1)
    positives = int(truth.sum())
    return [Point(float(t), int(f), int(tp), positives, len(truth), int(a), traffic)
            for t, f, tp, a in zip(thresholds, flagged, true_positives, acted, strict=True)]


def choose(curve: list[Point], target_precision: float | None, max_rate: float | None) -> tuple[Point | None, str]:
    """The proposed point on a grid curve and why; None with the reason when no threshold meets the target.

    Target precision: the lowest threshold (most recall) whose precision reaches the target on at least MIN_FLAGGED
    flagged reviewed decisions. Maximum action rate: the lowest threshold whose action rate is at most the maximum."""
    if target_precision is not None:
        trusted = [p for p in curve if p.flagged >= MIN_FLAGGED and p.precision is not None]
        meeting = [p for p in trusted if p.precision is not None and p.precision >= target_precision]
        if meeting:
            chosen = min(meeting, key=lambda p: p.threshold)
            low = chosen.precision_interval[0]
            why = (f"the lowest threshold with precision >= {target_precision:g}"
                   + ("" if low >= target_precision else f"; its interval reaches down to {low:.3f}"))
            return chosen, why
        if not trusted:
            return None, f"no threshold flags at least {MIN_FLAGGED} reviewed decisions"
        best = max(trusted, key=lambda p: (p.precision or 0.0, p.threshold))
        return None, (f"no threshold reaches precision {target_precision:g}; the best is {best.precision:.2f} at "
                      f"{best.threshold:g} ({best.true_positives}/{best.flagged})")
    assert max_rate is not None
    under = [p for p in curve if p.rate is not None and p.rate <= max_rate]
    if not under:
        return None, f"no threshold keeps the action rate at or below {max_rate:g}"
    return min(under, key=lambda p: p.threshold), f"lowest threshold with action rate <= {max_rate:g}"
