"""The guard: score a draft in context, evaluate the policy, act, and record what happened and why.

Routes hand it a draft; it returns a Decision (a value, never an exception): the text the user gets, the rule and action,
the scores, attempts and timings. Repairs go back to the upstream through the Upstream client.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from dataclasses import dataclass, fields
from typing import Any

from app.corrective import instruction_for
from app.errors import UpstreamFailure
from app.metrics import Metrics
from app.openai.protocol import ChatCompletionRequest, choice_text
from app.policy.engine import RequestFacts, Verdict, evaluate, policy_values
from app.policy.cel_env import ConditionError
from app.policy.effects import compose
from app.policy.loader import LoadedPolicy
from app.policy.model import REPAIR_ACTIONS, Action, Rule
from app.scoring import ScoringService
from app.store import Store
from app.upstream import Upstream
from classifiers import SCORE_LABELS, PreparedContext, Scores
from classifiers.encoder import WindowCache
from classifiers.inputs import ConversationError

log = logging.getLogger("heedful.guard")


@dataclass
class Candidate:
    text: str
    scores: Scores
    verdict: Verdict

    @property
    def badness(self) -> float:
        """Lower is better: a draft no repair rule fires on beats any that one does; then the highest label score."""
        return (1.0 if self.verdict.action in REPAIR_ACTIONS else 0.0) + max(self.scores.reply[n] for n in SCORE_LABELS)


@dataclass(frozen=True)
class Decision:
    """What the guard settled on for one draft: a value, never changed after it is made (later facts, such as the
    scores of a streamed reply's whole text, make a new Decision with dataclasses.replace). Every field is an audit
    field (app/audit.py)."""

    policy: LoadedPolicy
    text: str  # what the user gets
    draft: str
    rule: str = "none"
    action: str = "allow"
    outcome: str = "passed"
    attempts: int = 0
    scores: Scores | None = None
    failure: str | None = None
    would_return: str | None = None  # shadow mode: the repaired text that was not returned
    review: bool = False
    guard_seconds: float = 0.0
    upstream_seconds: float = 0.0
    prefix: str = ""  # fixed text placed before the draft (streaming sends it first)
    suffix: str = ""
    also: tuple[str, ...] = ()  # additive rules (`continue: true`) applied besides the deciding rule
    final_scores: dict[str, float] | None = None  # the scores of the repaired text that went out
    then: str | None = None  # a settled repair's own additive action ("rule:action")
    budget_exhausted: bool = False  # the tenant's repair budget ran out
    repair_error: str | None = None  # why the last repair call failed
    whole_reply_scores: dict[str, float] | None = None  # streams: the whole released reply, scored for the record
    whole_reply_flags: tuple[str, ...] | None = None
    whole_reply_error: str | None = None

    @property
    def changed(self) -> bool:
        return self.text != self.draft


@dataclass
class _Deciding:
    """The guard's working state for one draft; frozen into a Decision when settled."""

    policy: LoadedPolicy
    text: str
    draft: str
    rule: str = "none"
    action: str = "allow"
    outcome: str = "passed"
    attempts: int = 0
    scores: Scores | None = None
    failure: str | None = None
    would_return: str | None = None
    review: bool = False
    guard_seconds: float = 0.0
    prefix: str = ""
    suffix: str = ""
    also: tuple[str, ...] = ()
    final_scores: dict[str, float] | None = None
    then: str | None = None
    budget_exhausted: bool = False
    repair_error: str | None = None

    def freeze(self) -> Decision:
        return Decision(**{f.name: getattr(self, f.name) for f in fields(self)})


class Guard:
    def __init__(self, scoring: ScoringService, upstream: Upstream, store: Store, metrics: Metrics) -> None:
        self.scoring, self.upstream, self.store, self.metrics = scoring, upstream, store, metrics

    async def decide(
        self,
        policy: LoadedPolicy,
        request: ChatCompletionRequest,
        facts: RequestFacts,
        messages: list[dict[str, Any]],
        prepared: Awaitable[PreparedContext],
        draft: str,
        authorization: str | None,
        window_cache: WindowCache | None = None,
    ) -> Decision:
        spec = policy.document.spec
        started = time.perf_counter()
        decision = _Deciding(policy=policy, text=draft, draft=draft)
        timeout = spec.limits.scoring_timeout_ms / 1000
        try:
            context = await asyncio.wait_for(asyncio.shield(prepared), timeout)
            # One bound for the whole scoring step: the context is usually ready (it ran while the model wrote), so the
            # time left after waiting for it is what the reply may take.
            remaining = max(timeout - (time.perf_counter() - started), 0.001)
            scores = (await asyncio.wait_for(self.scoring.score(messages, context, [draft], window_cache), remaining))[0]
        except (TimeoutError, asyncio.TimeoutError):
            return self._failed(decision, "scoring_timeout", started)
        except Exception as exc:  # any scorer fault is handled by the policy's failure mode, never lost
            log.exception("scoring failed")
            return self._failed(decision, "scoring_error", started, str(exc))
        decision.scores = scores
        try:
            verdict = self._verdict(policy, scores, facts, 0)
            decision.rule, decision.action = verdict.rule_name, verdict.action.value
            final = Candidate(draft, scores, verdict)
            if verdict.action in REPAIR_ACTIONS:
                final = await self._repair(policy, request, messages, facts, context, final, authorization, decision,
                                           started)
        except ConditionError as exc:
            # A condition that fails at run time (a division by zero on some attempt) is the policy's fault, not the
            # user's: the policy's failure mode decides, and it is recorded, never a 500.
            log.error("policy condition failed", extra={"policy": policy.name, "error": str(exc)})
            return self._failed(decision, "policy_error", started, str(exc))
        self._apply(decision, final, verdict.also)
        if spec.mode == "shadow" and decision.text != draft:
            decision.would_return, decision.text = decision.text, draft
            decision.prefix = decision.suffix = ""
        decision.guard_seconds = time.perf_counter() - started
        return decision.freeze()

    async def judge(self, policy: LoadedPolicy, facts: RequestFacts, messages: list[dict[str, Any]],
                    reply: str) -> tuple[Scores, Verdict] | str:
        """Scores and the policy's verdict on a draft, without acting (POST /v1/guard/score), under the same scoring
        bound as a guarded completion. Returns the failure kind instead where scoring or a condition fails."""
        timeout = policy.document.spec.limits.scoring_timeout_ms / 1000
        try:
            async with asyncio.timeout(timeout):
                context = await self.scoring.prepare(messages)
                scores = (await self.scoring.score(messages, context, [reply]))[0]
        except (TimeoutError, asyncio.TimeoutError):
            self.metrics.failures.labels("scoring_timeout").inc()
            return "scoring_timeout"
        except ConversationError:
            raise
        except Exception:  # any scorer fault is reported as the policy's failure mode would handle it
            log.exception("scoring failed")
            self.metrics.failures.labels("scoring_error").inc()
            return "scoring_error"
        try:
            return scores, self._verdict(policy, scores, facts, 0)
        except ConditionError:
            self.metrics.failures.labels("policy_error").inc()
            return "policy_error"

    def _verdict(self, policy: LoadedPolicy, scores: Scores, facts: RequestFacts, attempt: int) -> Verdict:
        return evaluate(policy, policy_values(scores, self.scoring.thresholds, facts, attempt))

    def _failed(self, decision: _Deciding, kind: str, started: float, detail: str = "") -> Decision:
        spec = decision.policy.document.spec
        self.metrics.failures.labels(kind).inc()
        decision.failure = f"{kind}: {detail}" if detail else kind
        decision.rule = "failure"
        if spec.failure_mode == "closed":
            decision.action, decision.outcome, decision.text = "replace", "failed_closed", spec.failure_reply
        else:
            decision.action, decision.outcome = "allow", "failed_open"
        if spec.mode == "shadow" and decision.text != decision.draft:
            decision.would_return, decision.text = decision.text, decision.draft
        decision.guard_seconds = time.perf_counter() - started
        return decision.freeze()

    async def _repair(self, policy: LoadedPolicy, request: ChatCompletionRequest, messages: list[dict[str, Any]],
                      facts: RequestFacts, context: PreparedContext, original: Candidate, authorization: str | None,
                      decision: _Deciding, started: float) -> Candidate:
        limits = policy.document.spec.limits
        seen = [original]
        current = original
        per_rule: dict[str, int] = {}
        rule_started: dict[str, float] = {}
        deadline = started + limits.time_budget_ms / 1000
        while current.verdict.action in REPAIR_ACTIONS:
            rule = current.verdict.rule
            assert rule is not None
            rule_started.setdefault(rule.name, time.perf_counter())
            rule_deadline = rule_started[rule.name] + rule.time_budget_ms / 1000 if rule.time_budget_ms else deadline
            remaining = min(deadline, rule_deadline) - time.perf_counter()
            if (decision.attempts >= limits.max_attempts or per_rule.get(rule.name, 0) >= (rule.max_attempts or limits.max_attempts)
                    or remaining <= 0):
                return self._exhausted(policy, seen, decision)
            if limits.regenerations_per_minute is not None and not await self.store.take_budget(
                    facts.tenant, limits.regenerations_per_minute):
                decision.budget_exhausted = True
                return self._exhausted(policy, seen, decision)
            decision.attempts += 1
            per_rule[rule.name] = per_rule.get(rule.name, 0) + 1
            self.metrics.regenerations.labels(policy.name, rule.name).inc()
            try:
                texts = await asyncio.wait_for(
                    self._ask_upstream(policy, request, messages, rule, current.text, authorization), remaining)
            except (TimeoutError, asyncio.TimeoutError):
                decision.repair_error = "time budget spent"
                return self._exhausted(policy, seen, decision)
            except UpstreamFailure as exc:
                self.metrics.count_upstream_failure(exc.status)
                decision.repair_error = exc.message
                return self._exhausted(policy, seen, decision)
            if not texts:
                return self._exhausted(policy, seen, decision)
            scored = await self.scoring.score(messages, context, texts)
            fresh = [Candidate(t, s, self._verdict(policy, s, facts, decision.attempts)) for t, s in zip(texts, scored, strict=True)]
            seen.extend(fresh)
            current = min(fresh, key=lambda c: c.badness)
        decision.outcome = "repaired"
        return current

    def _exhausted(self, policy: LoadedPolicy, seen: list[Candidate], decision: _Deciding) -> Candidate:
        limits = policy.document.spec.limits
        decision.outcome = f"exhausted_{limits.on_exhausted}"
        if limits.on_exhausted == "original":
            chosen = seen[0]
        elif limits.on_exhausted == "fixed":
            assert limits.fixed_reply is not None
            chosen = Candidate(limits.fixed_reply, seen[0].scores, Verdict(None, decision.attempts))
        else:
            chosen = min(seen, key=lambda c: c.badness)
        # The text is settled: only additive actions of the chosen draft's verdict may still apply.
        if chosen.verdict.action in REPAIR_ACTIONS:
            chosen = Candidate(chosen.text, chosen.scores, Verdict(None, chosen.verdict.attempt))
        return chosen

    async def _ask_upstream(self, policy: LoadedPolicy, request: ChatCompletionRequest, messages: list[dict[str, Any]],
                            rule: Rule, draft: str, authorization: str | None) -> list[str]:
        instruction = instruction_for(rule.label, {str(k): v for k, v in policy.document.spec.instructions.items()}, rule.instruction)
        if rule.action == Action.rewrite:
            guidance = (f"Revise the draft reply below so that it follows this guidance. {instruction}\n"
                        f"Return only the revised reply.\n\nDraft reply:\n{draft}")
            n = 1
        else:
            guidance = f"Guidance for your next reply: {instruction}"
            n = rule.candidates
        # The repair goes upstream with the app's own messages (per-turn instructions included) plus the guidance.
        body = request.upstream_body(messages=[*request.message_dicts(), {"role": "system", "content": guidance}],
                                     stream=False)
        body.pop("n", None)
        if n > 1:
            body["n"] = n
        body.pop("stream_options", None)
        start = time.perf_counter()
        response = await self.upstream.chat(body, authorization)
        self.metrics.upstream_seconds.observe(time.perf_counter() - start)
        return [t for c in response.get("choices", []) if (t := choice_text(c))]

    def _apply(self, decision: _Deciding, final: Candidate, also: tuple[Rule, ...]) -> None:
        """Apply the additive rules that continued (crisis resources, say) and the settled draft's own non-repair action
        (append, prepend, replace, annotate, escalate): fixed texts go around the body, whatever repaired it."""
        if final.scores is not decision.scores:
            decision.final_scores = final.scores.reply
        rules = [*also, *([final.verdict.rule] if final.verdict.rule is not None else [])]
        decision.also = tuple(rule.name for rule in also)
        composed = compose(rules, final.text)
        decision.prefix, decision.suffix, decision.text = composed.prefix, composed.suffix, composed.text
        decision.review = decision.review or composed.review
        rule = final.verdict.rule if final.verdict.rule is not None else (also[-1] if also else None)
        if rule is None:
            return
        if decision.outcome == "passed":
            decision.outcome = {"annotate": "annotated", "escalate": "escalated", "append": "appended",
                                "prepend": "prepended", "replace": "replaced", "allow": "passed"}[rule.action.value]
        elif final.verdict.rule is not None:
            decision.then = f"{rule.name}:{rule.action.value}"
