"""Assembles the app: services in the lifespan, routers, the OpenAI-style error handlers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from app.api.main import api_router
from app.config import Settings
from app.errors import GuardError, InvalidRequest, error_response, handle_guard_error, request_id_headers
from app.metrics import Metrics
from app.policy.watcher import PolicySnapshot
from app.services import build_services

if TYPE_CHECKING:
    from app.console.server import MountedConsole


def create_app(settings: Settings, policies_read: PolicySnapshot | None = None) -> FastAPI:
    """`policies_read`: the policy set already read and checked by `heedful serve` (else it is read at start-up)."""
    metrics = Metrics()

    console: MountedConsole | None = None

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.services = services = build_services(settings, metrics, policies_read)
        await services.store.start()
        watcher = asyncio.create_task(services.policies.watch(settings.policy_poll_s))
        if console is not None:
            await console.start()
        yield
        watcher.cancel()
        if console is not None:
            await services.drain(settings.shutdown_drain_s)  # the last audit records reach the console first
            await console.stop()
        # Audit records of streams that just finished are written in the background: let them land before the store
        # closes, so a shutdown never loses one.
        await services.drain(settings.shutdown_drain_s)
        await services.upstream.aclose()
        await services.store.aclose()
        await services.users.store.aclose()
        services.scoring.shutdown()

    app = FastAPI(title="Heedful", version="0.1.0", lifespan=lifespan)
    app.state.metrics = metrics
    app.include_router(api_router)
    app.add_exception_handler(GuardError, handle_guard_error)

    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
    if settings.console:
        from app.console.server import MountedConsole  # the console's dependencies load only where it is on

        console = MountedConsole(app, settings)
    return app


async def _invalid(_: Request, exc: Exception) -> JSONResponse:
    return error_response(InvalidRequest(str(exc)), request_id_headers())


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    """An unknown path or method, in the OpenAI error shape like every other error."""
    assert isinstance(exc, HTTPException)
    error = GuardError(str(exc.detail), code="not_found" if exc.status_code == 404 else None)
    error.status, error.type = exc.status_code, "invalid_request_error"
    return error_response(error, request_id_headers() | dict(exc.headers or {}))


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    """The last resort: a bug still answers as an OpenAI error with a request id to find it in the log by."""
    headers = request_id_headers()
    logging.getLogger("heedful").error("unhandled error", exc_info=exc, extra={"request_id": headers["x-heedful-request-id"]})
    return error_response(GuardError("internal error; the request id identifies it in the proxy's log"), headers)
