"""A stream of several choices (`stream: true`, `n > 1`): every choice is judged, each through its own holdback and
decision, as if it were the only one.

One task reads the upstream stream and splits its interleaved chunks by choice index into single-choice streams; each
feeds its own GuardedTurn (app/pipeline.py). The turns decide a few at a time (the scorer is shared; a large `n` waits
its turn instead of timing out together), then their chunks are merged back into one SSE stream with each choice's
index restored. Each choice leaves its own audit record, with `choice` set.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from app.errors import UpstreamFailure
from app.pipeline import GuardedTurn
from app.upstream import ChunkStream

_END = object()
_DECIDING_AT_ONCE = 4


class ChoiceSplitter:
    """The upstream's n interleaved choices as n single-choice streams (each with index 0, as GuardedTurn reads them).
    Chunks without choices (usage) are kept apart for the end of the merged stream."""

    def __init__(self, upstream: ChunkStream, n: int) -> None:
        self._upstream, self.n = upstream, n
        self._queues: list[asyncio.Queue[Any]] = [asyncio.Queue() for _ in range(n)]
        self.usage: list[dict[str, Any]] = []
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        end: object = _END
        try:
            async for chunk in self._upstream:
                choices = chunk.get("choices") or []
                if not choices:
                    self.usage.append(chunk)
                for choice in choices:
                    index = choice.get("index", 0)
                    if index < self.n:  # an upstream that sends more choices than asked: the extra ones are dropped
                        self._queues[index].put_nowait(chunk | {"choices": [choice | {"index": 0}]})
        except Exception as failure:  # noqa: BLE001 - every choice's reader sees it, none waits forever
            end = failure
        for queue in self._queues:
            queue.put_nowait(end)

    async def choice(self, index: int) -> AsyncIterator[dict[str, Any]]:
        queue = self._queues[index]
        while (item := await queue.get()) is not _END:
            if isinstance(item, Exception):
                raise item
            yield item

    async def aclose(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        await self._upstream.aclose()


async def decide_all(turns: list[GuardedTurn]) -> None:
    """Each choice's holdback and decision; an upstream failure before the decisions fails the whole request."""
    gate = asyncio.Semaphore(_DECIDING_AT_ONCE)

    async def decide(turn: GuardedTurn) -> None:
        async with gate:
            await turn.decide()

    deciding = [asyncio.ensure_future(decide(turn)) for turn in turns]
    try:
        await asyncio.gather(*deciding)
    finally:  # one choice failed (or the client left): the others stop too, before their streams are closed
        for task in deciding:
            task.cancel()
        await asyncio.wait(deciding)


async def merged(turns: list[GuardedTurn], splitter: ChoiceSplitter) -> AsyncIterator[dict[str, Any] | UpstreamFailure]:
    """The choices' chunks as they come, each with its index restored; the first upstream failure ends the stream."""
    # Unbounded: what waits here is bounded by the upstream reply's byte cap.
    queue: asyncio.Queue[tuple[int, Any]] = asyncio.Queue()

    async def pump(turn: GuardedTurn) -> None:
        try:
            async for chunk in turn.chunks():
                queue.put_nowait((turn.choice or 0, chunk))
        except Exception as exc:  # a fault of the proxy's own ends the stream, it is not lost with the task
            queue.put_nowait((turn.choice or 0, exc))
        finally:
            queue.put_nowait((turn.choice or 0, _END))

    pumps = [asyncio.create_task(pump(turn)) for turn in turns]
    try:
        open_choices = len(pumps)
        while open_choices:
            index, item = await queue.get()
            if item is _END:
                open_choices -= 1
            elif isinstance(item, UpstreamFailure):
                yield item
                return
            elif isinstance(item, Exception):
                raise item
            elif item.get("choices"):
                yield item | {"choices": [choice | {"index": index} for choice in item["choices"]]}
        for usage in splitter.usage:
            yield usage
    finally:
        for task in pumps:
            task.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)
