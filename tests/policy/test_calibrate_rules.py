"""Calibration's fast rule evaluation gives exactly what the policy engine gives, at any threshold."""

from __future__ import annotations

import random

import numpy as np
import pytest

from app.policy.cel_env import compile_condition
from app.policy.engine import RequestFacts, evaluate, variables
from app.policy.loader import parse_policy
from app.policy_tools.calibrate.evaluate import Evaluator
from app.policy_tools.calibrate.reviews import Decision
from app.policy_tools.calibrate.rules import Target, behaviours, find_target, variable_rows

CONDITIONS = [
    "context.distress >= 0.26 && reply.pacification >= 0.3",
    "reply.sycophancy_epistemic >= 0.26 && reply.sycophancy_epistemic >= reply.sycophancy_social",
    "(reply.rushed_advice > 0.4 || context.crisis >= 0.9) && !(request.tenant == 'beta') && context.advice_requested < 0.22",
    "'crisis_uncertain' in flags && attempt == 0",
    "reply.pacification + reply.rushed_advice >= 0.5",
]


def _decisions(count: int, seed: int) -> list[Decision]:
    rng = random.Random(seed)
    # Values on the literals themselves too: the regions' edges are where a shortcut would go wrong.
    edges = [0.2, 0.22, 0.26, 0.3, 0.4, 0.5, 0.9]

    def value() -> float:
        return rng.choice(edges) if rng.random() < 0.2 else round(rng.random(), 3)

    out = []
    for n in range(count):
        reply = {k: value() for k in ("pacification", "sycophancy_epistemic", "sycophancy_social", "rushed_advice")}
        reply["sycophancy"] = max(reply["sycophancy_epistemic"], reply["sycophancy_social"])
        context = {k: value() for k in ("distress", "crisis", "advice_requested")}
        flags = tuple(f for f in ("crisis", "crisis_uncertain") if rng.random() < 0.2)
        out.append(Decision(n, reply, context, flags, tenant=rng.choice(["acme", "beta"])))
    return out


@pytest.mark.parametrize("source", CONDITIONS)
def test_evaluator_matches_the_condition_on_every_row(source):
    condition = compile_condition(source)
    rows = variable_rows(_decisions(2000, 1))
    fast = Evaluator(condition)
    assert list(fast.run(rows)) == [condition.holds(row) for row in rows]
    # Scores used only in comparisons collapse to a few keys; a score inside a sum is kept whole.
    assert (fast.evaluations < 100) is ("+" not in source)


POLICY = """
apiVersion: heedful/v1
kind: Policy
metadata: {name: t}
spec:
  rules:
    - name: crisis
      when: "'crisis' in flags"
      action: prepend
      continue: true
      text: help
    - name: agree
      when: "reply.sycophancy_epistemic >= 0.26 && reply.sycophancy_epistemic >= reply.sycophancy_social"
      action: regenerate
      label: sycophancy_epistemic
    - name: soothe
      when: "(context.distress >= 0.26 && reply.pacification >= 0.3) || context.crisis >= 0.9"
      action: regenerate
      label: pacification
"""


@pytest.mark.parametrize("threshold", [0.05, 0.26, 0.3, 0.55, 0.9])
def test_a_rule_acts_where_the_engine_decides_with_it_at_any_threshold(threshold):
    policy = parse_policy(POLICY, "t.yaml")
    decisions = _decisions(1500, 2)
    found = behaviours(policy, variable_rows(decisions))
    # `crisis` continues, so only `agree` (at its number in the file) can take a decision before `soothe`.
    soothe = found[2].holds(np.array([threshold]))[0] & ~found[1].holds_at(found[1].current)
    moved = parse_policy(POLICY.replace("reply.pacification >= 0.3", f"reply.pacification >= {threshold}"), "t.yaml")
    decided = [evaluate(moved, variables(d.scores, d.context, RequestFacts("", d.tenant, False, 1), 0, list(d.flags)))
               .rule_name == "soothe" for d in decisions]
    assert list(soothe) == decided
    assert 0 < sum(decided) < len(decided)


def test_rules_without_a_number_on_their_label_say_why():
    policy = parse_policy(POLICY, "t.yaml")
    crisis = find_target(0, policy.document.spec.rules[0])
    assert isinstance(crisis, str) and "'crisis' flag" in crisis
    agree = find_target(1, policy.document.spec.rules[1])
    assert isinstance(agree, Target) and str(agree.comparison) == "reply.sycophancy_epistemic >= 0.26"
