"""What every decision leaves behind: x-heedful-* response headers and an audit record (texts only if the policy says so)."""

from __future__ import annotations

import logging
import time
from typing import Any

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
    }
    # Set only when they say something, so a plain pass stays a short record.
    optional: dict[str, Any] = {
        "also": list(decision.also), "final_scores": decision.final_scores, "then": decision.then,
        "budget": "exhausted" if decision.budget_exhausted else None, "repair_error": decision.repair_error,
        "whole_reply_scores": decision.whole_reply_scores,
        "whole_reply_flags": list(decision.whole_reply_flags) if decision.whole_reply_flags is not None else None,
        "whole_reply_error": decision.whole_reply_error,
        "candidates": decision.candidates, "rejected": decision.rejected,
    }
    record |= {k: v for k, v in optional.items() if v}
    if spec.audit.include_texts:
        record["messages"] = messages
        record["reply"] = decision.draft
        record["returned"] = decision.text
        if decision.would_return is not None:
            record["would_return"] = decision.would_return
    return record


async def record_decision(svc: Services, decision: Decision, facts: RequestFacts, request_id: str,
                          messages: list[dict[str, Any]], stream: bool, added_seconds: float) -> None:
    """Metrics, the audit record and one log line (never texts) for a settled decision."""
    svc.metrics.requests.labels(decision.policy.name, decision.rule, decision.action, str(stream).lower()).inc()
    svc.metrics.added_latency.labels(decision.policy.name, str(stream).lower()).observe(added_seconds)
    if decision.scores is not None:
        for label in HEADLINE_SCORES:
            svc.metrics.score.labels(label).observe(decision.scores.reply[label])
    record = audit_record(decision, facts, request_id, messages, stream)
    await svc.store.append_audit(record, decision.review)
    log.info("guarded reply", extra={k: record[k] for k in _LOGGED})
