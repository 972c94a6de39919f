"""Evaluate one CEL condition over many decisions fast, with exactly the engine's result.

A score that a condition only compares with number literals (`reply.pacification >= 0.3`) can only change the result by
crossing one of those numbers, so every value between two of them behaves alike. Each decision's values are reduced to
that region (and kept as they are for everything else the condition reads: a score compared with another score, a
tenant, the flags), and the condition runs once per distinct reduced key instead of once per decision: a CEL call costs
tens of microseconds, and 10,000 decisions times every rule would otherwise take many seconds.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from app.policy.cel_env import Condition, ConditionError
from app.policy_tools.conditions import comparison_spans, mask_strings, references, value_of

_ARITHMETIC = tuple("+-*/%")


def _occurrences(masked: str, name: str) -> int:
    owner, _, field = name.partition(".")
    return len(re.findall(rf"\b{owner}\s*\.\s*{field}\b", masked))


def _stands_alone(masked: str, start: int, end: int) -> bool:
    """A comparison that is a whole operand: `a + reply.x >= 0.5` compares a sum, not reply.x, with 0.5."""
    before, after = masked[:start].rstrip()[-1:], masked[end:].lstrip()[:1]
    return before not in _ARITHMETIC and after not in _ARITHMETIC


def _regions(values: np.ndarray, literals: np.ndarray) -> np.ndarray:
    """Region index of each value among sorted literals: 2i below literal i (or above the last), 2i+1 equal to it."""
    index = np.searchsorted(literals, values, side="left")
    equal = (index < len(literals)) & (literals[np.minimum(index, len(literals) - 1)] == values)
    return np.where(equal, 2 * index + 1, 2 * index)


def _representative(region: int, literals: np.ndarray) -> float:
    i = region // 2
    if region % 2:
        return float(literals[i])
    if i == 0:
        return float(literals[0]) - 1.0
    if i == len(literals):
        return float(literals[-1]) + 1.0
    return float(literals[i - 1] + literals[i]) / 2


class Evaluator:
    """One condition over a fixed list of decisions' variable dicts (as app.policy.engine.variables builds them)."""

    def __init__(self, condition: Condition) -> None:
        self.condition = condition
        masked = mask_strings(condition.source)
        self._reduced: dict[str, np.ndarray] = {}
        self._kept: list[str] = []
        found = [c for start, end, c in comparison_spans(condition.source) if _stands_alone(masked, start, end)]
        for name in sorted(references(condition.source)):
            literals = [c.value for c in found if c.variable == name]
            if name.startswith(("reply.", "context.")) and literals and len(literals) == _occurrences(masked, name):
                self._reduced[name] = np.array(sorted(set(literals)), dtype=np.float64)
            else:
                self._kept.append(name)
        self.evaluations = 0

    def run(self, rows: Sequence[dict[str, Any]]) -> np.ndarray:
        """Whether the condition holds for each row; a row where it cannot be evaluated (a missing score) counts as not
        holding, as the policy would not act on it either."""
        keys: list[list[Any]] = [[] for _ in rows]
        regions: dict[str, np.ndarray] = {}
        for name, literals in self._reduced.items():
            raw = [value_of(name, row) for row in rows]
            missing = np.array([v is None for v in raw], dtype=bool)
            values = np.array([np.nan if v is None else float(v) for v in raw], dtype=np.float64)
            region = np.where(missing, -1, _regions(np.nan_to_num(values), literals))
            regions[name] = region
            for parts, r in zip(keys, region.tolist(), strict=True):
                parts.append(r)
        for name in self._kept:
            for parts, row in zip(keys, rows, strict=True):
                value = value_of(name, row)
                parts.append(tuple(value) if isinstance(value, list) else value)
        results: dict[tuple[Any, ...], bool] = {}
        out = np.zeros(len(rows), dtype=bool)
        for i, (parts, row) in enumerate(zip(keys, rows, strict=True)):
            key: tuple[Any, ...] = tuple(parts)
            known = results.get(key)
            if known is None:
                known = results[key] = self._holds(row, {n: int(regions[n][i]) for n in self._reduced})
            out[i] = known
        return out

    def _holds(self, row: dict[str, Any], regions: dict[str, int]) -> bool:
        self.evaluations += 1
        if any(r < 0 for r in regions.values()):
            return False
        values = {k: (dict(v) if isinstance(v, dict) else v) for k, v in row.items()}
        for name, region in regions.items():
            owner, _, field = name.partition(".")
            values[owner][field] = _representative(region, self._reduced[name])
        try:
            return self.condition.holds(values)
        except ConditionError:
            return False
