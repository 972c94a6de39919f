"""`heedful policy check`: every problem in a policy file or directory without any traffic, as `file:line: code: field:
message`. It adds to what the proxy's loader refuses (YAML, schema, CEL, conflicts in a set) the findings that load but
are almost certainly mistakes: thresholds outside [0, 1] and rules that can never fire."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.policy.cel_env import ConditionError, compile_condition
from app.policy.errors import PolicyError, PolicyProblem
from app.policy.loader import LoadedPolicy, dotted, line_for, line_map, load_policy_file, policy_files
from app.policy.policy_set import load_policy_set
from app.policy.source import parse_yaml, read_text
from app.policy_tools.conditions import Comparison, comparisons
from app.policy_tools.reach import analyse
from app.policy_tools.suite import collect_suites


def threshold_problems(policy: LoadedPolicy) -> list[PolicyProblem]:
    return _thresholds(policy.file, policy.lines, [(i, r.when) for i, r in enumerate(policy.document.spec.rules)])


def _thresholds(file: str, lines: dict[Any, int], conditions: list[tuple[int, str]]) -> list[PolicyProblem]:
    problems = []
    for index, when in conditions:
        where = ("spec", "rules", index, "when")
        for comparison in comparisons(when):
            if comparison.variable.startswith(("reply.", "context.")) and not 0.0 <= comparison.value <= 1.0:
                problems.append(PolicyProblem(
                    file, line_for(lines, where), "policy_threshold_error", dotted(where),
                    f"threshold {comparison.value:g} for {comparison.variable} is outside [0, 1]; scores are probabilities "
                    f"between 0 and 1, so `{comparison}` is always {'true' if _always(comparison) else 'false'}"))
    return problems


def _always(c: Comparison) -> bool:
    if c.value < 0:
        return c.op in (">", ">=", "!=")
    return c.op in ("<", "<=", "!=")


def reachability_problems(policy: LoadedPolicy) -> list[PolicyProblem]:
    problems = []
    rules = policy.document.spec.rules
    for finding in analyse(policy):
        rule = rules[finding.rule_index]
        where = ("spec", "rules", finding.rule_index, "when")
        if finding.never_true:
            message = (f"rule {rule.name!r} can never fire: its condition was false on all {finding.points} checked "
                       f"combinations of values")
        else:
            message = (f"rule {rule.name!r} can never fire: wherever its condition holds, earlier rule(s) "
                       f"{', '.join(repr(n) for n in finding.shadowed_by)} match first (checked {finding.points} combinations)")
        problems.append(PolicyProblem(policy.file, policy.line_of(*where), "policy_unreachable_rule", dotted(where), message))
    return problems


def raw_lint(path: Path) -> list[PolicyProblem]:
    """For a file the loader refused: still check each rule's `when` on its own, so one error does not hide the others."""
    try:
        source = parse_yaml(read_text(path), str(path))
    except PolicyError:  # the loader has reported it already
        return []
    node, data = source.node, source.data
    rules = data.get("spec", {}).get("rules") if isinstance(data, dict) and isinstance(data.get("spec"), dict) else None
    if node is None or not isinstance(rules, list):
        return []
    lines: dict[Any, int] = {}
    line_map(node, (), lines, [], str(path))
    conditions = [(i, r["when"]) for i, r in enumerate(rules) if isinstance(r, dict) and isinstance(r.get("when"), str)]
    problems = _thresholds(str(path), lines, conditions)
    for index, when in conditions:
        try:
            compile_condition(when)
        except ConditionError as exc:
            where = ("spec", "rules", index, "when")
            problems.append(PolicyProblem(str(path), line_for(lines, where), "policy_cel_error", dotted(where), str(exc)))
    return problems


def lint(policy: LoadedPolicy) -> list[PolicyProblem]:
    """Findings that load but are mistakes. A threshold outside [0, 1] already explains why its rule never fires, so the
    (costlier) reachability search runs only on policies without one."""
    return threshold_problems(policy) or reachability_problems(policy)


def check_path(target: Path) -> list[PolicyProblem]:
    """All problems under a policy file or directory (its test suites included), sorted by location."""
    problems: set[PolicyProblem] = set()
    if target.is_dir():
        files = policy_files(target)
        try:
            load_policy_set(target)
        except PolicyError as exc:
            problems.update(exc.problems)
    elif target.is_file():
        files = [target] if not target.stem.endswith("_test") else []
    else:
        return [PolicyProblem(str(target), 1, "policy_yaml_error", "", "no such file or directory")]
    for path in files:
        try:
            policy = load_policy_file(path)
        except PolicyError as exc:
            problems.update(exc.problems)
            problems.update(raw_lint(path))
            continue
        problems.update(lint(policy))
    _, suite_problems = collect_suites(target)
    problems.update(suite_problems)
    return sorted(problems)
