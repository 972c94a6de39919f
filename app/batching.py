"""Opportunistic micro-batching: concurrent scoring calls share one ONNX run, and a lone call never waits.

Each worker takes whatever is queued when it frees up (up to max_batch) and runs it as one batch in the thread pool, so
at one request in flight nothing is added, and under load the per-call overhead (tokeniser and session calls, thread
hops) is paid once per batch. If a batch fails, its items are retried one by one so one bad input cannot fail the rest.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Generic, TypeVar

In = TypeVar("In")
Out = TypeVar("Out")


class MicroBatcher(Generic[In, Out]):
    def __init__(self, run_batch: Callable[[Sequence[In]], list[Out]], pool: Executor, workers: int, max_batch: int = 8) -> None:
        self._run_batch, self._pool, self._workers, self._max_batch = run_batch, pool, workers, max_batch
        self._queue: asyncio.Queue[tuple[In, asyncio.Future[Out]]] | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def _start(self) -> asyncio.Queue[tuple[In, asyncio.Future[Out]]]:
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._tasks = [asyncio.create_task(self._work()) for _ in range(self._workers)]
        return self._queue

    async def __call__(self, item: In) -> Out:
        future: asyncio.Future[Out] = asyncio.get_running_loop().create_future()
        self._start().put_nowait((item, future))
        return await future

    async def _work(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            live = [(item, future) for item, future in batch if not future.cancelled()]
            if not live:
                continue
            try:
                results = await loop.run_in_executor(self._pool, self._run_batch, [item for item, _ in live])
            except Exception as exc:
                if len(live) == 1:
                    _settle(live[0][1], exc=exc)
                    continue
                for item, future in live:
                    try:
                        _settle(future, (await loop.run_in_executor(self._pool, self._run_batch, [item]))[0])
                    except Exception as single:
                        _settle(future, exc=single)
                continue
            for (_, future), result in zip(live, results, strict=True):
                _settle(future, result)

    def close(self) -> None:
        for task in self._tasks:
            task.cancel()


def _settle(future: asyncio.Future[Out], result: Out | None = None, exc: BaseException | None = None) -> None:
    if future.done():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)  # type: ignore[arg-type]
