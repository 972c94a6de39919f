"""POST /v1/chat/completions: the drop-in endpoint. HTTP only: it parses the request, picks the policy, starts the
context pass and hands the rest to the pipeline (app/pipeline.py), as SSE or as one JSON completion."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from app.api.request_body import parse, read_json, tenant_of
from app.errors import GuardError, UpstreamFailure, error_response
from app.openai.protocol import ChatCompletionRequest
from app.pipeline import WHOLE, GuardedTurn, annotate, chunk_like, collect, guarded_json_choices, plain_text
from app.policy.engine import RequestFacts, request_facts
from app.services import Services, services
from app.users.memory import recalled_view
from classifiers import PreparedContext
from classifiers.inputs import ConversationError, judged_messages, view_of

DONE = b"data: [DONE]\n\n"

log = logging.getLogger("heedful.upstream")
router = APIRouter(tags=["chat"])


@router.post("/v1/chat/completions")
async def chat_completions(request: Request) -> Response:
    svc = services(request)
    svc.metrics.in_flight.inc()
    request_id = uuid.uuid4().hex
    try:
        return await _chat(request, svc, request_id)
    except GuardError as error:
        if isinstance(error, UpstreamFailure):
            svc.metrics.count_upstream_failure(error.status)
            # The client gets a clean 502/504; the operator needs to see why in the server's own log.
            log.warning("upstream failed", extra={"status": error.status, "error": error.message})
        return error_response(error, {"x-heedful-request-id": request_id})
    finally:
        svc.metrics.in_flight.dec()


async def _chat(request: Request, svc: Services, request_id: str) -> Response:
    settings = svc.settings
    chat = parse(ChatCompletionRequest, await read_json(request, settings.max_body_bytes))
    authorization = request.headers.get("authorization")
    # The draft is judged against the last user turn, also when an app appends per-turn system or developer
    # instructions (or an empty assistant placeholder) after it: a crisis turn must never slip past the guard that way.
    messages = judged_messages(chat.message_dicts())
    tenant = tenant_of(request, settings.tenant_header, settings.tenant_keys, settings.trust_tenant_header)
    facts = request_facts(chat.model, tenant, bool(chat.stream), messages)
    if not settings.guard_enabled:
        return await _unguarded(svc, chat, authorization, request_id, facts)
    policy = svc.policies.active.select(facts.model, facts.tenant)
    try:
        view_of(messages)
    except ConversationError:
        # Only replies to a user turn are judged (after a tool result, for instance, the proxy passes through).
        return await _unguarded(svc, chat, authorization, request_id, facts, skipped="not_user_turn")
    prepared: asyncio.Task[PreparedContext] = asyncio.create_task(svc.scoring.prepare(messages))
    if chat.stream and (chat.n or 1) > 1:
        prepared.cancel()
        return await _unguarded(svc, chat, authorization, request_id, facts, skipped="stream_with_n")
    # What the user said before about how they want to be met: one store round trip, running while the context pass
    # scores the conversation and the upstream call opens; the facts take it in before anything is judged.
    recall = asyncio.ensure_future(svc.users.recall(svc.users.identify(request.headers, chat.user, tenant), messages))
    svc.spawn(svc.users.remember(recall, prepared))
    if not chat.stream and not (settings.stream_upstream and plain_text(chat)):
        facts = replace(facts, user=(await recall).view)
        response, headers = await guarded_json_choices(svc, policy, chat, messages, facts, prepared, authorization,
                                                       request_id)
        return JSONResponse(response, headers=headers)
    holdback = policy.document.spec.streaming if chat.stream else WHOLE
    turn = GuardedTurn(svc, policy, chat, messages, facts, prepared, authorization, request_id, holdback,
                       asyncio.ensure_future(recalled_view(recall)))
    await turn.start(stream_options=None if chat.stream else {"include_usage": True}, early=bool(chat.stream))
    if not chat.stream:
        try:
            await turn.decide()
            completion = await collect(turn.chunks())
        finally:
            await turn.aclose()
        await turn.finish()
        if turn.decision is not None:
            annotate(completion["choices"][0], turn.decision)
        return JSONResponse(completion, headers=turn.headers())
    if turn.early_rules:
        # Crisis resources go out now, before the draft is read; the decision headers are not known yet.
        return StreamingResponse(_sse_early(svc, turn), media_type="text/event-stream", headers=turn.early_headers())
    try:
        await turn.decide()
    except BaseException:
        await turn.aclose()
        raise
    return StreamingResponse(_sse(svc, turn), media_type="text/event-stream", headers=turn.headers())


async def _sse(svc: Services, turn: GuardedTurn) -> AsyncIterator[bytes]:
    try:
        async for chunk in turn.chunks():
            if isinstance(chunk, UpstreamFailure):
                yield sse(chunk.body())
                return
            yield sse(chunk)
        yield DONE
        svc.spawn(turn.finish())
    finally:
        await turn.aclose()


async def _sse_early(svc: Services, turn: GuardedTurn) -> AsyncIterator[bytes]:
    turn.sent_early = turn.early_prefix
    yield sse(chunk_like({}, turn.chat.model, {"role": "assistant", "content": turn.early_prefix}))
    try:
        await turn.decide()
    except UpstreamFailure as error:
        svc.metrics.count_upstream_failure(error.status)
        yield sse(error.body())
        await turn.aclose()
        return
    async for part in _sse(svc, turn):
        yield part


def sse(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload, ensure_ascii=False).encode() + b"\n\n"


async def _passthrough(chunks: AsyncIterator[dict[str, Any]], svc: Services) -> AsyncIterator[bytes]:
    try:
        async for chunk in chunks:
            yield sse(chunk)
    except UpstreamFailure as error:
        svc.metrics.count_upstream_failure(error.status)
        yield sse(error.body())
        return
    yield DONE


async def _unguarded(svc: Services, chat: ChatCompletionRequest, authorization: str | None, request_id: str,
                     facts: RequestFacts, skipped: str = "guard_disabled") -> Response:
    """Pass a request through unjudged; every skip is counted and audited with its reason."""
    headers = {"x-heedful-request-id": request_id, "x-heedful-outcome": f"skipped_{skipped}"}
    svc.metrics.skipped.labels(skipped).inc()
    await svc.store.append_audit({"ts": time.time(), "request_id": request_id, "outcome": f"skipped_{skipped}",
                                  "model": facts.model, "tenant": facts.tenant, "stream": facts.stream}, False)
    if chat.stream:
        chunks = await svc.upstream.stream_chat(chat.upstream_body(), authorization)
        return StreamingResponse(_passthrough(chunks, svc), media_type="text/event-stream", headers=headers)
    response = await svc.upstream.chat(chat.upstream_body(), authorization)
    return JSONResponse(response, headers=headers)
