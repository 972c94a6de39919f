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
from app.policy.engine import RequestFacts, leading_prefix_rules, policy_values
from app.policy.loader import LoadedPolicy
from app.services import Services
from classifiers import PreparedContext, Scores
from classifiers.labels import REPLY_SCORES

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
    early = await _early_prefix(svc, policy, facts, prepared)
    if early:
        # Crisis resources go out now, before the draft is read; the body follows under the usual holdback. The decision
        # is not known yet, so the headers carry only what is: the rest is in the audit record.
        headers = {"x-heedful-request-id": request_id, "x-heedful-policy": policy.name,
                   "x-heedful-policy-version": policy.version, "x-heedful-policy-revision": policy.revision,
                   "x-heedful-mode": policy.document.spec.mode,
                   "x-heedful-also": ",".join(rule.name for rule in early), "x-heedful-holdback": _holdback_name(holdback)}
        prefix = "".join(rule.text + "\n\n" for rule in early if rule.text)

        async def early_body() -> AsyncIterator[bytes]:
            yield sse(_chunk({}, chat, {"role": "assistant", "content": prefix}))
            try:
                held, window, tool_call = await _hold(upstream, holdback)
            except UpstreamFailure as error:
                prepared.cancel()
                svc.metrics.count_upstream_failure(error.status)
                yield sse(error.body())
                return
            async for part in _after_holdback(svc, policy, chat, messages, facts, prepared, authorization, request_id,
                                              started, upstream, held, window, tool_call, sent_prefix=prefix):
                yield part

        return StreamingResponse(early_body(), media_type="text/event-stream", headers=headers)
    try:
        held, window, tool_call = await _hold(upstream, holdback)
    except UpstreamFailure:
        prepared.cancel()
        raise
    if tool_call:
        prepared.cancel()
        headers = {"x-heedful-request-id": request_id, "x-heedful-outcome": "skipped_tool_call"}
        return StreamingResponse(_release(held, upstream, "", [], chat, svc.metrics), media_type="text/event-stream",
                                 headers=headers)
    waited_upstream = time.perf_counter() - started
    decision = await svc.guard.decide(policy, chat, facts, messages, prepared, window, authorization)
    headers = decision_headers(decision, request_id)
    headers["x-heedful-holdback"] = _holdback_name(holdback)
    body = _after_decision(svc, decision, chat, messages, facts, prepared, request_id, started, waited_upstream, upstream,
                           held, window, sent_prefix="")
    return StreamingResponse(body, media_type="text/event-stream", headers=headers)


def _holdback_name(holdback: Any) -> str:
    return "whole" if holdback.whole else f"{holdback.sentences} sentences"


async def _early_prefix(svc: Services, policy: LoadedPolicy, facts: RequestFacts,
                        prepared: asyncio.Task[PreparedContext]) -> tuple[Any, ...]:
    """The leading continuing prepend rules (crisis resources) that hold on the context alone, once it is scored. The
    context pass runs while the model starts writing, so this rarely waits; on a scoring fault nothing is sent early
    and the usual path (with its failure mode) decides."""
    if not any(rule.continue_ for rule in policy.document.spec.rules[:1]):
        return ()
    try:
        context = await asyncio.wait_for(asyncio.shield(prepared), policy.document.spec.limits.scoring_timeout_ms / 1000)
        zero = dict.fromkeys(REPLY_SCORES, 0.0)
        values = policy_values(Scores(zero, dict(context.signals)), svc.scoring.thresholds, facts, 0)
        return leading_prefix_rules(policy, values)
    except Exception:  # noqa: BLE001 - the normal path will record the fault under the policy's failure mode
        return ()


async def _hold(upstream: AsyncIterator[dict[str, Any]], holdback: Any) -> tuple[list[dict[str, Any]], str, bool]:
    """Read the upstream stream until the holdback is satisfied (or a tool call shows): the held chunks and their text."""
    held: list[dict[str, Any]] = []
    window = ""
    while True:
        try:
            chunk = await upstream.__anext__()
        except StopAsyncIteration:
            break
        held.append(chunk)
        delta = _delta(chunk)
        if delta.get("tool_calls") or delta.get("function_call"):
            return held, window, True
        window += delta.get("content") or ""
        if not holdback.whole and holdback.sentences and sentences_in(window) >= holdback.sentences:
            break
    return held, window, False


async def _after_holdback(svc: Services, policy: LoadedPolicy, chat: ChatCompletionRequest, messages: list[dict[str, Any]],
                          facts: RequestFacts, prepared: asyncio.Task[PreparedContext], authorization: str | None,
                          request_id: str, started: float, upstream: AsyncIterator[dict[str, Any]],
                          held: list[dict[str, Any]], window: str, tool_call: bool, sent_prefix: str) -> AsyncIterator[bytes]:
    if tool_call:
        prepared.cancel()
        async for part in _release(held, upstream, "", [], chat, svc.metrics):
            yield part
        return
    waited_upstream = time.perf_counter() - started
    decision = await svc.guard.decide(policy, chat, facts, messages, prepared, window, authorization)
    async for part in _after_decision(svc, decision, chat, messages, facts, prepared, request_id, started, waited_upstream,
                                      upstream, held, window, sent_prefix):
        yield part


async def _after_decision(svc: Services, decision: Decision, chat: ChatCompletionRequest, messages: list[dict[str, Any]],
                          facts: RequestFacts, prepared: asyncio.Task[PreparedContext], request_id: str, started: float,
                          waited_upstream: float, upstream: AsyncIterator[dict[str, Any]], held: list[dict[str, Any]],
                          window: str, sent_prefix: str) -> AsyncIterator[bytes]:
    """Stream what the decision settled: the held chunks and the rest of the upstream, or the repaired text. A prefix
    already sent early is not sent again."""
    svc.metrics.upstream_seconds.observe(waited_upstream)
    decision.upstream_seconds = waited_upstream
    added = time.perf_counter() - started - waited_upstream
    template = held[0] if held else {}
    keeps_original = decision.prefix + window + decision.suffix == decision.text
    if not keeps_original:
        await upstream.aclose()  # type: ignore[attr-defined]
        text = decision.text[len(sent_prefix):] if sent_prefix and decision.text.startswith(sent_prefix) else decision.text
        for index, piece in enumerate(_PIECE.findall(text)):
            first = index == 0 and not sent_prefix
            yield sse(_chunk(template, chat, {"role": "assistant", "content": piece} if first else {"content": piece}))
        yield sse(_chunk(template, chat, {}, "stop"))
        yield DONE
        svc.spawn(record_decision(svc, decision, facts, request_id, messages, True, added))
        return
    if decision.prefix and decision.prefix != sent_prefix:
        yield sse(_chunk(template, chat, {"role": "assistant", "content": decision.prefix[len(sent_prefix):]
                                          if decision.prefix.startswith(sent_prefix) else decision.prefix}))
    full: list[str] = []
    async for part in _release(held, upstream, decision.suffix, full, chat, svc.metrics):
        yield part
    svc.spawn(_audit_whole(svc, decision, "".join(full), prepared, facts, request_id, messages, added))


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
