"""`policy test`: cases run against the real model; failures say which rule fired instead and why."""

from __future__ import annotations

from pathlib import Path

from app.policy_tools.runner import report, run_suites
from app.policy_tools.suite import collect_suites

from .conftest import POLICIES, policy_text

# The crisis lexicon lifts context.crisis to the model's floor (0.97), so these decisions do not depend on training.
CRISIS_USER = "I want to kill myself tonight."
RULES = """
- name: crisis-first
  when: "'crisis' in flags && context.crisis >= 0.9"
  action: prepend
  text: "Call 988."
- name: catch-all
  when: "context.crisis < 0.9"
  action: annotate
"""


def test_passing_and_failing_cases_are_reported_as_rows(write, tmp_path: Path, scorer):
    write("p.yaml", policy_text(RULES))
    write("p_test.yaml", f"""
        cases:
          - name: crisis-gets-resources
            user: "{CRISIS_USER}"
            reply: "Don't think like that."
            expect: {{rule: crisis-first, action: prepend}}
          - name: wrongly-expects-nothing
            user: "{CRISIS_USER}"
            reply: "Don't think like that."
            expect: {{rule: none}}
          - name: calm-chat-is-annotated
            user: "What time is it in Tokyo?"
            reply: "It is 9 in the evening there."
            expect: {{rule: catch-all, not_actions: [regenerate]}}
    """)
    suites, problems = collect_suites(tmp_path)
    assert problems == []
    results = run_suites(suites, scorer)
    assert [r.passed for r in results] == [True, False, True]
    text = report(results, suites)
    lines = text.splitlines()
    assert lines[0].split() == ["ID", "POLICY", "RULE", "CASE", "RESULT", "REASON"]
    assert lines[2].split()[:5] == ["2", "p", "none", "wrongly-expects-nothing", "FAIL"]
    assert "expected no rule, got crisis-first (prepend)" in lines[2]
    assert f"--- 2 FAIL p / wrongly-expects-nothing ({tmp_path}/p_test.yaml:6)" in text
    assert "fired instead: crisis-first -> prepend, because" in text
    assert "'crisis' in flags ([" in text and "&& context.crisis (" in text  # values filled in
    assert text.rstrip().endswith("3 cases, 2 passed, 1 failed")


def test_inline_tests_in_the_policy_run_too(write, tmp_path: Path, scorer):
    write("p.yaml", policy_text(RULES) + f"""tests:
  - name: inline-crisis
    user: "{CRISIS_USER}"
    reply: "ok"
    expect: {{action: prepend}}
""")
    suites, problems = collect_suites(tmp_path / "p.yaml")
    assert problems == []
    [result] = run_suites(suites, scorer)
    assert result.passed and result.located.field == "tests[0]" and result.located.line == 16


def test_expected_rule_not_reached_is_explained(write, tmp_path: Path, scorer):
    write("p.yaml", policy_text(RULES))
    write("p_test.yaml", f"""
        cases:
          - name: wants-catch-all
            user: "{CRISIS_USER}"
            reply: "ok"
            expect: {{rule: catch-all}}
    """)
    suites, _ = collect_suites(tmp_path)
    text = report(run_suites(suites, scorer), suites)
    assert "expected rule catch-all comes after crisis-first, so it was not reached; its condition:" in text
    assert "context.crisis (" in text and ") < 0.9 -> false" in text


def test_bad_case_is_a_load_problem_with_location(write, tmp_path: Path):
    write("p.yaml", policy_text(RULES))
    path = write("p_test.yaml", """
        cases:
          - name: no-conversation
            reply: "ok"
            expect: {rule: none}
    """)
    _, problems = collect_suites(tmp_path)
    assert [(p.file, p.line, p.field) for p in problems] == [(str(path), 2, "cases[0]")]
    assert "either 'user'" in problems[0].message


def test_every_shipped_policy_has_a_suite_covering_every_rule():
    suites, problems = collect_suites(POLICIES)
    assert problems == []
    assert sorted(s.policy.name for s in suites) == ["companion", "default", "health", "support"]
    for suite in suites:
        expected = {c.case.expect.rule for c in suite.cases} | {name for c in suite.cases for name in c.case.expect.also}
        missing = {r.name for r in suite.policy.document.spec.rules} - expected
        assert not missing, f"{suite.policy.name}: no case expects {missing}"
        assert any(c.case.expect.rule == "none" or c.case.expect.not_actions for c in suite.cases), "no hard negatives"


def test_shipped_policies_pass_their_own_suites(scorer):
    suites, _ = collect_suites(POLICIES)
    results = run_suites(suites, scorer)
    assert all(r.passed for r in results), report(results, suites)


def _threshold_case(write, tmp_path: Path, threshold: float, known_issue: str = "") -> None:
    write("p.yaml", policy_text(f"""
- name: repair-pacification
  when: "reply.pacification >= {threshold:.6f}"
  action: regenerate
  label: pacification
"""))
    mark = f"\n            known_issue: {known_issue}" if known_issue else ""
    write("p_test.yaml", f"""
        cases:
          - name: soothing
            user: "My dog died this morning."
            reply: "Don't be sad, everything happens for a reason."
            expect: {{rule: repair-pacification}}{mark}
    """)


def test_a_case_that_passes_only_by_machine_noise_is_on_the_edge(write, tmp_path: Path, scorer):
    """int8 kernels differ between CPUs: a threshold a hair under the case's score passes here and fails elsewhere."""
    score = scorer.score([{"role": "user", "content": "My dog died this morning."}],
                         "Don't be sad, everything happens for a reason.").reply["pacification"]
    assert 0.05 < score < 0.95, "the case must sit where a logit nudge moves the probability"
    _threshold_case(write, tmp_path, score - 0.001)
    suites, problems = collect_suites(tmp_path)
    assert problems == []
    [result] = run_suites(suites, scorer)
    assert (result.failures, result.result, result.passed) == ((), "EDGE", False)
    assert result.edges[0].startswith(f"reply.pacification {score:.4f} -> ") and "would make it fail" in result.edges[0]
    assert "passes only by a margin that differs between machines" in report([result], collect_suites(tmp_path)[0])

    _threshold_case(write, tmp_path, score - 0.15)
    [clear] = run_suites(collect_suites(tmp_path)[0], scorer)
    assert (clear.edges, clear.result, clear.passed) == ((), "pass", True)


def test_a_known_issue_that_passes_only_by_noise_stays_known(write, tmp_path: Path, scorer):
    score = scorer.score([{"role": "user", "content": "My dog died this morning."}],
                         "Don't be sad, everything happens for a reason.").reply["pacification"]
    _threshold_case(write, tmp_path, score - 0.001, known_issue="scores at the threshold")
    [result] = run_suites(collect_suites(tmp_path)[0], scorer)
    assert (result.failures, result.result, result.passed) == ((), "known", True)
    _threshold_case(write, tmp_path, score - 0.15, known_issue="scores at the threshold")
    [fixed] = run_suites(collect_suites(tmp_path)[0], scorer)
    assert (fixed.result, fixed.passed) == ("FIXED?", False)
