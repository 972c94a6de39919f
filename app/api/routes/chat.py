"""POST /v1/chat/completions: the drop-in endpoint. HTTP only: it parses the request, picks the policy, starts the
context pass and hands the rest to the pipeline (app/pipeline.py), as SSE or as one JSON completion.

Every answer carries `x-heedful-request-id`; every failure is an OpenAI error object (an SSE error event once a stream
has started) and leaves an audit record; a client that leaves takes its upstream work with it (app/api/lifetime.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from app.api.lifetime import ClientGone, GuardedStream, StreamEnd, until_disconnected
from app.api.request_body import STREAM_RESPONSE, documented_body, documented_errors, parse, read_json, tenant_of
from app.audit import record_skip, record_unanswered
from app.choices import ChoiceSplitter, decide_all, merged
from app.errors import GuardError, UpstreamFailure, error_response
from app.guard import RepairAllowance
from app.openai.protocol import ChatCompletionRequest
from app.pipeline import WHOLE, GuardedTurn, annotate, chunk_like, collect, guarded_json_choices, plain_text
from app.policy.engine import RequestFacts, request_facts
from app.policy.loader import LoadedPolicy
from app.services import Services, services
from app.users.memory import Recalled, recalled_view
from app.upstream import client_api_key, upstream_limits
from classifiers import PreparedContext
from classifiers.inputs import ConversationError, judged_messages, view_of

DONE = b"data: [DONE]\n\n"

log = logging.getLogger("heedful.upstream")
router = APIRouter(tags=["chat"])


@router.post("/v1/chat/completions", openapi_extra=documented_body(ChatCompletionRequest),
             responses=STREAM_RESPONSE | documented_errors(400, 413, 502, 504))
async def chat_completions(request: Request) -> Response:
    svc = services(request)
    svc.metrics.in_flight.inc()
    request_id = uuid.uuid4().hex
    facts: RequestFacts | None = None
    release = True  # a stream gives its in-flight slot back when it ends, not when its headers go out
    try:
        chat = parse(ChatCompletionRequest, await read_json(request, svc.settings.max_body_bytes))
        # The draft is judged against the last user turn, also when an app appends per-turn system or developer
        # instructions (or an empty assistant placeholder) after it: a crisis turn must never slip past the guard that way.
        messages = judged_messages(chat.message_dicts())
        tenant = tenant_of(request, svc.settings.tenant_header, svc.settings.tenant_keys, svc.settings.trust_tenant_header)
        facts = request_facts(chat.model, tenant, bool(chat.stream), messages)
        client_api_key.set(request.headers.get("x-api-key"))
        limits: dict[str, str] = {}
        upstream_limits.set(limits)
        response = await until_disconnected(request.receive, _chat(request, svc, chat, messages, facts, request_id))
        for name, value in limits.items():  # an upstream's rate-limit headers, as on its errors
            response.headers.setdefault(name, value)
        if isinstance(response, GuardedStream):
            release = False
            response.on_close(_release(svc))
        return response
    except ClientGone:
        svc.metrics.client_disconnects.labels("before_reply").inc()
        await record_unanswered(svc, request_id, facts, "client_disconnected")
        return Response(status_code=499)  # nobody reads it; the server drops it
    except GuardError as error:
        headers = {"x-heedful-request-id": request_id}
        if isinstance(error, UpstreamFailure):
            svc.metrics.count_upstream_failure(error.status)
            # The client gets a clean 502/504; the operator needs to see why in the server's own log.
            log.warning("upstream failed", extra={"status": error.status, "error": error.message, "request_id": request_id})
            await record_unanswered(svc, request_id, facts, "upstream_error", error)
            headers |= dict(error.passed_headers)
        return error_response(error, headers)
    except Exception:  # a fault of the proxy's own: still an OpenAI error with the request id, and in the log
        log.exception("request failed", extra={"request_id": request_id})
        return error_response(GuardError("the guard failed to handle this request", code="internal_error"),
                              {"x-heedful-request-id": request_id})
    finally:
        if release:
            svc.metrics.in_flight.dec()


def _release(svc: Services) -> Callable[[], Awaitable[None]]:
    async def release() -> None:
        svc.metrics.in_flight.dec()
    return release


async def _chat(request: Request, svc: Services, chat: ChatCompletionRequest, messages: list[dict[str, Any]],
                facts: RequestFacts, request_id: str) -> Response:
    settings = svc.settings
    authorization = request.headers.get("authorization")
    if not settings.guard_enabled:
        return await _unguarded(svc, chat, authorization, request_id, facts)
    policy = svc.policies.active.select(facts.model, facts.tenant)
    try:
        view_of(messages)
    except ConversationError:
        # Only replies to a user turn are judged (after a tool result, for instance, the proxy passes through).
        return await _unguarded(svc, chat, authorization, request_id, facts, skipped="not_user_turn")
    prepared: asyncio.Task[PreparedContext] = asyncio.create_task(svc.scoring.prepare(messages))
    # What the user said before about how they want to be met: one store round trip, running while the context pass
    # scores the conversation and the upstream call opens; the facts take it in before anything is judged.
    recall = asyncio.ensure_future(svc.users.recall(svc.users.identify(request.headers, chat.user, facts.tenant),
                                                    messages))
    svc.spawn(svc.users.remember(recall, prepared))
    try:
        return await _guarded(svc, policy, chat, messages, facts, prepared, authorization, request_id, recall)
    except BaseException:
        prepared.cancel()  # an upstream failure or a client gone: the context pass has nobody to serve
        raise


async def _guarded(svc: Services, policy: LoadedPolicy, chat: ChatCompletionRequest, messages: list[dict[str, Any]],
                   facts: RequestFacts, prepared: asyncio.Task[PreparedContext], authorization: str | None,
                   request_id: str, recall: asyncio.Future[Recalled]) -> Response:
    several_choices = bool(chat.stream) and (chat.n or 1) > 1
    # A JSON client's draft is read from an upstream stream so that it is scored while written, unless the scorer
    # already has as much work as threads: then its windows would queue anyway, and reading every chunk costs the event
    # loop 2 ms a request for 60 words, 13 for 400 (bench/results/proxy_ab.md: 4 clients, 400 words, 26 -> 37 req/s).
    read_while_written = svc.settings.stream_upstream and plain_text(chat) and not svc.scoring.saturated
    json_choices = not chat.stream and not read_while_written
    if several_choices or json_choices:  # several turns, or one JSON call: the memory is joined once, up front
        facts = replace(facts, user=(await recall).view)
    if several_choices:
        return await _guarded_choices(svc, policy, chat, messages, facts, prepared, authorization, request_id)
    if json_choices:
        response, headers = await guarded_json_choices(svc, policy, chat, messages, facts, prepared, authorization,
                                                       request_id)
        return JSONResponse(response, headers=headers)
    holdback = policy.document.spec.streaming if chat.stream else WHOLE
    turn = GuardedTurn(svc, policy, chat, messages, facts, prepared, authorization, request_id, holdback,
                       asyncio.ensure_future(recalled_view(recall)))
    try:
        await turn.start(stream_options=None if chat.stream else {"include_usage": True}, early=bool(chat.stream))
        if chat.stream:
            return await _guarded_stream(svc, turn)
        await turn.decide()
        completion = await collect(turn.chunks())
    except BaseException:
        await turn.aclose()  # an upstream failure, or the client gone: release the upstream connection now
        raise
    await turn.aclose()
    await turn.finish()
    if turn.decision is not None:
        annotate(completion["choices"][0], turn.decision)
    return JSONResponse(completion, headers=turn.headers())


async def _guarded_stream(svc: Services, turn: GuardedTurn) -> GuardedStream:
    end = StreamEnd()
    if turn.early_rules:
        # Crisis resources go out now, before the draft is read; the decision headers are not known yet.
        stream = GuardedStream(_sse_early(svc, turn, end), turn.early_headers(), end)
    else:
        await turn.decide()
        stream = GuardedStream(_sse(svc, turn, end), turn.headers(), end)
    stream.on_close(turn.aclose)
    stream.on_close(_record_if_cut(svc, [turn], end))
    return stream


async def _guarded_choices(svc: Services, policy: LoadedPolicy, chat: ChatCompletionRequest, messages: list[dict[str, Any]],
                           facts: RequestFacts, prepared: asyncio.Task[PreparedContext], authorization: str | None,
                           request_id: str) -> GuardedStream:
    """A stream of n > 1 choices: each judged through its own holdback and decision (app/choices.py)."""
    n = chat.n or 1
    splitter = ChoiceSplitter(await svc.upstream.stream_chat(chat.upstream_body(), authorization), n)
    turns: list[GuardedTurn] = []
    allowance = RepairAllowance(policy.document.spec.limits.max_attempts)
    for index in range(n):
        # Each turn gets its own handle on the shared context pass: one choice's tool call must not cancel it for all.
        turn = GuardedTurn(svc, policy, chat, messages, facts, asyncio.create_task(_shared(prepared)), authorization,
                           request_id, policy.document.spec.streaming)
        turn.attach(splitter.choice(index), index, allowance)
        turns.append(turn)
    try:
        await decide_all(turns)
    except BaseException:
        await splitter.aclose()
        raise
    end = StreamEnd()
    outcomes = ",".join(t.decision.outcome if t.decision else "absent" if t.absent else "skipped_tool_call" for t in turns)
    stream = GuardedStream(_sse_choices(svc, turns, splitter, end), turns[0].headers() | {"x-heedful-choice-outcomes": outcomes},
                           end)

    stream.on_close(splitter.aclose)
    stream.on_close(_record_if_cut(svc, turns, end))
    return stream


async def _shared(prepared: asyncio.Task[PreparedContext]) -> PreparedContext:
    return await asyncio.shield(prepared)


async def _sse_choices(svc: Services, turns: list[GuardedTurn], splitter: ChoiceSplitter,
                       end: StreamEnd) -> AsyncIterator[bytes]:
    async for chunk in merged(turns, splitter):
        if isinstance(chunk, UpstreamFailure):
            yield _broken(svc, turns, end, chunk)
            return
        yield sse(chunk)
    end.how = "done"
    yield DONE
    _finish(svc, turns)


def _finish(svc: Services, turns: list[GuardedTurn], cut: str | None = None) -> None:
    """Each turn's audit record, in the background (the stream is done with the client)."""
    for turn in turns:
        svc.spawn(turn.finish(cut=cut))


def _broken(svc: Services, turns: list[GuardedTurn], end: StreamEnd, failure: UpstreamFailure) -> bytes:
    """The upstream broke mid-stream: the error event to send, each turn recorded as cut."""
    end.how = "upstream_error"
    _finish(svc, turns, f"upstream_error: {failure.code or failure.message}")
    return sse(failure.body())


def _record_if_cut(svc: Services, turns: list[GuardedTurn], end: StreamEnd) -> Callable[[], Awaitable[None]]:
    async def record() -> None:
        if end.how is None:  # the client left mid-stream: the decisions are still recorded, marked as cut
            svc.metrics.client_disconnects.labels("mid_stream").inc()
            _finish(svc, turns, "client_disconnected")
    return record


async def _sse(svc: Services, turn: GuardedTurn, end: StreamEnd) -> AsyncIterator[bytes]:
    async for chunk in turn.chunks():
        if isinstance(chunk, UpstreamFailure):
            yield _broken(svc, [turn], end, chunk)
            return
        yield sse(chunk)
    end.how = "done"
    yield DONE
    _finish(svc, [turn])


async def _sse_early(svc: Services, turn: GuardedTurn, end: StreamEnd) -> AsyncIterator[bytes]:
    turn.sent_early = turn.early_prefix
    yield sse(chunk_like({}, turn.chat.model, {"role": "assistant", "content": turn.early_prefix}))
    try:
        await turn.decide()
    except UpstreamFailure as error:
        svc.metrics.count_upstream_failure(error.status)
        await record_unanswered(svc, turn.request_id, turn.facts, "upstream_error", error)
        end.how = "upstream_error"
        yield sse(error.body())
        return
    async for part in _sse(svc, turn, end):
        yield part


def sse(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload, ensure_ascii=False).encode() + b"\n\n"


async def _passthrough(chunks: AsyncIterator[dict[str, Any]], svc: Services, end: StreamEnd) -> AsyncIterator[bytes]:
    try:
        async for chunk in chunks:
            yield sse(chunk)
    except UpstreamFailure as error:
        svc.metrics.count_upstream_failure(error.status)
        end.how = "upstream_error"
        yield sse(error.body())
        return
    end.how = "done"
    yield DONE


async def _unguarded(svc: Services, chat: ChatCompletionRequest, authorization: str | None, request_id: str,
                     facts: RequestFacts, skipped: str = "guard_disabled") -> Response:
    """Pass a request through unjudged; every skip is counted and audited with its reason."""
    headers = {"x-heedful-request-id": request_id, "x-heedful-outcome": f"skipped_{skipped}"}
    await record_skip(svc, request_id, facts, skipped)
    if chat.stream:
        chunks = await svc.upstream.stream_chat(chat.upstream_body(), authorization)
        end = StreamEnd()
        stream = GuardedStream(_passthrough(chunks, svc, end), headers, end)
        stream.on_close(chunks.aclose)
        return stream
    response = await svc.upstream.chat(chat.upstream_body(), authorization)
    return JSONResponse(response, headers=headers)

