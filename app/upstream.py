"""The one module that talks HTTP to the upstream LLM API and turns its responses into plain dicts or typed errors."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx

from app.errors import UpstreamRejected, UpstreamTimeout, UpstreamUnavailable


class Upstream:
    def __init__(self, base_url: str, api_key: str | None, timeout_s: float, connect_timeout_s: float,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._base = base_url.rstrip("/")
        self._api_key = api_key
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
            limits=httpx.Limits(max_connections=256, max_keepalive_connections=64),
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    def _headers(self, authorization: str | None) -> dict[str, str]:
        headers = {"content-type": "application/json"}
        if self._api_key:
            headers["authorization"] = f"Bearer {self._api_key}"
        elif authorization:
            headers["authorization"] = authorization
        return headers

    async def chat(self, body: dict[str, Any], authorization: str | None) -> dict[str, Any]:
        try:
            response = await self._client.post(f"{self._base}/chat/completions", json=body | {"stream": False},
                                               headers=self._headers(authorization))
        except httpx.TimeoutException as exc:
            raise UpstreamTimeout(f"upstream timed out: {type(exc).__name__}") from exc
        except httpx.HTTPError as exc:
            raise UpstreamUnavailable(f"upstream unreachable: {type(exc).__name__}: {exc}") from exc
        body_out: dict[str, Any] = _json_body(response)
        return body_out

    async def stream_chat(self, body: dict[str, Any], authorization: str | None) -> AsyncIterator[dict[str, Any]]:
        """Open a streaming completion: errors before the first chunk raise here; a later cut raises from the iterator."""
        request = self._client.build_request("POST", f"{self._base}/chat/completions", json=body | {"stream": True},
                                             headers=self._headers(authorization))
        try:
            response = await self._client.send(request, stream=True)
        except httpx.TimeoutException as exc:
            raise UpstreamTimeout(f"upstream timed out: {type(exc).__name__}") from exc
        except httpx.HTTPError as exc:
            raise UpstreamUnavailable(f"upstream unreachable: {type(exc).__name__}: {exc}") from exc
        if response.status_code >= 400:
            await response.aread()
            await response.aclose()
            _json_body(response)  # raises the matching error
        return _chunks(response)

    async def models(self, authorization: str | None) -> tuple[int, Any]:
        try:
            response = await self._client.get(f"{self._base}/models", headers=self._headers(authorization))
        except httpx.TimeoutException as exc:
            raise UpstreamTimeout(f"upstream timed out: {type(exc).__name__}") from exc
        except httpx.HTTPError as exc:
            raise UpstreamUnavailable(f"upstream unreachable: {type(exc).__name__}: {exc}") from exc
        return response.status_code, _json_body(response)


def _json_body(response: httpx.Response) -> Any:
    try:
        body = response.json()
    except ValueError:
        body = None
    if 400 <= response.status_code < 500:
        raise UpstreamRejected(response.status_code, body if body is not None else response.text[:500])
    if response.status_code >= 500:
        raise UpstreamUnavailable(f"upstream returned {response.status_code}")
    if not isinstance(body, dict):
        raise UpstreamUnavailable("upstream returned a body that is not a JSON object")
    return body


async def _chunks(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    done = False
    try:
        async for line in response.aiter_lines():
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                done = True
                break
            try:
                chunk = json.loads(data)
            except ValueError as exc:
                raise UpstreamUnavailable("upstream sent a malformed stream chunk") from exc
            if isinstance(chunk, dict) and "error" in chunk:
                raise UpstreamUnavailable(f"upstream stream error: {chunk['error']}")
            yield chunk
    except httpx.TimeoutException as exc:
        raise UpstreamTimeout("upstream stream timed out") from exc
    except httpx.HTTPError as exc:
        raise UpstreamUnavailable(f"upstream stream broke: {type(exc).__name__}") from exc
    finally:
        await response.aclose()
    if not done:
        raise UpstreamUnavailable("upstream stream ended without [DONE]")
