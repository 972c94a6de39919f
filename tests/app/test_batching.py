"""Micro-batching: concurrent calls share a batch, a lone call runs at once, one bad item does not fail the rest."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

from app.batching import MicroBatcher


def test_concurrent_calls_are_batched_and_results_routed_back() -> None:
    batches: list[list[int]] = []
    gate = threading.Event()

    def square(items):  # type: ignore[no-untyped-def]
        gate.wait(1)
        batches.append(list(items))
        return [i * i for i in items]

    async def main() -> list[int]:
        batcher = MicroBatcher(square, ThreadPoolExecutor(1), workers=1)
        first = asyncio.create_task(batcher(1))  # occupies the worker
        await asyncio.sleep(0.05)
        rest = [asyncio.create_task(batcher(i)) for i in range(2, 7)]
        await asyncio.sleep(0.05)
        gate.set()
        return [await first] + [await t for t in rest]

    assert asyncio.run(main()) == [1, 4, 9, 16, 25, 36]
    assert batches == [[1], [2, 3, 4, 5, 6]]


def test_a_failing_item_fails_alone() -> None:
    def run(items):  # type: ignore[no-untyped-def]
        if "bad" in items:
            raise ValueError("bad input")
        return [s.upper() for s in items]

    async def main() -> tuple[list[str], BaseException | None]:
        batcher = MicroBatcher(run, ThreadPoolExecutor(1), workers=1)
        tasks = [asyncio.create_task(batcher(s)) for s in ("a", "bad", "c")]
        done = await asyncio.gather(*tasks, return_exceptions=True)
        return [d for d in done if isinstance(d, str)], next((d for d in done if isinstance(d, BaseException)), None)

    good, error = asyncio.run(main())
    assert good == ["A", "C"]
    assert isinstance(error, ValueError)

