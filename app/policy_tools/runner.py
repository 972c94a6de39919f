"""Run policy test cases against the real classifiers and print OPA/Kyverno-style rows: ID POLICY RULE CASE RESULT REASON."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from app.policy.engine import Verdict
from app.policy_tools.conditions import explain_condition
from app.policy.engine import evaluate, policy_values
from app.policy_tools.outcome import facts_for
from app.policy_tools.suite import NOTHING, LocatedCase, Suite
from classifiers import Scorer, Scores


@dataclass(frozen=True)
class CaseResult:
    suite: Suite
    located: LocatedCase
    scores: Scores
    values: dict[str, Any]
    verdict: Verdict
    failures: tuple[str, ...]

    @property
    def passed(self) -> bool:
        """A known issue passes while it still fails (like a strict xfail); an unexpected pass is a failure."""
        return bool(self.failures) if self.located.case.known_issue else not self.failures

    @property
    def result(self) -> str:
        if self.located.case.known_issue:
            return "known" if self.failures else "FIXED?"
        return "pass" if self.passed else "FAIL"

    @property
    def expected_rule(self) -> str:
        expect = self.located.case.expect
        if expect.rule is not None:
            return expect.rule
        if expect.not_rules:
            return "not " + ",".join(expect.not_rules)
        return "-"

    @property
    def reason(self) -> str:
        got = f"{self.verdict.rule_name} ({self.verdict.action.value})"
        return "; ".join(self.failures) if self.failures else f"fired {got}"


def _failures(case_expect: Any, verdict: Verdict) -> tuple[str, ...]:
    got = f"{verdict.rule_name} ({verdict.action.value})"
    out = []
    if case_expect.rule is not None and case_expect.rule != verdict.rule_name:
        want = "no rule" if case_expect.rule == NOTHING else f"rule {case_expect.rule}"
        out.append(f"expected {want}, got {got}")
    if case_expect.action is not None and case_expect.action != verdict.action:
        out.append(f"expected action {case_expect.action.value}, got {got}")
    if verdict.rule_name in case_expect.not_rules:
        out.append(f"rule {verdict.rule_name} must not fire, but did ({verdict.action.value})")
    if verdict.action in case_expect.not_actions:
        out.append(f"action {verdict.action.value} must not be taken, but {verdict.rule_name} took it")
    applied = {rule.name for rule in verdict.also} | {verdict.rule_name}
    for wanted in case_expect.also:
        if wanted not in applied:
            out.append(f"rule {wanted} must also apply, but did not")
    return tuple(out)


def run_suites(suites: Sequence[Suite], scorer: Scorer) -> list[CaseResult]:
    """Score every case in one batch, then let each policy decide."""
    work = [(suite, located) for suite in suites for located in suite.cases]
    if not work:
        return []
    scored = scorer.score_many([(located.case.conversation(), located.case.reply) for _, located in work])
    results = []
    for (suite, located), scores in zip(work, scored, strict=True):
        case = located.case
        facts = replace(facts_for(suite.policy, case.conversation(), case.request.model, case.request.tenant,
                                  case.request.stream), user=case.user_view())
        values = policy_values(scores, scorer.thresholds, facts, case.attempt)
        verdict = evaluate(suite.policy, values)
        results.append(CaseResult(suite, located, scores, values, verdict, _failures(case.expect, verdict)))
    return results


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return ["  ".join(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1] for r in rows]


def _scores_line(values: dict[str, Any]) -> list[str]:
    reply = ", ".join(f"{k} {v:.2f}" for k, v in values["reply"].items())
    context = ", ".join(f"{k} {v:.2f}" for k, v in values["context"].items())
    return [f"reply:   {reply}", f"context: {context}", f"flags:   {', '.join(values['flags']) or '(none)'}"]


def _why(result: CaseResult) -> list[str]:
    policy = result.suite.policy
    rules = policy.document.spec.rules
    out = []
    fired = result.verdict.rule
    if fired is not None:
        out.append(f"fired instead: {fired.name} -> {fired.action.value}, because")
        out += [f"    {line}" for line in explain_condition(fired.when, result.values)]
    else:
        out.append("no rule fired: every condition was false")
    wanted = result.located.case.expect.rule
    if wanted and wanted not in (NOTHING, result.verdict.rule_name):
        rule = next((r for r in rules if r.name == wanted), None)
        if rule is not None:
            position = [r.name for r in rules].index(wanted)
            if fired is not None and [r.name for r in rules].index(fired.name) < position:
                out.append(f"expected rule {wanted} comes after {fired.name}, so it was not reached; its condition:")
            else:
                out.append(f"expected rule {wanted} did not hold:")
            out += [f"    {line}" for line in explain_condition(rule.when, result.values)]
    return out


def report(results: Sequence[CaseResult], suites: Sequence[Suite]) -> str:
    rows = [["ID", "POLICY", "RULE", "CASE", "RESULT", "REASON"]]
    for index, r in enumerate(results, start=1):
        reason = f"{r.reason} [known issue: {r.located.case.known_issue}]" if r.located.case.known_issue else r.reason
        rows.append([str(index), r.suite.policy.name, r.expected_rule, r.located.case.name, r.result, reason])
    lines = _table(rows) if results else []
    failed = [(i, r) for i, r in enumerate(results, start=1) if not r.passed]
    for index, r in failed:
        lines += ["", f"--- {index} {r.result} {r.suite.policy.name} / {r.located.case.name} ({r.located.file}:{r.located.line})"]
        if r.located.case.known_issue:
            lines.append("  marked known_issue but now passes: remove the mark")
        if r.located.case.description:
            lines.append(f"  {r.located.case.description.strip()}")
        lines += [f"  {f}" for f in r.failures]
        lines += [f"  {line}" for line in _scores_line(r.values)]
        lines += [f"  {line}" for line in _why(r)]
    untested = [s.policy for s in suites if not s.cases]
    covered = {(r.suite.policy.name, name) for r in results
               for name in (r.verdict.rule_name, *(rule.name for rule in r.verdict.also))}
    uncovered = [f"{s.policy.name}/{rule.name}" for s in suites if s.cases for rule in s.policy.document.spec.rules
                 if (s.policy.name, rule.name) not in covered]
    lines.append("")
    if untested:
        lines.append("no test cases: " + ", ".join(f"{p.name} ({p.file})" for p in untested))
    if uncovered:
        lines.append("rules no case made fire: " + ", ".join(uncovered))
    known = sum(1 for r in results if r.located.case.known_issue and r.passed)
    lines.append(f"{len(results)} cases, {len(results) - len(failed) - known} passed, {len(failed)} failed"
                 + (f", {known} known issues" if known else ""))
    return "\n".join(lines)

