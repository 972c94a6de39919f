"""What every decision leaves behind: x-heedful-* response headers and an audit record (texts only if the policy says so)."""

from __future__ import annotations

import hashlib
import logging
import time
from typing import Any

from app.errors import UpstreamFailure
from app.guard import Decision
from app.policy.engine import RequestFacts
from app.services import Services
from classifiers.labels import HEADLINE_SCORES

log = logging.getLogger("heedful.requests")
_LOGGED = ("request_id", "policy", "policy_version", "tenant", "model", "rule", "action", "outcome", "attempts", "latency_ms",
           "failure")


def _compact(values: dict[str, float]) -> str:
    return ",".join(f"{k}={v:.3f}" for k, v in values.items())


def decision_headers(decision: Decision, request_id: str) -> dict[str, str]:
    headers = {
        "x-heedful-request-id": request_id,
        "x-heedful-policy": decision.policy.name,
        "x-heedful-policy-version": decision.policy.version,
        "x-heedful-policy-revision": decision.policy.revision,
        "x-heedful-mode": decision.policy.document.spec.mode,
        "x-heedful-rule": decision.rule,
        "x-heedful-action": decision.action,
        "x-heedful-outcome": decision.outcome,
        "x-heedful-attempts": str(decision.attempts),
    }
    if decision.scores is not None:
        headers["x-heedful-scores"] = _compact({k: decision.scores.reply[k] for k in HEADLINE_SCORES})
        headers["x-heedful-context"] = _compact(decision.scores.context)
    if decision.also:
        headers["x-heedful-also"] = ",".join(decision.also)
    if decision.failure:
        headers["x-heedful-failure"] = decision.failure.split(":")[0]
    if decision.would_return is not None:
        headers["x-heedful-shadow"] = "would-change"
    if decision.rejected:
        headers["x-heedful-rejected"] = ",".join(f"{reason}={count}" for reason, count in sorted(decision.rejected.items()))
    return headers


def sampled(request_id: str, rate: float) -> bool:
    """Whether the audit stream keeps this decision: a hash of the request id against the share kept, so every replica
    (and a second choice of one request) agrees, and a test can predict it."""
    if rate >= 1.0:
        return True
    point = int.from_bytes(hashlib.sha256(request_id.encode()).digest()[:8], "big") / 2**64
    return point < rate


def audit_record(decision: Decision, facts: RequestFacts, request_id: str, messages: list[dict[str, Any]],
                 stream: bool) -> dict[str, Any]:
    spec = decision.policy.document.spec
    record: dict[str, Any] = {
        "ts": time.time(),
        "request_id": request_id,
        "policy": decision.policy.name,
        "policy_version": decision.policy.version,
        "policy_revision": decision.policy.revision,
        "mode": spec.mode,
        "model": facts.model,
        "tenant": facts.tenant,
        "stream": stream,
        "rule": decision.rule,
        "action": decision.action,
        "outcome": decision.outcome,
        "attempts": decision.attempts,
        "scores": decision.scores.reply if decision.scores else None,
        "context": decision.scores.context if decision.scores else None,
        "failure": decision.failure,
        "latency_ms": {"guard": round(decision.guard_seconds * 1000, 2), "upstream": round(decision.upstream_seconds * 1000, 2)},
        "changed": decision.changed or decision.would_return is not None,
        "escalated": decision.review,
        "flags": list(decision.scores.flags) if decision.scores else [],
        "sample_rate": spec.audit.sample.rate(decision.rule, decision.outcome),
    }
    # Set only when they say something, so a plain pass stays a short record.
    optional: dict[str, Any] = {
        "also": list(decision.also), "final_scores": decision.final_scores, "then": decision.then,
        "budget": "exhausted" if decision.budget_exhausted else None, "repair_error": decision.repair_error,
        "whole_reply_scores": decision.whole_reply_scores,
        "whole_reply_flags": list(decision.whole_reply_flags) if decision.whole_reply_flags is not None else None,
        "whole_reply_error": decision.whole_reply_error,
        "rule_label": next((str(r.label) for r in spec.rules if r.name == decision.rule and r.label), None),
        "candidates": decision.candidates, "rejected": decision.rejected,
    }
    record |= {k: v for k, v in optional.items() if v}
    if spec.audit.retention_days is not None:
        record["retain_until"] = record["ts"] + spec.audit.retention_days * 86400
    if spec.audit.include_texts:
        record["messages"] = messages
        record["reply"] = decision.draft
        record["returned"] = decision.text
        if decision.would_return is not None:
            record["would_return"] = decision.would_return
    return record


async def record_decision(svc: Services, decision: Decision, facts: RequestFacts, request_id: str,
                          messages: list[dict[str, Any]], stream: bool, added_seconds: float,
                          extra: dict[str, Any] | None = None) -> None:
    """Metrics, the audit record and one log line (never texts) for a settled decision; `extra` adds fields (the
    choice of a several-choice stream, why a stream was cut)."""
    svc.metrics.requests.labels(decision.policy.name, decision.rule, decision.action, str(stream).lower()).inc()
    svc.metrics.added_latency.labels(decision.policy.name, str(stream).lower()).observe(added_seconds)
    if decision.scores is not None:
        for label in HEADLINE_SCORES:
            svc.metrics.score.labels(label).observe(decision.scores.reply[label])
    record = audit_record(decision, facts, request_id, messages, stream) | (extra or {})
    if decision.review or sampled(request_id, record["sample_rate"]):
        await svc.store.append_audit(record, decision.review)
    log.info("guarded reply", extra={k: record[k] for k in _LOGGED})


def _undecided_record(request_id: str, facts: RequestFacts | None, outcome: str) -> dict[str, Any]:
    """The audit record of a request no decision settled (a skip, an upstream error, a client gone), so every request
    id is accounted for."""
    record: dict[str, Any] = {"ts": time.time(), "request_id": request_id, "outcome": outcome}
    if facts is not None:
        record |= {"model": facts.model, "tenant": facts.tenant, "stream": facts.stream}
    return record


async def record_skip(svc: Services, request_id: str, facts: RequestFacts, reason: str, choice: int | None = None) -> None:
    """A reply passed through unjudged: counted in heedful_skipped_total and audited with its reason."""
    svc.metrics.skipped.labels(reason).inc()
    record = _undecided_record(request_id, facts, f"skipped_{reason}")
    if choice is not None:
        record["choice"] = choice
    await svc.store.append_audit(record, False)


async def record_unanswered(svc: Services, request_id: str, facts: RequestFacts | None, outcome: str,
                            error: UpstreamFailure | None = None) -> None:
    """A request that got no reply (the upstream failed, the client left) still leaves a record."""
    record = _undecided_record(request_id, facts, outcome)
    if error is not None:
        record |= {"status": error.status, "failure": error.code or error.message}
    await svc.store.append_audit(record, False)
