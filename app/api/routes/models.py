"""GET /v1/models: passed through to the upstream."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from app.errors import GuardError, UpstreamFailure, error_response
from app.services import services

router = APIRouter(tags=["models"])


@router.get("/v1/models")
async def list_models(request: Request) -> JSONResponse:
    request_id = uuid.uuid4().hex
    try:
        status, body = await services(request).upstream.models(request.headers.get("authorization"))
    except GuardError as error:
        headers = {"x-heedful-request-id": request_id}
        if isinstance(error, UpstreamFailure):
            headers |= dict(error.passed_headers)
        return error_response(error, headers)
    return JSONResponse(body, status_code=status, headers={"x-heedful-request-id": request_id})
