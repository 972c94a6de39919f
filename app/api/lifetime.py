"""A request's lifetime against its client: upstream work stops when the client leaves, and a stream's clean-up runs
however the stream ends.

Starlette keeps running a handler whose client has gone (nothing reads the socket until the response is sent), so the
handler's work runs as a task raced against the client's disconnect. A streaming body is cancelled when the client
goes, and a body that never started runs no `finally` at all, so a stream's clean-up (release the upstream connection,
record the audit, release the in-flight slot) hangs off the response itself, shielded from that cancellation.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import anyio
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

log = logging.getLogger("heedful.requests")
T = TypeVar("T")


class ClientGone(Exception):
    """The client disconnected before its answer was ready; the work for it was cancelled."""


async def until_disconnected(receive: Receive, work: Awaitable[T]) -> T:
    """The work's result, unless the client leaves first: then the work is cancelled and ClientGone raised. Call it only
    once the request body is read (from then on, the ASGI server's next message is the disconnect)."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_disconnect(receive))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for pending in (task, watcher):
            pending.cancel()
        await asyncio.wait({task, watcher})
        if not watcher.cancelled():
            watcher.exception()  # retrieved: a server that broke the receive channel is a gone client too
    if task.cancelled():
        raise ClientGone()
    return task.result()  # the answer (or its error), also where the client left in the same instant


async def _disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


class StreamEnd:
    """How a stream ended, set by its body: "done" ([DONE] sent), "upstream_error" (an error event sent); None means
    it was cut (the client left, or the server is shutting down)."""

    def __init__(self) -> None:
        self.how: str | None = None


class GuardedStream(StreamingResponse):
    """Server-sent events whose clean-up steps run once, in order, whatever ends the stream."""

    def __init__(self, body: AsyncIterator[bytes], headers: dict[str, str], end: StreamEnd) -> None:
        super().__init__(body, media_type="text/event-stream", headers=headers)
        self.end = end
        self._cleanup: list[Callable[[], Awaitable[None]]] = []

    def on_close(self, step: Callable[[], Awaitable[None]]) -> None:
        self._cleanup.append(step)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                for step in self._cleanup:
                    try:
                        await step()
                    except Exception:  # one failed step must not skip the rest (the in-flight slot, the audit)
                        log.exception("stream clean-up failed")
