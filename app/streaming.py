"""Streaming under a holdback: the opening window (N sentences, or the whole reply) is scored before the first byte goes out.

If it passes, the held chunks are released and the rest streams through as it comes; the whole reply is scored afterwards
for the audit record. If a rule repairs or replaces it, the upstream stream is closed and the repaired reply is streamed in
the same chunk format. Fixed texts (crisis resources) are added as their own chunks, never by holding the stream back.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi.responses import StreamingResponse

from app.audit import decision_headers, record_decision
from app.errors import UpstreamFailure
from app.guard import Decision
from app.metrics import Metrics
from app.openai.protocol import ChatCompletionRequest
from app.policy.engine import RequestFacts
from app.policy.loader import LoadedPolicy
from app.services import Services
from classifiers import PreparedContext

DONE = b"data: [DONE]\n\n"
_SENTENCE_END = re.compile(r"[.!?…]+[\"')\]]*(?=\s|$)|\n\s*\n")
_PIECE = re.compile(r"\S+\s*|\s+")



def sse(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload, ensure_ascii=False).encode() + b"\n\n"


def sentences_in(text: str) -> int:
    return len(_SENTENCE_END.findall(text.strip() + (" " if text.endswith((" ", "\n")) else "")))


def _delta(chunk: dict[str, Any]) -> dict[str, Any]:
    choices = chunk.get("choices") or []
    return (choices[0].get("delta") or {}) if choices else {}


def _finishes(chunk: dict[str, Any]) -> bool:
    return any(c.get("finish_reason") for c in chunk.get("choices") or [])


def _chunk(template: dict[str, Any], chat: ChatCompletionRequest, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"id": template.get("id", "chatcmpl-heedful"), "object": "chat.completion.chunk",
            "created": template.get("created", int(time.time())), "model": template.get("model", chat.model),
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


async def passthrough_stream(chunks: AsyncIterator[dict[str, Any]], metrics: Metrics) -> AsyncIterator[bytes]:
    try:
        async for chunk in chunks:
            yield sse(chunk)
    except UpstreamFailure as error:
        metrics.count_upstream_failure(error.status)
        yield sse(error.body())
        return
    yield DONE


async def guarded_stream(svc: Services, policy: LoadedPolicy, chat: ChatCompletionRequest, messages: list[dict[str, Any]],
                         facts: RequestFacts, prepared: asyncio.Task[PreparedContext], authorization: str | None,
                         request_id: str) -> StreamingResponse:
    started = time.perf_counter()
    holdback = policy.document.spec.streaming
    try:
        chunks = await svc.upstream.stream_chat(chat.upstream_body(), authorization)
    except UpstreamFailure:
        prepared.cancel()
        raise
    upstream = chunks.__aiter__()
    held: list[dict[str, Any]] = []
    window, tool_call = "", False
    try:
        while True:
            try:
                chunk = await upstream.__anext__()
            except StopAsyncIteration:
                break
            held.append(chunk)
            delta = _delta(chunk)
            if delta.get("tool_calls") or delta.get("function_call"):
                tool_call = True
                break
            window += delta.get("content") or ""
            if not holdback.whole and holdback.sentences and sentences_in(window) >= holdback.sentences:
                break
    except UpstreamFailure:
        prepared.cancel()
        raise
    waited_upstream = time.perf_counter() - started
    svc.metrics.upstream_seconds.observe(waited_upstream)
    template = held[0] if held else {}
    if tool_call:
        prepared.cancel()
        headers = {"x-heedful-request-id": request_id, "x-heedful-outcome": "skipped_tool_call"}
        return StreamingResponse(_release(held, upstream, "", [], chat, svc.metrics), media_type="text/event-stream",
                                 headers=headers)
    decision = await svc.guard.decide(policy, chat, facts, messages, prepared, window, authorization)
    decision.upstream_seconds = waited_upstream
    added = time.perf_counter() - started - waited_upstream
    headers = decision_headers(decision, request_id)
    headers["x-heedful-holdback"] = "whole" if holdback.whole else f"{holdback.sentences} sentences"
    keeps_original = decision.prefix + window + decision.suffix == decision.text

    async def body() -> AsyncIterator[bytes]:
        if not keeps_original:
            await upstream.aclose()
            for index, piece in enumerate(_PIECE.findall(decision.text)):
                yield sse(_chunk(template, chat, {"role": "assistant", "content": piece} if index == 0 else {"content": piece}))
            yield sse(_chunk(template, chat, {}, "stop"))
            yield DONE
            svc.spawn(record_decision(svc, decision, facts, request_id, messages, True, added))
            return
        if decision.prefix:
            yield sse(_chunk(template, chat, {"role": "assistant", "content": decision.prefix}))
        full: list[str] = []
        async for part in _release(held, upstream, decision.suffix, full, chat, svc.metrics):
            yield part
        svc.spawn(_audit_whole(svc, decision, "".join(full), prepared, facts, request_id, messages, added))

    return StreamingResponse(body(), media_type="text/event-stream", headers=headers)


async def _release(held: list[dict[str, Any]], upstream: AsyncIterator[dict[str, Any]], suffix: str, full: list[str],
                   chat: ChatCompletionRequest, metrics: Metrics) -> AsyncIterator[bytes]:
    """Send the held chunks, then the rest of the upstream stream (nothing more if it has ended), collecting the text in
    `full` and adding the suffix just before the finishing chunk."""
    template = held[0] if held else {}

    async def every_chunk() -> AsyncIterator[dict[str, Any]]:
        for chunk in held:
            yield chunk
        async for chunk in upstream:
            yield chunk

    try:
        async for chunk in every_chunk():
            full.append(_delta(chunk).get("content") or "")
            if suffix and _finishes(chunk):
                yield sse(_chunk(template, chat, {"content": suffix}))
                suffix = ""
            yield sse(chunk)
    except UpstreamFailure as error:
        metrics.count_upstream_failure(error.status)
        yield sse(error.body())
        return
    if suffix:
        yield sse(_chunk(template, chat, {"content": suffix}))
    yield DONE


async def _audit_whole(svc: Services, decision: Decision, text: str, prepared: asyncio.Task[PreparedContext],
                       facts: RequestFacts, request_id: str, messages: list[dict[str, Any]], added: float) -> None:
    """Score the whole streamed reply for the audit record and metrics; what was sent is already settled."""
    try:
        scores = (await svc.scoring.score(messages, await prepared, [text]))[0]
        decision.extra["whole_reply_scores"] = scores.reply
        decision.extra["whole_reply_flags"] = scores.flags
    except Exception as exc:  # the reply is delivered; a failed audit score is recorded, not raised
        svc.metrics.failures.labels("scoring_error").inc()
        decision.extra["whole_reply_error"] = str(exc)
    decision.draft = text
    if decision.would_return is None:
        decision.text = decision.prefix + text + decision.suffix
    await record_decision(svc, decision, facts, request_id, messages, True, added)
