"""POST /v1/chat/completions: the drop-in endpoint. HTTP only; the guard decides, the upstream client calls out."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from app import streamed_completion
from app.api.request_body import parse, read_json, tenant_of
from app.audit import decision_headers, record_decision
from app.errors import GuardError, UpstreamFailure, error_response
from app.openai.protocol import ChatCompletionRequest, choice_text
from app.policy.engine import RequestFacts
from app.services import Services, services
from app.streaming import guarded_stream, passthrough_stream
from classifiers import PreparedContext
from classifiers.encoder import WindowCache
from classifiers.inputs import ConversationError, judged_messages, view_of

log = logging.getLogger("heedful.upstream")
router = APIRouter(tags=["chat"])


@router.post("/v1/chat/completions")
async def chat_completions(request: Request) -> Response:
    svc = services(request)
    svc.metrics.in_flight.inc()
    try:
        return await _chat(request, svc)
    except GuardError as error:
        if isinstance(error, UpstreamFailure):
            svc.metrics.count_upstream_failure(error.status)
            # The client gets a clean 502/504; the operator needs to see why in the server's own log.
            log.warning("upstream failed", extra={"status": error.status, "error": error.message})
        return error_response(error)
    finally:
        svc.metrics.in_flight.dec()


async def _chat(request: Request, svc: Services) -> Response:
    started = time.perf_counter()
    settings = svc.settings
    chat = parse(ChatCompletionRequest, await read_json(request, settings.max_body_bytes))
    authorization = request.headers.get("authorization")
    request_id = uuid.uuid4().hex
    # The draft is judged against the last user turn, also when an app appends per-turn system or developer
    # instructions (or an empty assistant placeholder) after it: a crisis turn must never slip past the guard that way.
    messages = judged_messages(chat.message_dicts())
    facts = RequestFacts(chat.model, tenant_of(request, settings.tenant_header, settings.tenant_keys), bool(chat.stream),
                         sum(1 for m in messages if m["role"] == "user"))
    if not settings.guard_enabled:
        return await _unguarded(svc, chat, authorization, request_id, facts)
    policy = svc.policies.active.select(facts.model, facts.tenant)
    try:
        view_of(messages)
    except ConversationError:
        # Only replies to a user turn are judged (after a tool result, for instance, the proxy passes through).
        return await _unguarded(svc, chat, authorization, request_id, facts, skipped="not_user_turn")
    prepared: asyncio.Task[PreparedContext] = asyncio.create_task(svc.scoring.prepare(messages))
    if chat.stream:
        if (chat.n or 1) > 1:
            prepared.cancel()
            return await _unguarded(svc, chat, authorization, request_id, facts, skipped="stream_with_n")
        return await guarded_stream(svc, policy, chat, messages, facts, prepared, authorization, request_id)
    upstream_start = time.perf_counter()
    window_cache: WindowCache | None = None
    try:
        if settings.stream_upstream and streamed_completion.eligible(chat):
            window_cache = {}
            chunks = await svc.upstream.stream_chat(chat.upstream_body(stream_options={"include_usage": True}), authorization)
            response = await streamed_completion.collect(chunks, svc.scoring, prepared, window_cache)
        else:
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
        decision = await svc.guard.decide(policy, chat, facts, messages, prepared, draft, authorization, window_cache)
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
        await record_decision(svc, decision, facts, request_id, messages, False, added)
    if not prepared.done():
        prepared.cancel()
    return JSONResponse(response, headers=headers)


async def _unguarded(svc: Services, chat: ChatCompletionRequest, authorization: str | None, request_id: str,
                     facts: RequestFacts, skipped: str = "guard_disabled") -> Response:
    """Pass a request through unjudged; every skip is counted and audited with its reason."""
    headers = {"x-heedful-request-id": request_id, "x-heedful-outcome": f"skipped_{skipped}"}
    svc.metrics.skipped.labels(skipped).inc()
    await svc.store.append_audit({"ts": time.time(), "request_id": request_id, "outcome": f"skipped_{skipped}",
                                  "model": facts.model, "tenant": facts.tenant, "stream": facts.stream}, False)
    if chat.stream:
        chunks = await svc.upstream.stream_chat(chat.upstream_body(), authorization)
        return StreamingResponse(passthrough_stream(chunks, svc.metrics), media_type="text/event-stream", headers=headers)
    response = await svc.upstream.chat(chat.upstream_body(), authorization)
    return JSONResponse(response, headers=headers)
