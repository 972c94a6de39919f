"""Evaluate one CEL condition over many decisions fast, with exactly the engine's result.

A score that a condition only uses inside plain comparisons (`reply.pacification >= 0.3`,
`reply.sycophancy_epistemic >= reply.sycophancy_social`) can only change the result through those comparisons' truth.
So each decision is reduced to a key: the truth of every such comparison (computed for all decisions at once) and the
raw value of everything else the condition reads (a tenant, the flags, a score used in arithmetic). The condition runs
once per distinct key, on the first real decision with that key, instead of once per decision: a CEL call costs tens of
microseconds, and 10,000 decisions times every rule would otherwise take seconds.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.policy.cel_env import Condition, ConditionError
from app.policy_tools.conditions import comparison_spans, mask_strings, references, value_of

_ARITHMETIC = tuple("+-*/%")
_SCORE = r"(?:reply|context)\s*\.\s*[A-Za-z_][A-Za-z0-9_]*"
_SCORE_PAIR = re.compile(rf"(?<![\w.])(?P<a>{_SCORE})\s*(?P<op><=|>=|==|!=|<|>)\s*(?P<b>{_SCORE})(?![\w.])")
_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq, "!=": operator.ne}
_MISSING = 2  # a comparison over a score the record lacks: the engine fails there, so the key must differ


@dataclass(frozen=True)
class _Atom:
    left: str
    op: str
    right: str | float


def _name(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _stands_alone(masked: str, start: int, end: int) -> bool:
    """A comparison that is a whole operand: `a + reply.x >= 0.5` compares a sum, not reply.x, with 0.5."""
    before, after = masked[:start].rstrip()[-1:], masked[end:].lstrip()[:1]
    return before not in _ARITHMETIC and after not in _ARITHMETIC


def _occurrences(masked: str, name: str) -> int:
    owner, _, field = name.partition(".")
    return len(re.findall(rf"\b{owner}\s*\.\s*{field}\b", masked))


class Evaluator:
    """One condition over a list of decisions' variable dicts (as app.policy.engine.variables builds them)."""

    def __init__(self, condition: Condition) -> None:
        self.condition = condition
        masked = mask_strings(condition.source)
        atoms = [_Atom(c.variable, c.op, c.value) for start, end, c in comparison_spans(condition.source)
                 if c.variable.startswith(("reply.", "context.")) and _stands_alone(masked, start, end)]
        atoms += [_Atom(_name(m["a"]), m["op"], _name(m["b"])) for m in _SCORE_PAIR.finditer(masked)
                  if _stands_alone(masked, m.start(), m.end())]
        self._atoms = atoms
        mentions: dict[str, int] = {}
        for atom in atoms:
            for side in (atom.left, atom.right):
                if isinstance(side, str):
                    mentions[side] = mentions.get(side, 0) + 1
        # Everything not fully described by the atoms' truth is kept as it is in the key.
        self._kept = [name for name in sorted(references(condition.source))
                      if mentions.get(name, 0) != _occurrences(masked, name) or not name.startswith(("reply.", "context."))]
        self.evaluations = 0

    def _truths(self, rows: Sequence[dict[str, Any]]) -> list[np.ndarray]:
        columns: dict[str, np.ndarray] = {}

        def column(name: str) -> np.ndarray:
            if name not in columns:
                raw = [value_of(name, row) for row in rows]
                columns[name] = np.array([np.nan if v is None else float(v) for v in raw], dtype=np.float64)
            return columns[name]

        out = []
        for atom in self._atoms:
            left = column(atom.left)
            right = column(atom.right) if isinstance(atom.right, str) else np.float64(atom.right)
            missing = np.isnan(left) | (np.isnan(right) if isinstance(atom.right, str) else False)
            out.append(np.where(missing, _MISSING, _OPS[atom.op](left, right)).astype(np.int8))
        return out

    def run(self, rows: Sequence[dict[str, Any]]) -> np.ndarray:
        """Whether the condition holds for each row; a row where it cannot be evaluated (a missing score) counts as not
        holding, as the policy would not act on it either."""
        keys: list[list[Any]] = [[] for _ in rows]
        for truth in self._truths(rows):
            for parts, value in zip(keys, truth.tolist(), strict=True):
                parts.append(value)
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
                known = results[key] = self._holds(row)
            out[i] = known
        return out

    def _holds(self, row: dict[str, Any]) -> bool:
        self.evaluations += 1
        try:
            return self.condition.holds(row)
        except ConditionError:
            return False
