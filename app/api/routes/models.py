"""GET /v1/models: passed through to the upstream."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from app.errors import GuardError, error_response
from app.services import services

router = APIRouter(tags=["models"])


@router.get("/v1/models")
async def list_models(request: Request) -> JSONResponse:
    try:
        status, body = await services(request).upstream.models(request.headers.get("authorization"))
    except GuardError as error:
        return error_response(error, {"x-heedful-request-id": uuid.uuid4().hex})
    return JSONResponse(body, status_code=status)
