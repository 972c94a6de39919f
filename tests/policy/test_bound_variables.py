"""Conditions read variables converted to CEL once per evaluation (cel_env.bind); they must decide as a plain dict does."""

from __future__ import annotations

import itertools

from app.policy.cel_env import bind, probe_variables
from app.policy.loader import load_policy_file

from .conftest import POLICIES


def test_every_shipped_condition_decides_the_same_on_bound_variables() -> None:
    checked = 0
    outcomes = set()
    for path in sorted(POLICIES.glob("*.yaml")):
        if path.name.endswith("_test.yaml"):
            continue
        policy = load_policy_file(path)
        for value, flags, turns in itertools.product((0.0, 0.3, 0.55, 0.7, 1.0), ([], ["crisis"], ["crisis_uncertain"]),
                                                     (1, 6)):
            variables = probe_variables(value) | {"flags": flags}
            variables["request"] = variables["request"] | {"turns": turns}
            bound = bind(variables)
            for condition in policy.conditions:
                held = condition.holds(bound)
                assert held is condition.holds(variables), (path.name, condition.source, value, flags)
                outcomes.add(held)
                checked += 1
    assert checked > 500 and outcomes == {True, False}
