"""explain fills values into each condition; diff reports meaning; the committed schema is the generated one."""

from __future__ import annotations

import json

from app.policy.loader import load_policy_file
from app.policy_tools.conditions import comparisons, explain_condition, fill_in, split_top_level
from app.policy_tools.diff import diff
from app.policy_tools.explain import explain
from app.policy_tools.schema import policy_schema, policy_schema_text

from .conftest import POLICIES, policy_text

VALUES = {"reply": {"pacification": 0.91, "rushed_advice": 0.1}, "context": {"distress": 0.7}, "flags": ["distress"], "attempt": 0}


def test_fill_in_and_parts():
    assert fill_in("reply.pacification >= 0.5", VALUES) == "reply.pacification (0.91) >= 0.5"
    assert explain_condition("reply.pacification >= 0.5 && (context.distress < 0.5 || 'crisis' in flags)", VALUES) == [
        "reply.pacification (0.91) >= 0.5 -> true",
        "&& (context.distress (0.70) < 0.5 || 'crisis' in flags (['distress'])) -> false",
    ]
    assert split_top_level("(a && b)") == (["a", "b"], ["&&"])
    assert [str(c) for c in comparisons("0.3 < reply.pacification && context.distress >= 0.5")] == [
        "reply.pacification > 0.3", "context.distress >= 0.5"]


def test_explain_shows_scores_rules_and_the_effect(scorer):
    policy = load_policy_file(POLICIES / "default.yaml")
    text = explain(policy, scorer, [{"role": "user", "content": "I want to kill myself tonight."}], "Don't think like that.")
    assert "context.crisis" in text
    assert "1. crisis-resources -> prepend: APPLIES, continues" in text
    assert "'crisis' in flags ([" in text and "-> true" in text
    # Resources go first and the soothing body is repaired (labels.md 2.6).
    assert "decision: rule repair-pacification, action regenerate" in text
    assert "also applied: crisis-resources (prepend)" in text
    assert "  | If you are thinking about ending your life" in text  # the fixed text, then the repaired body
    assert "[repaired reply]" in text


def test_explain_regenerate_shows_the_corrective_instruction(write, scorer):
    path = write("p.yaml", policy_text("""
        - name: always
          when: "attempt == 0"
          action: regenerate
          label: rushed_advice
    """))
    text = explain(load_policy_file(path), scorer, [{"role": "user", "content": "hi"}], "hello")
    assert "attempt (0) == 0 -> true" in text
    assert "Replace the solution list with one complex reflection" in text


def test_diff_reports_meaning_not_text(write):
    old = write("old.yaml", policy_text("""
        - {name: a, when: "reply.pacification >= 0.5", action: annotate}
        - {name: b, when: "reply.rushed_advice >= 0.5", action: annotate}
        - {name: c, when: "reply.sycophancy >= 0.5", action: annotate}
    """))
    new = write("new.yaml", policy_text("""
        - {name: b, when: "reply.rushed_advice >= 0.5", action: escalate}
        - {name: a, when: "reply.pacification >= 0.6", action: annotate}
        - {name: d, when: "context.crisis >= 0.5", action: annotate}
    """, extra="  mode: shadow\n  limits: {max_attempts: 3}\n"))
    changes = diff(load_policy_file(old), load_policy_file(new))
    assert "mode changed: enforce -> shadow" in changes
    assert "limits.max_attempts changed: 2 -> 3" in changes
    assert any(c.startswith("rule removed: c") for c in changes)
    assert any(c.startswith("rule added at position 3: d") for c in changes)
    assert "rules reordered: a > b  ->  b > a (the first rule that holds decides)" in changes
    assert "rule a: threshold reply.pacification >= 0.5 -> 0.6 (acts less often)" in changes
    assert "rule b: action changed: annotate -> escalate" in changes


def test_diff_of_a_policy_with_itself_is_empty():
    policy = load_policy_file(POLICIES / "default.yaml")
    assert diff(policy, policy) == []


def test_committed_schema_is_the_generated_one():
    committed = (POLICIES / "policy.schema.json").read_text(encoding="utf-8")
    assert committed == policy_schema_text(), "regenerate: heedful policy schema > policies/policy.schema.json"
    assert json.loads(committed) == policy_schema()


def test_shipped_policies_point_editors_at_the_schema():
    for path in sorted(POLICIES.glob("*.yaml")):
        if not path.stem.endswith("_test"):
            assert path.read_text().startswith("# yaml-language-server: $schema=./policy.schema.json\n"), path
