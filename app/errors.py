"""OpenAI-shaped errors as values.

    GuardError                     -> {"error": {"message", "type", "param", "code"}}
    ├── InvalidRequest (400)       malformed JSON or a field that is not valid
    ├── BodyTooLarge (413)
    ├── NotReady (503)             model or policies not loaded yet
    └── UpstreamFailure            the upstream could not give an answer
        ├── UpstreamUnavailable (502)  connection refused, 5xx, unreadable body, stream cut
        │   ├── UpstreamTooLarge (502)   the reply passed the byte cap (cut as it arrived)
        │   └── UpstreamOverloaded (503) the upstream's own 503, with its retry-after
        ├── UpstreamTimeout (504)      the upstream deadline passed (hang, drip, slow stream)
        └── UpstreamRejected (4xx)     the upstream's own error, passed through as it came

Upstream failures carry the upstream's `retry-after` and `x-ratelimit-*` headers, so a client's back-off still works.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse


class GuardError(Exception):
    status = 500
    type = "server_error"

    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message, self.param, self.code = message, param, code

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


class InvalidRequest(GuardError):
    status, type = 400, "invalid_request_error"


class BodyTooLarge(GuardError):
    status, type = 413, "invalid_request_error"


class NotReady(GuardError):
    status, type = 503, "service_unavailable"


class UpstreamFailure(GuardError):
    status, type = 502, "upstream_error"
    passed_headers: tuple[tuple[str, str], ...] = ()  # the upstream's retry-after and x-ratelimit-* headers


class UpstreamUnavailable(UpstreamFailure):
    pass


class UpstreamTooLarge(UpstreamUnavailable):
    pass


class UpstreamOverloaded(UpstreamUnavailable):
    status = 503


class UpstreamTimeout(UpstreamFailure):
    status, type = 504, "upstream_timeout"


class UpstreamRejected(UpstreamFailure):
    """An upstream 4xx: its body is returned unchanged with its status."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"upstream returned {status}")
        self.status, self.upstream_body = status, body

    def body(self) -> dict[str, Any]:
        if isinstance(self.upstream_body, dict) and "error" in self.upstream_body:
            return self.upstream_body
        return {"error": {"message": str(self.upstream_body), "type": "upstream_error", "param": None, "code": None}}


def error_response(error: GuardError, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status, headers=headers)


async def handle_guard_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, GuardError)
    return error_response(exc, request_id_headers())


def request_id_headers() -> dict[str, str]:
    """A fresh request id, as the header every answer carries (errors raised before a route gave one included)."""
    return {"x-heedful-request-id": uuid.uuid4().hex}
