"""POST /v1/chat/completions: the drop-in endpoint. HTTP only; the guard decides, the upstream client calls out."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from app.api.request_body import parse, read_json, tenant_of
from app.audit import audit_record, decision_headers
from app.errors import GuardError, UpstreamFailure, error_response
from app.guard import Decision
from app.openai.protocol import ChatCompletionRequest, choice_text
from app.policy.engine import RequestFacts
from app.services import Services, services
from app.streaming import guarded_stream, passthrough_stream
from classifiers import PreparedContext
from classifiers.inputs import ConversationError, view_of

router = APIRouter(tags=["chat"])
log = logging.getLogger("heedful.requests")


def count_failure(svc: Services, error: UpstreamFailure) -> None:
    if error.status >= 500:
        svc.metrics.failures.labels("upstream_timeout" if error.status == 504 else "upstream_error").inc()


async def record(svc: Services, decision: Decision, facts: RequestFacts, request_id: str, messages: list[dict[str, Any]],
                 stream: bool, added_seconds: float) -> None:
    svc.metrics.requests.labels(decision.policy.name, decision.rule, decision.action, str(stream).lower()).inc()
    svc.metrics.added_latency.labels(decision.policy.name, str(stream).lower()).observe(added_seconds)
    if decision.scores is not None:
        for label in ("pacification", "sycophancy", "rushed_advice"):
            svc.metrics.score.labels(label).observe(decision.scores.reply[label])
    record_ = audit_record(decision, facts, request_id, messages, stream)
    await svc.store.append_audit(record_, decision.review)
    log.info("guarded reply", extra={k: record_[k] for k in ("request_id", "policy", "policy_version", "tenant", "model",
                                                           "rule", "action", "outcome", "attempts", "latency_ms", "failure")})


@router.post("/v1/chat/completions")
async def chat_completions(request: Request) -> Response:
    svc = services(request)
    svc.metrics.in_flight.inc()
    try:
        return await _chat(request, svc)
    except GuardError as error:
        if isinstance(error, UpstreamFailure):
            count_failure(svc, error)
        return error_response(error)
    finally:
        svc.metrics.in_flight.dec()


async def _chat(request: Request, svc: Services) -> Response:
    started = time.perf_counter()
    settings = svc.settings
    chat = parse(ChatCompletionRequest, await read_json(request, settings.max_body_bytes))
    authorization = request.headers.get("authorization")
    request_id = uuid.uuid4().hex
    messages = chat.message_dicts()
    if not settings.guard_enabled:
        return await _unguarded(svc, chat, authorization, request_id)
    facts = RequestFacts(chat.model, tenant_of(request, settings.tenant_header, settings.tenant_keys), bool(chat.stream),
                         sum(1 for m in messages if m["role"] == "user"))
    policy = svc.policies.active.select(facts.model, facts.tenant)
    try:
        view_of(messages)
    except ConversationError:
        # Only replies to a user turn are judged (after a tool result, for instance, the proxy passes through).
        return await _unguarded(svc, chat, authorization, request_id, skipped="not_user_turn")
    prepared: asyncio.Task[PreparedContext] = asyncio.create_task(svc.scoring.prepare(messages))
    if chat.stream:
        if (chat.n or 1) > 1:
            prepared.cancel()
            return await _unguarded(svc, chat, authorization, request_id, skipped="stream_with_n")
        return await guarded_stream(svc, policy, chat, facts, prepared, authorization, request_id, record)
    upstream_start = time.perf_counter()
    try:
        response = await svc.upstream.chat(chat.upstream_body(), authorization)
    except GuardError:
        prepared.cancel()
        raise
    upstream_seconds = time.perf_counter() - upstream_start
    svc.metrics.upstream_seconds.observe(upstream_seconds)
    headers: dict[str, str] = {"x-heedful-request-id": request_id}
    for index, choice in enumerate(response.get("choices") or []):
        draft = choice_text(choice)
        if draft is None:
            headers.setdefault("x-heedful-outcome", "skipped_tool_call")
            continue
        decision = await svc.guard.decide(policy, chat, facts, prepared, draft, authorization)
        decision.upstream_seconds = upstream_seconds
        if decision.text != draft:
            choice["message"]["content"] = decision.text
        if decision.action == "annotate" and decision.scores is not None:
            # Annotations ride in an extension field (clients that do not know it ignore it) as well as the headers.
            choice["heedful"] = {"rule": decision.rule, "scores": {k: round(v, 4) for k, v in decision.scores.reply.items()},
                                 "context": {k: round(v, 4) for k, v in decision.scores.context.items()}}
        if index == 0:
            headers = decision_headers(decision, request_id)
        added = time.perf_counter() - started - upstream_seconds
        await record(svc, decision, facts, request_id, messages, False, added)
    if not prepared.done():
        prepared.cancel()
    return JSONResponse(response, headers=headers)


async def _unguarded(svc: Services, chat: ChatCompletionRequest, authorization: str | None, request_id: str,
                     skipped: str = "guard_disabled") -> Response:
    headers = {"x-heedful-request-id": request_id, "x-heedful-outcome": f"skipped_{skipped}".replace("skipped_skipped", "skipped")}
    if chat.stream:
        chunks = await svc.upstream.stream_chat(chat.upstream_body(), authorization)
        return StreamingResponse(passthrough_stream(chunks), media_type="text/event-stream", headers=headers)
    response = await svc.upstream.chat(chat.upstream_body(), authorization)
    return JSONResponse(response, headers=headers)
