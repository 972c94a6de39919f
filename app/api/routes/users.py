"""DELETE /v1/guard/users/{user_id}: forget everything remembered about one user of the caller's tenant."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from app.api.request_body import tenant_of
from app.errors import GuardError, InvalidRequest, NotReady, error_response
from app.services import services
from app.users.identity import MAX_ID_CHARS
from app.users.store import UserStoreUnavailable

router = APIRouter(tags=["users"])


@router.delete("/v1/guard/users/{user_id}")
async def forget(user_id: str, request: Request) -> JSONResponse:
    svc = services(request)
    settings = svc.settings
    tenant = tenant_of(request, settings.tenant_header, settings.tenant_keys, settings.trust_tenant_header)
    try:
        if not user_id.strip() or len(user_id) > MAX_ID_CHARS:
            raise InvalidRequest(f"user id must be 1 to {MAX_ID_CHARS} characters", param="user_id", code="invalid_value")
        try:
            existed = await svc.users.forget(tenant, user_id.strip())
        except UserStoreUnavailable as exc:
            raise NotReady(f"user memory store unavailable, nothing was forgotten: {exc}", code="store_unavailable") from exc
    except GuardError as error:
        return error_response(error)
    return JSONResponse({"user": user_id, "tenant": tenant, "forgotten": existed})
