"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> JSONResponse:
    return JSONResponse({"status": "ok"})


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    svc = getattr(request.app.state, "services", None)
    if svc is None:
        return JSONResponse({"status": "starting"}, status_code=503)
    policies = svc.policies
    # Store health never fails readiness while audit is best-effort: Redis being away costs sharing, not answers.
    store = (await svc.store.health()) | {"audit_required": svc.settings.audit_required}
    audit_blocks = svc.settings.audit_required and store["audit_at_risk"] is not None
    return JSONResponse({
        "status": "not_ready" if audit_blocks else "ready",
        "model": svc.scoring.scorer.info.name,
        "policies": {p.name: p.version for p in policies.active.policies},
        "policy_revisions": {p.name: p.revision for p in policies.active.policies},
        "last_policy_error": policies.last_error,
        "store": store,
    }, status_code=503 if audit_blocks else 200)


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
