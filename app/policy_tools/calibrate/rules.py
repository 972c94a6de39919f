"""Which number in a rule calibration may move, and whether the rule acts on each decision at any value of it.

A rule's condition is a boolean function of its threshold comparison c (`reply.pacification >= 0.3`): with c replaced by
`true` it is H1, by `false` H0, and at threshold t it holds exactly where (score >= t ? H1 : H0). Two evaluations per
decision give the rule's behaviour at every threshold, whatever else the condition says.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.policy.cel_env import FLAG_NAMES, Condition, ConditionError, compile_condition
from app.policy.engine import RequestFacts, variables
from app.policy.loader import LoadedPolicy
from app.policy.model import Rule
from app.policy_tools.calibrate.evaluate import Evaluator
from app.policy_tools.calibrate.reviews import Decision
from app.policy_tools.conditions import Comparison, comparison_spans, string_literals

_RISING = (">=", ">")  # the comparisons where a higher threshold means acting less often


@dataclass(frozen=True)
class Target:
    """The comparison of a rule that calibration moves, and the rule's condition with it replaced by true and false."""

    index: int
    rule: Rule
    label: str
    comparison: Comparison
    span: tuple[int, int]
    when_true: Condition
    when_false: Condition


def find_target(index: int, rule: Rule) -> Target | str:
    """The rule's threshold on its own label's score, or why it has none that calibration can move."""
    flags = [f for f in string_literals(rule.when) if f in FLAG_NAMES]
    on_flags = (f"it acts on the {', '.join(repr(f) for f in flags)} flag: that threshold is the model's "
                f"(see the labels)") if flags else ""
    if rule.label is None:
        return on_flags or "it has no label, so no review says whether it acted rightly"
    names = (f"reply.{rule.label}", f"context.{rule.label}")
    spans = [(a, b, c) for a, b, c in comparison_spans(rule.when) if c.variable in names and c.op in _RISING]
    if not spans:
        return on_flags or f"its condition compares no {rule.label} score with a number"
    if len(spans) > 1:
        return f"its condition compares {rule.label} with a number more than once"
    start, end, comparison = spans[0]
    try:
        when_true, when_false = (compile_condition(rule.when[:start] + word + rule.when[end:]) for word in ("true", "false"))
    except ConditionError as exc:
        return f"its threshold cannot be separated from the rest of the condition ({exc})"
    return Target(index, rule, rule.label, comparison, (start, end), when_true, when_false)


def variable_rows(decisions: Sequence[Decision]) -> list[dict[str, Any]]:
    """What a condition sees for each decision: its scores and context as recorded, its request facts, the first draft."""
    return [variables(d.scores, d.context, RequestFacts(d.model, d.tenant, False, d.turns), 0, list(d.flags))
            for d in decisions]


@dataclass(frozen=True)
class RuleBehaviour:
    """Where one rule's condition holds over a list of decisions, at any value of its threshold (a rule with no
    threshold to move holds where it holds, whatever the value)."""

    score: np.ndarray  # the compared score (nan where absent)
    when_true: np.ndarray
    when_false: np.ndarray
    op: str
    current: float | None  # the threshold in the file; None for a rule with none to move

    def holds(self, thresholds: np.ndarray) -> np.ndarray:
        """(len(thresholds), decisions) booleans."""
        if self.current is None:
            return np.asarray(np.broadcast_to(self.when_true, (len(thresholds), len(self.when_true))))
        above = self.score[None, :] >= thresholds[:, None] if self.op == ">=" else self.score[None, :] > thresholds[:, None]
        return np.where(above, self.when_true[None, :], self.when_false[None, :])

    def holds_at(self, threshold: float | None) -> np.ndarray:
        return np.asarray(self.holds(np.array([threshold if threshold is not None else 0.0]))[0])


def behaviours(policy: LoadedPolicy, rows: Sequence[dict[str, Any]]) -> list[RuleBehaviour]:
    """Each rule's behaviour over rows, in the policy's order."""
    found = []
    for index, (rule, condition) in enumerate(zip(policy.document.spec.rules, policy.conditions, strict=True)):
        target = find_target(index, rule)
        if isinstance(target, Target):
            owner, _, field = target.comparison.variable.partition(".")
            score = np.array([float(row[owner].get(field, np.nan)) for row in rows], dtype=np.float64)
            found.append(RuleBehaviour(score, Evaluator(target.when_true).run(rows), Evaluator(target.when_false).run(rows),
                                       target.comparison.op, target.comparison.value))
        else:
            holds = Evaluator(condition).run(rows)
            found.append(RuleBehaviour(np.zeros(len(rows)), holds, holds, ">=", None))
    return found
