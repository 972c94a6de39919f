"""Run policy test cases against the real classifiers and print OPA/Kyverno-style rows: ID POLICY RULE CASE RESULT REASON."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from app.policy.engine import RequestFacts, Verdict, evaluate, policy_values
from app.policy.loader import LoadedPolicy
from app.policy_tools.conditions import explain_condition
from app.policy_tools.outcome import facts_for
from app.policy_tools.suite import NOTHING, Expect, LocatedCase, Suite
from classifiers import Scorer, Scores
from classifiers.labels import REPLY_OUTPUTS, derive_reply_scores

# int8 matrix kernels differ between CPUs (AVX2 without VNNI vs AVX-512 VNNI), so the same case scores slightly differently
# from one machine to the next: one shipped case read 0.1992 on one host and at least 0.2 on another. An outcome that flips
# when a single score moves this far in logit space passes on one machine and fails on the next.
SCORE_NOISE_LOGIT = 0.1


@dataclass(frozen=True)
class CaseResult:
    suite: Suite
    located: LocatedCase
    scores: Scores
    values: dict[str, Any]
    verdict: Verdict
    failures: tuple[str, ...]
    edges: tuple[str, ...] = ()  # score nudges within machine-to-machine noise that would flip the outcome

    @property
    def passed(self) -> bool:
        """A known issue passes while it still fails (like a strict xfail), or when it only passes by noise; an
        unexpected pass is a failure, and so is a pass that noise would undo."""
        if self.located.case.known_issue:
            return bool(self.failures or self.edges)
        return not self.failures and not self.edges

    @property
    def result(self) -> str:
        if self.located.case.known_issue:
            return "known" if self.passed else "FIXED?"
        if self.failures:
            return "FAIL"
        return "EDGE" if self.edges else "pass"

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
        if self.failures:
            return "; ".join(self.failures)
        return f"fired {got}, but only just: {self.edges[0]}" if self.edges else f"fired {got}"


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


def _nudged(probability: float, logit_shift: float) -> float:
    p = min(max(probability, 1e-6), 1 - 1e-6)
    return 1 / (1 + math.exp(-(math.log(p / (1 - p)) + logit_shift)))


def _nudges(scores: Scores) -> Iterator[tuple[str, float, float, Scores]]:
    """The scores with one model output moved by the noise between machines, each way: (variable, value, moved value,
    scores). Combined reply scores (sycophancy) are derived again from the moved outputs, as the runtime derives them."""
    outputs = {name: scores.reply[name] for name in REPLY_OUTPUTS}
    for name, value in outputs.items():
        for moved in (_nudged(value, SCORE_NOISE_LOGIT), _nudged(value, -SCORE_NOISE_LOGIT)):
            yield f"reply.{name}", value, moved, replace(scores, reply=derive_reply_scores({**outputs, name: moved}))
    for name, value in scores.context.items():
        for moved in (_nudged(value, SCORE_NOISE_LOGIT), _nudged(value, -SCORE_NOISE_LOGIT)):
            yield f"context.{name}", value, moved, replace(scores, context={**scores.context, name: moved})


def _edges(policy: LoadedPolicy, expect: Expect, scores: Scores, thresholds: dict[str, float], facts: RequestFacts,
           attempt: int, failed: bool) -> tuple[str, ...]:
    """Each single output that, moved by the noise between machines, flips whether the case meets its expectation."""
    found = []
    for variable, value, moved, nudged in _nudges(scores):
        verdict = evaluate(policy, policy_values(nudged, thresholds, facts, attempt))
        if bool(_failures(expect, verdict)) != failed:
            found.append(f"{variable} {value:.4f} -> {moved:.4f} would make it {'pass' if failed else 'fail'}")
    return tuple(found)


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
        failures = _failures(case.expect, verdict)
        edges = _edges(suite.policy, case.expect, scores, scorer.thresholds, facts, case.attempt, bool(failures))
        results.append(CaseResult(suite, located, scores, values, verdict, failures, edges))
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
        if r.edges and not r.failures:
            lines.append(f"  passes only by a margin that differs between machines (int8 kernels; "
                         f"{SCORE_NOISE_LOGIT} in logit): choose a clearer case, or move the threshold away from it")
        if r.located.case.description:
            lines.append(f"  {r.located.case.description.strip()}")
        lines += [f"  {f}" for f in r.failures]
        lines += [f"  on the edge: {edge}" for edge in r.edges]
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

