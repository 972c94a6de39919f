"""The guard: score a draft in context, evaluate the policy, act, and record what happened and why.

Routes hand it a draft; it returns a Decision (a value, never an exception): the text the user gets, the rule and action,
the scores, attempts and timings. Repairs go back to the upstream through the Upstream client.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field, replace
from typing import Any

from app.corrective import instruction_for
from app.errors import UpstreamFailure
from app.leakage import instruction_leak
from app.metrics import Metrics
from app.openai.protocol import ChatCompletionRequest, choice_text
from app.policy.engine import RequestFacts, Verdict, evaluate, policy_values
from app.policy.cel_env import ConditionError
from app.policy.effects import compose
from app.policy.loader import LoadedPolicy
from app.policy.model import REPAIR_ACTIONS, Action, Rule
from app.repair_prompt import DEFAULT_PLACEMENT, DEFAULT_REWRITE_DRAFT, Placement, RewriteDraft, repair_messages
from app.scoring import ScoringService
from app.store import Store
from app.upstream import Upstream
from app.users.profile import UserView
from classifiers import SCORE_LABELS, PreparedContext, Scores
from classifiers.encoder import WindowCache
from classifiers.inputs import ConversationError
from classifiers.labels import REPLY_SCORES

log = logging.getLogger("heedful.guard")

# A repair candidate the classifier scores higher than the draft on the label being repaired is rejected: a repair may
# fail to help, but it must never make the reply worse (the other reasons are app/leakage.py's).
WORSE_THAN_DRAFT = "worse_than_draft"


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
    candidates: int = 0  # repair candidates the upstream returned, rejected ones included
    rejected: dict[str, int] | None = None  # repair candidates rejected, by reason (leakage.REASONS, WORSE_THAN_DRAFT)

    @property
    def changed(self) -> bool:
        return self.text != self.draft


@dataclass
class RepairAllowance:
    """The repair calls one request may make, shared by its choices (`n > 1`): the policy's max_attempts bounds a
    request, so a large `n` costs more scoring, never more calls to the model."""

    limit: int
    spent: int = 0


@dataclass
class _RepairRecord:
    """What the repair loop did, for the Decision it settles into."""

    attempts: int = 0
    allowance: RepairAllowance | None = None
    outcome: str = "passed"
    budget_exhausted: bool = False
    repair_error: str | None = None
    candidates: int = 0
    rejected: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class _Failure:
    kind: str
    detail: str = ""


class Guard:
    def __init__(self, scoring: ScoringService, upstream: Upstream, store: Store, metrics: Metrics,
                 placement: Placement = DEFAULT_PLACEMENT, rewrite_draft: RewriteDraft = DEFAULT_REWRITE_DRAFT) -> None:
        self.scoring, self.upstream, self.store, self.metrics = scoring, upstream, store, metrics
        self.placement, self.rewrite_draft = placement, rewrite_draft

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
        allowance: RepairAllowance | None = None,
    ) -> Decision:
        started = time.perf_counter()
        scored = await self._scored(policy, messages, prepared, draft, window_cache)
        if isinstance(scored, _Failure):
            return self._failed(policy, draft, scored, started)
        context, scores = scored
        record = _RepairRecord(allowance=allowance)
        try:
            verdict = self._verdict(policy, scores, facts, 0)
            final = Candidate(draft, scores, verdict)
            if verdict.action in REPAIR_ACTIONS:
                final = await self._repair(policy, request, messages, facts, context, final, authorization, record,
                                           started)
        except ConditionError as exc:
            # A condition that fails at run time (a division by zero on some attempt) is the policy's fault, not the
            # user's: the policy's failure mode decides, and it is recorded, never a 500.
            log.error("policy condition failed", extra={"policy": policy.name, "error": str(exc)})
            return self._failed(policy, draft, _Failure("policy_error", str(exc)), started, scores)
        return self._settle(policy, draft, scores, verdict, final, record, started)

    async def judge(self, policy: LoadedPolicy, facts: RequestFacts, messages: list[dict[str, Any]],
                    reply: str, user: Awaitable[UserView] | None = None) -> tuple[Scores, Verdict] | str:
        """Scores and the policy's verdict on a draft, without acting (POST /v1/guard/score), under the same scoring
        bound as a guarded completion. Returns the failure kind instead where scoring or a condition fails. `user`,
        when given, is what user memory recalls, read while the draft is scored and joined into the facts after."""
        context_pass = asyncio.ensure_future(self.scoring.prepare(messages))
        scored = await self._scored(policy, messages, context_pass, reply)
        context_pass.cancel()  # nothing else waits for it (a no-op once it is done)
        if user is not None:
            facts = replace(facts, user=await user)
        if isinstance(scored, _Failure):
            self.metrics.failures.labels(scored.kind).inc()
            return scored.kind
        _, scores = scored
        try:
            return scores, self._verdict(policy, scores, facts, 0)
        except ConditionError:
            self.metrics.failures.labels("policy_error").inc()
            return "policy_error"

    async def _scored(self, policy: LoadedPolicy, messages: list[dict[str, Any]], prepared: Awaitable[PreparedContext],
                      draft: str, window_cache: WindowCache | None = None) -> tuple[PreparedContext, Scores] | _Failure:
        """The context and the draft's scores under one bound (the policy's scoring timeout) for both together; a fault
        is returned as a failure for the policy's failure mode, never raised (a conversation that is not one is)."""
        try:
            async with asyncio.timeout(policy.document.spec.limits.scoring_timeout_ms / 1000):
                # Shielded: the context pass is shared with the rest of the request (the audit of a stream reuses it).
                # The reply pass does not wait for it: both run at once where the model allows.
                context_pass = asyncio.shield(prepared)
                scores = (await self.scoring.score(messages, context_pass, [draft], window_cache))[0]
                context = await context_pass
        except (TimeoutError, asyncio.TimeoutError):
            return _Failure("scoring_timeout")
        except ConversationError:
            raise
        except Exception as exc:  # any scorer fault is handled by the policy's failure mode, never lost
            log.exception("scoring failed")
            return _Failure("scoring_error", str(exc))
        return context, scores

    def _verdict(self, policy: LoadedPolicy, scores: Scores, facts: RequestFacts, attempt: int) -> Verdict:
        return evaluate(policy, policy_values(scores, self.scoring.thresholds, facts, attempt))

    def _failed(self, policy: LoadedPolicy, draft: str, failure: _Failure, started: float,
                scores: Scores | None = None) -> Decision:
        spec = policy.document.spec
        self.metrics.failures.labels(failure.kind).inc()
        closed = spec.failure_mode == "closed"
        text = spec.failure_reply if closed else draft
        shadow = spec.mode == "shadow" and text != draft
        return Decision(policy=policy, text=draft if shadow else text, draft=draft, rule="failure",
                        action="replace" if closed else "allow", outcome="failed_closed" if closed else "failed_open",
                        scores=scores, failure=f"{failure.kind}: {failure.detail}" if failure.detail else failure.kind,
                        would_return=text if shadow else None, guard_seconds=time.perf_counter() - started)

    def _settle(self, policy: LoadedPolicy, draft: str, scores: Scores, verdict: Verdict, final: Candidate,
                record: _RepairRecord, started: float) -> Decision:
        """The Decision for a settled draft: the continuing rules (crisis resources) and the settled draft's own
        non-repair action (append, prepend, replace, annotate, escalate) composed around the body, whatever repaired it."""
        rules = [*verdict.also, *([final.verdict.rule] if final.verdict.rule is not None else [])]
        composed = compose(rules, final.text)
        shown = final.verdict.rule if final.verdict.rule is not None else (verdict.also[-1] if verdict.also else None)
        outcome, then = record.outcome, None
        if shown is not None and outcome == "passed":
            outcome = {"annotate": "annotated", "escalate": "escalated", "append": "appended",
                       "prepend": "prepended", "replace": "replaced", "allow": "passed"}[shown.action.value]
        elif final.verdict.rule is not None:
            then = f"{final.verdict.rule.name}:{final.verdict.rule.action.value}"
        shadow = policy.document.spec.mode == "shadow" and composed.text != draft
        return Decision(
            policy=policy, text=draft if shadow else composed.text, draft=draft, rule=verdict.rule_name,
            action=verdict.action.value, outcome=outcome, attempts=record.attempts, scores=scores,
            would_return=composed.text if shadow else None, review=composed.review,
            guard_seconds=time.perf_counter() - started, prefix="" if shadow else composed.prefix,
            suffix="" if shadow else composed.suffix, also=tuple(rule.name for rule in verdict.also),
            final_scores=final.scores.reply if final.scores is not scores else None, then=then,
            budget_exhausted=record.budget_exhausted, repair_error=record.repair_error, candidates=record.candidates,
            rejected=dict(record.rejected) or None)

    async def _repair(self, policy: LoadedPolicy, request: ChatCompletionRequest, messages: list[dict[str, Any]],
                      facts: RequestFacts, context: PreparedContext, original: Candidate, authorization: str | None,
                      record: _RepairRecord, started: float) -> Candidate:
        limits = policy.document.spec.limits
        seen = [original]
        current = original
        per_rule: dict[str, int] = {}
        rule_started: dict[str, float] = {}
        deadline = started + limits.time_budget_ms / 1000
        held_labels: list[str] = []  # the labels repaired so far: no candidate may score worse than the draft on them
        said = "\n".join(str(m.get("content")) for m in messages if m.get("role") == "user" and isinstance(m.get("content"), str))
        while current.verdict.action in REPAIR_ACTIONS:
            rule = current.verdict.rule
            assert rule is not None
            rule_started.setdefault(rule.name, time.perf_counter())
            rule_deadline = rule_started[rule.name] + rule.time_budget_ms / 1000 if rule.time_budget_ms else deadline
            remaining = min(deadline, rule_deadline) - time.perf_counter()
            if (record.attempts >= limits.max_attempts or per_rule.get(rule.name, 0) >= (rule.max_attempts or limits.max_attempts)
                    or remaining <= 0 or (record.allowance is not None and record.allowance.spent >= record.allowance.limit)):
                return self._exhausted(policy, seen, record)
            if limits.regenerations_per_minute is not None and not await self.store.take_budget(
                    facts.tenant, limits.regenerations_per_minute):
                record.budget_exhausted = True
                return self._exhausted(policy, seen, record)
            record.attempts += 1
            if record.allowance is not None:
                record.allowance.spent += 1
            per_rule[rule.name] = per_rule.get(rule.name, 0) + 1
            self.metrics.regenerations.labels(policy.name, rule.name).inc()
            if rule.label in REPLY_SCORES and rule.label not in held_labels:
                held_labels.append(rule.label)
            instruction = instruction_for(rule.label, {str(k): v for k, v in policy.document.spec.instructions.items()},
                                          rule.instruction, facts.user)
            try:
                texts = await asyncio.wait_for(
                    self._ask_upstream(request, rule, instruction, current.text, authorization), remaining)
            except (TimeoutError, asyncio.TimeoutError):
                record.repair_error = "time budget spent"
                return self._exhausted(policy, seen, record)
            except UpstreamFailure as exc:
                self.metrics.count_upstream_failure(exc.status)
                record.repair_error = exc.message
                return self._exhausted(policy, seen, record)
            if not texts:
                return self._exhausted(policy, seen, record)
            record.candidates += len(texts)
            scored = await self.scoring.score(messages, context, texts)
            fresh = []
            for text, scores in zip(texts, scored, strict=True):
                reason = self._rejection(text, scores, instruction, said, original, held_labels)
                if reason is not None:
                    record.rejected[reason] = record.rejected.get(reason, 0) + 1
                    self.metrics.repair_rejections.labels(policy.name, rule.name, reason).inc()
                    continue
                fresh.append(Candidate(text, scores, self._verdict(policy, scores, facts, record.attempts)))
            if not fresh:  # every candidate was rejected: try again while the limits allow, else fall back
                continue
            seen.extend(fresh)
            current = min(fresh, key=lambda c: c.badness)
        record.outcome = "repaired"
        return current

    @staticmethod
    def _rejection(text: str, scores: Scores, instruction: str, said: str, draft: Candidate,
                   held_labels: list[str]) -> str | None:
        """Why a repair candidate may not be chosen (None: it may): it echoes or discusses the instruction, or the
        classifier scores it worse than the draft on a label being repaired."""
        leak = instruction_leak(text, instruction, said)
        if leak is not None:
            return leak.reason
        if any(scores.reply[label] > draft.scores.reply[label] for label in held_labels):
            return WORSE_THAN_DRAFT
        return None

    def _exhausted(self, policy: LoadedPolicy, seen: list[Candidate], record: _RepairRecord) -> Candidate:
        limits = policy.document.spec.limits
        record.outcome = f"exhausted_{limits.on_exhausted}"
        if limits.on_exhausted == "original":
            chosen = seen[0]
        elif limits.on_exhausted == "fixed":
            assert limits.fixed_reply is not None
            chosen = Candidate(limits.fixed_reply, seen[0].scores, Verdict(None, record.attempts))
        else:
            chosen = min(seen, key=lambda c: c.badness)
        # The text is settled: only additive actions of the chosen draft's verdict may still apply.
        if chosen.verdict.action in REPAIR_ACTIONS:
            chosen = Candidate(chosen.text, chosen.scores, Verdict(None, chosen.verdict.attempt))
        return chosen

    async def _ask_upstream(self, request: ChatCompletionRequest, rule: Rule, instruction: str, draft: str,
                            authorization: str | None) -> list[str]:
        rewrite = rule.action == Action.rewrite
        n = 1 if rewrite else rule.candidates
        # The repair goes upstream with the app's own messages (per-turn instructions included) plus the guidance.
        messages = repair_messages(request.message_dicts(), instruction, draft if rewrite else None, self.placement,
                                   self.rewrite_draft)
        body = request.upstream_body(messages=messages, stream=False)
        body.pop("n", None)
        if n > 1:
            body["n"] = n
        body.pop("stream_options", None)
        start = time.perf_counter()
        response = await self.upstream.chat(body, authorization)
        texts = [t for c in response.get("choices", []) if (t := choice_text(c))]
        missing = n - len(response.get("choices", []))
        if n > 1 and missing > 0:
            # The upstream ignored `n` (llama.cpp's server does): ask for the rest one at a time, each with its own seed
            # where the app set one, so sampled candidates differ yet stay reproducible.
            seed = body.get("seed")
            single = {k: v for k, v in body.items() if k != "n"}
            rest = [single | {"seed": seed + i} if isinstance(seed, int) else single for i in range(1, missing + 1)]
            for extra in await asyncio.gather(*(self.upstream.chat(b, authorization) for b in rest)):
                texts += [t for c in extra.get("choices", []) if (t := choice_text(c))]
        self.metrics.upstream_seconds.observe(time.perf_counter() - start)
        return texts
