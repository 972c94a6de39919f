"""The one module that talks HTTP to the upstream LLM API and turns its responses into plain dicts or typed errors.

Whatever the upstream does, a call ends by its deadline: one total deadline per call (headers to last byte, the repair
calls included, each its own), never a per-read timeout that a reply dripping a byte a second keeps alive. Replies are
read as their bytes arrive and cut at a byte cap, so a huge reply never sits in memory. What reaches the pipeline has
the OpenAI shape (a chunk of the wrong shape is the upstream's failure, not a crash later) and holds no lone surrogate
(replaced by U+FFFD, so the reply can still be encoded for the client and the tokenizer).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from contextvars import ContextVar
from typing import Any

import httpx

from app.errors import (UpstreamFailure, UpstreamOverloaded, UpstreamRejected, UpstreamTimeout, UpstreamTooLarge,
                        UpstreamUnavailable)
from app.logs import redact_http_client_logs

DEFAULT_MAX_RESPONSE_BYTES = 8 * 1024 * 1024
_PASSED_HEADERS = re.compile(r"(?i)^(retry-after|retry-after-ms|x-ratelimit-[a-z0-9-]+)$")
_MAY_HOLD_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")

# The `x-api-key` the client sent, for upstreams that authenticate with it (Anthropic-style gateways). Set by the chat
# route for the request's task; the repair calls the guard makes in that task see it too, without threading one more
# credential through every signature.
client_api_key: ContextVar[str | None] = ContextVar("client_api_key", default=None)
# The rate-limit headers (`x-ratelimit-*`) of the request's latest answered upstream call, passed back to the client as
# a direct call would show them: OpenAI clients and SDK users throttle themselves on x-ratelimit-remaining-*. The chat
# route sets a fresh dict per request; calls made in the request's other tasks (repairs) update that same dict.
upstream_limits: ContextVar[dict[str, str] | None] = ContextVar("upstream_limits", default=None)


class Upstream:
    def __init__(self, base_url: str, api_key: str | None, deadline_s: float, connect_timeout_s: float,
                 transport: httpx.AsyncBaseTransport | None = None, *,
                 max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES, api_key_header: str = "authorization") -> None:
        redact_http_client_logs()
        url = httpx.URL(base_url.rstrip("/"))
        # Credentials in the URL go out as Basic auth, as httpx would send them, but never sit in the URL that httpx
        # logs at INFO for every request.
        auth = httpx.BasicAuth(url.username, url.password) if url.username or url.password else None
        self._base = str(url.copy_with(username=None, password=None)) if auth else str(url)
        self._api_key, self._api_key_header = api_key, api_key_header.lower()
        self._deadline_s, self._max_bytes = deadline_s, max_response_bytes
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(deadline_s, connect=connect_timeout_s), auth=auth,
            limits=httpx.Limits(max_connections=256, max_keepalive_connections=64),
            transport=transport,
            # A plain-HTTP upstream (a sidecar model server on loopback) has no certificate to check, and loading the CA
            # bundle for nothing is about a twentieth of the proxy's start-up. Redirects are not followed, so an http
            # upstream never turns into an https one; an https upstream is always verified.
            verify=url.scheme == "https",
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    def _headers(self, authorization: str | None) -> dict[str, str]:
        headers = {"content-type": "application/json"}
        if self._api_key and self._api_key_header == "authorization":
            headers["authorization"] = f"Bearer {self._api_key}"
        elif self._api_key:
            headers[self._api_key_header] = self._api_key
        else:
            if authorization:
                headers["authorization"] = authorization
            if (key := client_api_key.get()) is not None:
                headers["x-api-key"] = key
        return headers

    def _deadline(self) -> float:
        return asyncio.get_running_loop().time() + self._deadline_s

    async def chat(self, body: dict[str, Any], authorization: str | None) -> dict[str, Any]:
        request = self._client.build_request("POST", f"{self._base}/chat/completions", json=body | {"stream": False},
                                             headers=self._headers(authorization))
        completion: dict[str, Any] = checked_completion(await self._json(request, self._deadline()))
        return completion

    async def stream_chat(self, body: dict[str, Any], authorization: str | None) -> ChunkStream:
        """Open a streaming completion: errors before the first chunk raise here; a later cut raises from the iterator.
        The deadline runs from here to the stream's last byte."""
        deadline = self._deadline()
        request = self._client.build_request("POST", f"{self._base}/chat/completions", json=body | {"stream": True},
                                             headers=self._headers(authorization))
        response = await self._send(request, deadline)
        if response.status_code >= 400:
            raise await self._failure(response, deadline)
        return ChunkStream(_chunks(self._bytes(response, deadline)), response)

    async def models(self, authorization: str | None) -> tuple[int, Any]:
        request = self._client.build_request("GET", f"{self._base}/models", headers=self._headers(authorization))
        deadline = self._deadline()
        response = await self._send(request, deadline)
        if response.status_code >= 400:
            raise await self._failure(response, deadline)
        return response.status_code, _parsed(await self._read(response, deadline))

    async def _json(self, request: httpx.Request, deadline: float) -> Any:
        response = await self._send(request, deadline)
        if response.status_code >= 400:
            raise await self._failure(response, deadline)
        body = _parsed(await self._read(response, deadline))
        if not isinstance(body, dict):
            raise UpstreamUnavailable("upstream returned a body that is not a JSON object", code="upstream_malformed")
        return body

    async def _send(self, request: httpx.Request, deadline: float) -> httpx.Response:
        try:
            async with asyncio.timeout_at(deadline):
                response = await self._client.send(request, stream=True)
            if response.status_code < 400 and (limits := upstream_limits.get()) is not None:
                limits.update(_passed_headers(response))
            return response
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise self._timed_out() from exc
        except httpx.HTTPError as exc:
            raise UpstreamUnavailable(f"upstream unreachable: {type(exc).__name__}: {exc}",
                                      code="upstream_unavailable") from exc

    def _timed_out(self) -> UpstreamTimeout:
        return UpstreamTimeout(f"upstream gave no complete answer within the {self._deadline_s:g} s deadline",
                               code="upstream_timeout")

    async def _bytes(self, response: httpx.Response, deadline: float) -> AsyncGenerator[bytes, None]:
        """The body as it arrives, under the call's deadline and byte cap; the connection is closed however it ends."""
        received = 0
        pieces = response.aiter_bytes()
        try:
            while True:
                try:
                    async with asyncio.timeout_at(deadline):
                        piece = await anext(pieces)
                except StopAsyncIteration:
                    return
                received += len(piece)
                if received > self._max_bytes:
                    raise UpstreamTooLarge(f"upstream reply passed the {self._max_bytes} byte limit",
                                           code="upstream_response_too_large")
                yield piece
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise self._timed_out() from exc
        except httpx.HTTPError as exc:
            raise UpstreamUnavailable(f"upstream stream broke: {type(exc).__name__}", code="upstream_unavailable") from exc
        finally:
            await response.aclose()

    async def _read(self, response: httpx.Response, deadline: float) -> bytes:
        body = bytearray()
        async with aclosing(self._bytes(response, deadline)) as pieces:
            async for piece in pieces:
                body += piece
        return bytes(body)

    async def _failure(self, response: httpx.Response, deadline: float) -> UpstreamFailure:
        """The client's error for an upstream error status, with the upstream's back-off headers."""
        try:
            raw = await self._read(response, deadline)
        except UpstreamFailure:
            raw = b""
        try:
            body: Any = _parsed(raw)
        except UpstreamUnavailable:
            body = raw[:500].decode("utf-8", "replace")
        status = response.status_code
        error: UpstreamFailure
        if status < 500:
            error = UpstreamRejected(status, body)
        elif status == 503:
            error = UpstreamOverloaded("upstream returned 503 (overloaded)", code="upstream_overloaded")
        else:
            error = UpstreamUnavailable(f"upstream returned {status}", code="upstream_unavailable")
        error.passed_headers = tuple(_passed_headers(response).items())
        return error


class ChunkStream:
    """An open upstream stream: iterate it for chunks; `aclose()` releases the connection whether or not it was read
    (closing a generator that never started runs none of its cleanup)."""

    def __init__(self, chunks: AsyncGenerator[dict[str, Any], None], response: httpx.Response) -> None:
        self._chunks, self._response = chunks, response

    def __aiter__(self) -> ChunkStream:
        return self

    async def __anext__(self) -> dict[str, Any]:
        return await anext(self._chunks)

    async def aclose(self) -> None:
        try:
            await self._chunks.aclose()
        finally:  # the connection goes back whatever state the reader was left in
            await self._response.aclose()


def _parsed(raw: bytes) -> Any:
    """JSON from the upstream, with any lone surrogate replaced; NaN and Infinity are not JSON."""
    try:
        text = raw.decode("utf-8")
        value = json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise UpstreamUnavailable("upstream returned a body that is not valid JSON", code="upstream_malformed") from exc
    return _without_lone_surrogates(value) if _MAY_HOLD_SURROGATE.search(text) else value


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a valid JSON number")


def _without_lone_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, list):
        return [_without_lone_surrogates(item) for item in value]
    if isinstance(value, dict):
        return {_without_lone_surrogates(k): _without_lone_surrogates(v) for k, v in value.items()}
    return value


def _malformed(what: str) -> UpstreamUnavailable:
    return UpstreamUnavailable(f"upstream sent {what}", code="upstream_malformed")


def _check_choice(choice: Any, part: str) -> int:
    """One choice of a completion (part "message") or a chunk (part "delta"); returns its index."""
    if not isinstance(choice, dict):
        raise _malformed(f"a choice that is not an object: {json.dumps(choice)[:80]}")
    inner = choice.get(part)
    if inner is not None:
        if not isinstance(inner, dict):
            raise _malformed(f"a choice whose {part} is not an object")
        if not isinstance(inner.get("content"), str | list | None):
            raise _malformed(f"a choice whose {part}.content is not text")
        if not isinstance(inner.get("tool_calls"), list | None):
            raise _malformed(f"a choice whose {part}.tool_calls is not a list")
    if not isinstance(choice.get("finish_reason"), str | None):
        raise _malformed("a choice whose finish_reason is not a string")
    index = choice.get("index", 0)
    if not isinstance(index, int) or isinstance(index, bool) or index < 0:
        raise _malformed("a choice whose index is not a number")
    return index


def checked_completion(body: dict[str, Any]) -> dict[str, Any]:
    choices = body.get("choices")
    if not isinstance(choices, list):
        raise _malformed("a completion without a list of choices")
    for choice in choices:
        _check_choice(choice, "message")
    return body


async def _chunks(pieces: AsyncGenerator[bytes, None]) -> AsyncGenerator[dict[str, Any], None]:
    """Server-sent events as checked chunks. A stream that ends without `[DONE]` is complete when every choice it
    opened has finished (some upstreams never send the line); otherwise it was cut. Closing this closes the connection
    (an outer generator's close does not reach the ones it reads from by itself)."""
    opened: set[int] = set()
    finished: set[int] = set()
    async with aclosing(pieces), aclosing(_lines(pieces)) as lines:
        async for line in lines:
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                return
            chunk = _parsed(data.encode("utf-8"))
            if isinstance(chunk, dict) and "error" in chunk:
                raise UpstreamUnavailable(f"upstream stream error: {str(chunk['error'])[:300]}", code="upstream_error")
            if not isinstance(chunk, dict) or not isinstance(chunk.get("choices", []), list):
                raise _malformed("a stream chunk of the wrong shape")
            for choice in chunk.get("choices") or []:
                index = _check_choice(choice, "delta")
                opened.add(index)
                if choice.get("finish_reason"):
                    finished.add(index)
            yield chunk
    if not opened or opened - finished:
        raise UpstreamUnavailable("upstream stream ended before it was complete (no [DONE], no finish_reason)",
                                  code="upstream_unavailable")


async def _lines(pieces: AsyncIterator[bytes]) -> AsyncGenerator[str, None]:
    """Lines of a byte stream; the buffer is bounded by the byte cap upstream of it."""
    buffer = bytearray()
    async for piece in pieces:
        scan_from = len(buffer)
        buffer += piece
        start = 0
        while (end := buffer.find(b"\n", scan_from)) != -1:
            yield _decoded(buffer[start:end])
            start = scan_from = end + 1
        del buffer[:start]
    if buffer:
        yield _decoded(buffer)


def _decoded(line: bytearray) -> str:
    try:
        return line.decode("utf-8").rstrip("\r")
    except UnicodeDecodeError as exc:
        raise _malformed("a stream line that is not UTF-8") from exc


def _passed_headers(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if _PASSED_HEADERS.match(k)}
