"""user.* in the one CEL environment: conditions over them compile, misspellings are errors, and reach analysis treats
the distress trend as the signed slope it is."""

from __future__ import annotations

import pytest

from app.policy.cel_env import ConditionError, compile_condition
from app.policy.engine import RequestFacts, variables
from app.users.profile import UserView


def test_user_variables_compile_and_misspellings_are_errors() -> None:
    condition = compile_condition("user.prefers_venting >= 0.5 && user.distress_trend > 0.05")
    values = variables({}, {"distress": 0.9}, RequestFacts("m", "t", False, 1,
                                                         UserView({"prefers_venting": 1.0}, None, (0.1, 0.5))),
                       0, [])
    assert values["user"]["prefers_venting"] == 1.0 and values["user"]["distress_trend"] == pytest.approx(0.4)
    assert condition.holds(values)
    with pytest.raises(ConditionError, match="unknown field user.prefers_venting_now"):
        compile_condition("user.prefers_venting_now >= 0.5")


def test_an_unknown_user_has_every_signal_at_zero() -> None:
    values = variables({}, {"distress": 0.9}, RequestFacts("m", "t", False, 1), 0, [])
    assert set(values["user"].values()) == {0.0}


def test_reach_analysis_sees_a_falling_trend(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from app.policy.loader import load_policy_file
    from app.policy_tools.reach import analyse

    path = tmp_path / "p.yaml"
    path.write_text("""apiVersion: heedful/v1
kind: Policy
metadata: {name: p, version: "1"}
spec:
  default: true
  rules:
    - name: calming-down
      when: "user.distress_trend < -0.1"
      action: annotate
    - name: venting
      when: "user.prefers_venting >= 0.5 && reply.rushed_advice >= 0.45"
      action: regenerate
      label: rushed_advice
""")
    assert analyse(load_policy_file(path)) == []
