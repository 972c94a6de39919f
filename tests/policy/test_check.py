"""`policy check`: every problem names the file, the line and the field; all files are reported, sorted."""

from __future__ import annotations

from pathlib import Path

from app.policy_tools.check import check_path

from .conftest import POLICIES, policy_text


def _lines(problems: list) -> list[str]:
    return [str(p) for p in problems]


def test_shipped_policies_have_no_problems():
    assert _lines(check_path(POLICIES)) == []


def test_unknown_key_names_file_line_and_field(write):
    path = write("p.yaml", policy_text("""
        - name: a
          when: "reply.pacification >= 0.5"
          action: annotate
    """, extra="  colour: blue\n"))
    [problem] = check_path(path)
    assert (problem.file, problem.line, problem.code, problem.field) == (str(path), 7, "policy_schema_error", "spec.colour")
    assert str(problem) == f"{path}:7: policy_schema_error: spec.colour: unknown key 'colour'"


def test_unknown_key_inside_a_rule(write):
    path = write("p.yaml", policy_text("""
        - name: a
          when: "reply.pacification >= 0.5"
          action: annotate
          treshold: 0.5
    """))
    [problem] = check_path(path)
    assert (problem.line, problem.field, problem.message) == (11, "spec.rules[0].treshold", "unknown key 'treshold'")


def test_threshold_above_one(write):
    path = write("p.yaml", policy_text("""
        - name: a
          when: "context.distress >= 0.5 && reply.pacification >= 1.5"
          action: annotate
    """))
    # The threshold error already says the comparison is always false; the costly reachability search is skipped.
    [problem] = check_path(path)
    assert (problem.file, problem.line, problem.code, problem.field) == (str(path), 9, "policy_threshold_error", "spec.rules[0].when")
    assert "1.5" in problem.message and "reply.pacification" in problem.message and "[0, 1]" in problem.message
    assert "always false" in problem.message


def test_threshold_below_zero_written_number_first(write):
    path = write("p.yaml", policy_text("""
        - name: a
          when: "reply.pacification >= 0.5"
          action: annotate
        - name: b
          when: "-0.2 < context.distress"
          action: annotate
    """))
    problems = check_path(path)
    threshold = [p for p in problems if p.code == "policy_threshold_error"]
    assert [(p.line, p.field) for p in threshold] == [(12, "spec.rules[1].when")]
    assert "-0.2" in threshold[0].message and "context.distress" in threshold[0].message


def test_cel_that_does_not_compile(write):
    path = write("p.yaml", policy_text("""
        - name: a
          when: "reply.pacification >= 0.5"
          action: annotate
        - name: b
          when: "reply.sycophancy >= 0.5 &&"
          action: annotate
    """))
    [problem] = check_path(path)
    assert (problem.line, problem.code, problem.field) == (12, "policy_cel_error", "spec.rules[1].when")
    assert problem.message.startswith("does not compile")


def test_cel_unknown_variable_and_unknown_field(write):
    path = write("p.yaml", policy_text("""
        - name: a
          when: "replies.pacification >= 0.5"
          action: annotate
        - name: b
          when: "reply.warmth >= 0.5"
          action: annotate
    """))
    problems = check_path(path)
    assert [(p.line, p.code, p.field) for p in problems] == [
        (9, "policy_cel_error", "spec.rules[0].when"), (12, "policy_cel_error", "spec.rules[1].when")]
    assert "unknown variable 'replies'" in problems[0].message
    assert "unknown field reply.warmth" in problems[1].message


def test_unknown_action(write):
    path = write("p.yaml", policy_text("""
        - name: a
          when: "reply.pacification >= 0.5"
          action: redcat
    """))
    [problem] = check_path(path)
    assert (problem.line, problem.code, problem.field) == (10, "policy_schema_error", "spec.rules[0].action")
    assert "'redcat'" in problem.message and "regenerate" in problem.message


def test_rule_shadowed_by_an_earlier_rule(write):
    path = write("p.yaml", policy_text("""
        - name: broad
          when: "reply.pacification >= 0.3"
          action: annotate
        - name: narrow
          when: "reply.pacification >= 0.6 && context.distress > 0.2"
          action: regenerate
          label: pacification
        - name: other
          when: "reply.rushed_advice >= 0.5"
          action: annotate
    """))
    [problem] = check_path(path)
    assert (problem.line, problem.code, problem.field) == (12, "policy_unreachable_rule", "spec.rules[1].when")
    assert "'narrow'" in problem.message and "'broad'" in problem.message


def test_rule_whose_condition_is_never_true(write):
    path = write("p.yaml", policy_text("""
        - name: a
          when: "reply.pacification >= 0.5"
          action: annotate
        - name: impossible
          when: "reply.sycophancy > 0.7 && reply.sycophancy < 0.2"
          action: annotate
    """))
    [problem] = check_path(path)
    assert (problem.line, problem.code, problem.field) == (12, "policy_unreachable_rule", "spec.rules[1].when")
    assert "never fire" in problem.message and "false on all" in problem.message


def test_threshold_boundaries_are_respected_by_the_grid(write):
    # `> 0.5` then `>= 0.5`: the second still fires at exactly 0.5, which the grid's literal values include.
    path = write("p.yaml", policy_text("""
        - name: a
          when: "reply.pacification > 0.5"
          action: annotate
        - name: b
          when: "reply.pacification >= 0.5"
          action: annotate
    """))
    assert check_path(path) == []


def test_every_file_is_reported_sorted(write, tmp_path: Path):
    write("b.yaml", policy_text("""
        - name: a
          when: "reply.pacification >= 2"
          action: annotate
    """, name="b"))
    write("a.yaml", policy_text("""
        - name: a
          when: "reply.pacification >= 0.5"
          action: shout
    """, name="a").replace("  default: true\n", "  match: {tenants: [x]}\n"))
    lines = _lines(check_path(tmp_path))
    assert [line.split(": ")[0] for line in lines] == [f"{tmp_path}/a.yaml:10", f"{tmp_path}/b.yaml:9"]
    assert lines == sorted(lines)


def test_two_defaults_in_a_directory_is_a_conflict(write, tmp_path: Path):
    write("a.yaml", policy_text('- {name: a, when: "reply.pacification >= 0.5", action: annotate}', name="a"))
    write("b.yaml", policy_text('- {name: a, when: "reply.pacification >= 0.5", action: annotate}', name="b"))
    [problem] = check_path(tmp_path)
    assert (problem.file, problem.line, problem.code, problem.field) == (f"{tmp_path}/b.yaml", 6, "policy_conflict", "spec.default")


def test_test_suite_problems_point_at_the_case(write, tmp_path: Path):
    write("p.yaml", policy_text('- {name: a, when: "reply.pacification >= 0.5", action: annotate}'))
    path = write("p_test.yaml", """
        cases:
          - name: one
            user: "hi"
            reply: "hello"
            expect: {rule: nope}
          - name: two
            user: "hi"
            reply: "hello"
            expct: {rule: a}
    """)
    problems = check_path(tmp_path)
    assert [(p.file, p.line, p.code, p.field) for p in problems] == [
        (str(path), 2, "policy_test_error", "cases[0].expect.rule"),
        (str(path), 6, "policy_test_error", "cases[1].expect"),
        (str(path), 9, "policy_test_error", "cases[1].expct"),
    ]
    assert "no rule 'nope'" in problems[0].message


def test_syntax_errors_carry_plain_language_hints(tmp_path: Path) -> None:
    """Parser messages read like parser internals to a policy editor; each common slip gets a hint."""
    good = (POLICIES / "default.yaml").read_text()
    cases = {
        "indent": (good.replace("      action: regenerate\n      label: sycophancy_social",
                                "      action: regenerate\n     label: sycophancy_social"), "check the indentation"),
        "quote": (good.replace('when: "\'crisis\' in flags"', "when: 'crisis' in flags"), "must be quoted as a whole"),
        "and": (good.replace('when: "reply.sycophancy_social >= 0.2"',
                             'when: "reply.sycophancy_social >= 0.2 and context.distress > 0.2"'), "write && for and"),
        "acton": (good.replace("      action: regenerate\n      label: sycophancy_social",
                               "      acton: regenerate\n      label: sycophancy_social"), "did you mean 'action'?"),
        "flag": (good.replace("'crisis' in flags", "'crises' in flags"), "'crises' is not a flag name"),
    }
    for name, (text, hint) in cases.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(text)
        assert any(hint in p.message for p in check_path(path)), name


def test_a_rule_that_fires_only_in_a_far_corner_is_not_reported(write):
    # Eight scores all high at once: a uniform sample of the whole grid meets that corner about once in 10^9 points (the
    # other rules' literals give every score ~30 values), so a sampler alone called this reachable rule dead.
    literals = " || ".join(f"reply.pacification == 0.{n:02d}" for n in range(10, 90, 8))
    path = write("p.yaml", policy_text(f"""
        - name: many-literals
          when: "{literals}"
          action: annotate
        - name: everything-high
          when: "reply.sycophancy >= 0.9 && reply.sycophancy_social >= 0.9 && reply.sycophancy_epistemic >= 0.9 && reply.rushed_advice >= 0.9 && context.distress >= 0.9 && context.advice_requested >= 0.9 && user.prefers_venting >= 0.9 && user.wants_advice >= 0.9"
          action: annotate
    """))
    assert check_path(path) == []


def test_scores_compared_with_each_other_meet_every_literal(write):
    # `reply.sycophancy_social > reply.sycophancy_epistemic + 0.3` is not `variable op number`: both scores keep every
    # literal's values, so the grid has a point where it holds and the rule after the catch-all is still found shadowed.
    path = write("p.yaml", policy_text("""
        - name: gap
          when: "reply.sycophancy_social > reply.sycophancy_epistemic + 0.3"
          action: annotate
        - name: shadowed
          when: "reply.sycophancy_social >= 0.95 && reply.sycophancy_epistemic <= 0.05"
          action: annotate
    """))
    [problem] = check_path(path)
    assert problem.field == "spec.rules[1].when" and "'gap'" in problem.message


def test_each_distinct_rule_list_is_searched_once(write, monkeypatch):
    from app.policy.loader import load_policy_file
    from app.policy_tools import reach

    searched: list[tuple[str, ...]] = []
    real_search = reach._search
    monkeypatch.setattr(reach, "_search", lambda conditions, *rest: searched.append(rest[1]) or real_search(conditions, *rest))
    first = write("a.yaml", policy_text("""
        - name: a
          when: "reply.pacification >= 0.41"
          action: annotate
    """))
    for _ in range(3):
        check_path(first)
        load_policy_file(first)
    edited = write("a.yaml", policy_text("""
        - name: a
          when: "reply.pacification >= 0.42"
          action: annotate
    """))
    check_path(edited)
    assert searched == [("a",), ("a",)]
