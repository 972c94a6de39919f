"""A JSON (non-streaming) request answered from an upstream stream: the draft's windows are scored while the model is
still writing, so the guard's work after the last token is one window or two, whatever the reply's length.

The client still gets an ordinary `chat.completion` object, assembled from the chunks. Only plain-text requests take
this path (one choice, no tools or functions, no logprobs, no audio); the rest ask the upstream for JSON as before.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from app.openai.protocol import ChatCompletionRequest
from app.scoring import ScoringService
from classifiers import PreparedContext
from classifiers.encoder import WindowCache

_NOT_PLAIN_TEXT = ("tools", "functions", "tool_choice", "function_call", "logprobs", "top_logprobs", "audio", "modalities",
                   "prediction")
_SENTENCE_ENDS = (".", "!", "?", "\n", "…")


def eligible(chat: ChatCompletionRequest) -> bool:
    extras = chat.model_extra or {}
    return (chat.n or 1) == 1 and not any(extras.get(name) for name in _NOT_PLAIN_TEXT)


async def collect(chunks: AsyncIterator[dict[str, Any]], scoring: ScoringService, prepared: asyncio.Task[PreparedContext],
                  window_cache: WindowCache) -> dict[str, Any]:
    """Read the whole stream into a chat.completion, scoring settled windows in the background as sentences end."""
    parts: list[str] = []
    tool_calls: dict[int, dict[str, Any]] = {}
    first: dict[str, Any] = {}
    finish: str | None = None
    usage: Any = None
    reading: asyncio.Task[None] | None = None
    try:
        async for chunk in chunks:
            first = first or chunk
            usage = chunk.get("usage") or usage
            for choice in chunk.get("choices") or []:
                delta = choice.get("delta") or {}
                piece = delta.get("content") or ""
                parts.append(piece)
                for call in delta.get("tool_calls") or []:
                    _merge_tool_call(tool_calls, call)
                finish = choice.get("finish_reason") or finish
                # One read-ahead at a time, started when a sentence ends and the context is ready; a busy reader is
                # simply skipped (the next sentence end catches up).
                if piece.rstrip(" ").endswith(_SENTENCE_ENDS) and prepared.done() and not prepared.cancelled() \
                        and prepared.exception() is None and (reading is None or reading.done()):
                    reading = asyncio.create_task(scoring.read_ahead(prepared.result(), "".join(parts), window_cache))
    finally:
        if reading is not None:
            try:
                await reading
            except Exception:  # noqa: BLE001 - reading ahead only saves time; the guard scores the whole draft anyway
                window_cache.clear()
    message: dict[str, Any] = {"role": "assistant", "content": "".join(parts)}
    if tool_calls:
        # A model may call a tool even unasked; the reply is then passed through as a tool call, never judged.
        message = {"role": "assistant", "content": message["content"] or None,
                   "tool_calls": [tool_calls[i] for i in sorted(tool_calls)]}
    completion: dict[str, Any] = {
        "id": first.get("id", "chatcmpl-heedful"), "object": "chat.completion", "created": first.get("created", int(time.time())),
        "model": first.get("model", ""),
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish or "stop"}],
    }
    if first.get("system_fingerprint"):
        completion["system_fingerprint"] = first["system_fingerprint"]
    if usage is not None:
        completion["usage"] = usage
    return completion


def _merge_tool_call(calls: dict[int, dict[str, Any]], delta: dict[str, Any]) -> None:
    """Streamed tool calls arrive in pieces keyed by index: the id, type and name once, the arguments in fragments."""
    index = int(delta.get("index", 0))
    call = calls.setdefault(index, {"id": None, "type": "function", "function": {"name": "", "arguments": ""}})
    call["id"] = delta.get("id") or call["id"]
    call["type"] = delta.get("type") or call["type"]
    function = delta.get("function") or {}
    call["function"]["name"] += function.get("name") or ""
    call["function"]["arguments"] += function.get("arguments") or ""
