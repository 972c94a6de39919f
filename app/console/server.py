"""The console as its own server (`heedful console`) or mounted at /console in the proxy (HEEDFUL_CONSOLE=true)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi.responses import RedirectResponse

from app.config import Settings
from app.console.runtime import ConsoleRuntime, build_runtime
from app.console.web import create_console

if TYPE_CHECKING:
    from app.services import Services

MOUNT = "/console"


def create_standalone(settings: Settings) -> FastAPI:
    runtime = build_runtime(settings)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await runtime.start_ingest(None)
        yield
        await runtime.stop()

    app = FastAPI(title="Heedful review console", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.mount(MOUNT, create_console(runtime))

    @app.get("/", include_in_schema=False)
    async def home() -> RedirectResponse:
        return RedirectResponse(MOUNT + "/", status_code=303)

    return app


class MountedConsole:
    """The console inside the proxy: it reads the proxy's own store, scorer and policies once the services exist."""

    def __init__(self, app: FastAPI, settings: Settings) -> None:
        self._app = app
        self.runtime: ConsoleRuntime = build_runtime(settings, scorer=lambda: self._services().scoring.scorer,
                                                     policies=lambda: self._services().policies.active)
        app.mount(MOUNT, create_console(self.runtime))

    def _services(self) -> Services:
        return self._app.state.services  # type: ignore[no-any-return]

    async def start(self) -> None:
        await self.runtime.start_ingest(self._services().store)

    async def stop(self) -> None:
        await self.runtime.stop()
