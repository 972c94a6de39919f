"""Stream a log through the replay workers with bounded work in flight, so memory stays flat whatever the log's size."""

from __future__ import annotations

from typing import Any

import multiprocessing
import sys
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import IO

from app.policy.loader import LoadedPolicy
from app.policy_tools.replay.shards import Shard
from app.policy_tools.replay.stats import PolicyStats, ReplayStats
from app.policy_tools.replay.worker import Line, ReplayWorker, Skipped, init_process, run_chunk

CHUNK = 8  # lines per batch: on CPU, bigger batches gain little and grow onnxruntime's memory arenas


def count_lines(path: Path) -> int:
    count = 0
    with path.open("rb") as stream:
        while block := stream.read(1 << 20):
            count += block.count(b"\n")
    return count


def chunks(stream: IO[str], size: int, shard: Shard | None = None) -> Iterator[list[tuple[int, str]]]:
    """Numbered non-blank lines in chunks of `size` (only the shard's lines; numbers stay those of the whole log)."""
    chunk: list[tuple[int, str]] = []
    for number, text in enumerate(stream, start=1):
        if (shard is None or shard.takes(number)) and text.strip():
            chunk.append((number, text))
            if len(chunk) == size:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


def replay(policies: list[LoadedPolicy], log: Path, model_dir: Path, workers: int = 2, threads: int = 1,
           processes: bool = False, progress: bool = True, shard: Shard | None = None) -> ReplayStats:
    """Replay `log` through one or two policies, `workers` chunks at a time, each scored with `threads` intra-op threads.

    By default the workers are threads sharing one Scorer (onnxruntime releases the GIL, so two threads use both cores
    with one copy of the model in memory); `processes=True` gives each worker its own process and model instead.
    With `shard`, only that shard's lines are replayed (merge the shards' results with shards.merge_partials).
    """
    # Two versions of one policy (--against) share a name: their file tells them apart in the report.
    same_name = len({p.name for p in policies}) < len(policies)
    stats = ReplayStats([PolicyStats(f"{p.name} ({p.file})" if same_name else p.name, [r.name for r in p.document.spec.rules])
                         for p in policies])
    sources = [(Path(p.file).read_text(encoding="utf-8"), p.file) for p in policies]
    total = count_lines(log) if log != Path("-") else None
    if total is not None and shard is not None:
        total = len(range(shard.index, total, shard.count))
    started = time.perf_counter()
    bar = _bar(total, progress)
    stream = sys.stdin if log == Path("-") else log.open(encoding="utf-8", errors="replace")
    try:
        if workers <= 1 and not processes:
            worker = ReplayWorker(sources, str(model_dir), threads)
            for chunk in chunks(stream, CHUNK, shard):
                _take(stats, worker.run(chunk), bar)
        elif not processes:
            worker = ReplayWorker(sources, str(model_dir), threads)
            with ThreadPoolExecutor(workers, thread_name_prefix="heedful-replay") as pool:
                _drain(stats, bar, workers, (pool.submit(worker.run, chunk) for chunk in chunks(stream, CHUNK, shard)))
        else:
            context = multiprocessing.get_context("spawn")  # no fork: the parent may hold threads (progress bar)
            with ProcessPoolExecutor(workers, mp_context=context, initializer=init_process,
                                     initargs=(sources, str(model_dir), threads)) as pool:
                _drain(stats, bar, workers, (pool.submit(run_chunk, chunk) for chunk in chunks(stream, CHUNK, shard)))
    finally:
        if stream is not sys.stdin:
            stream.close()
        if bar is not None:
            bar.close()
    stats.seconds = time.perf_counter() - started
    return stats.canonical()


def _drain(stats: ReplayStats, bar: Any, workers: int, submitted: Iterator[Future[list[Line | Skipped]]]) -> None:
    """Collect results in input order, never more than a few chunks in flight (the generator submits lazily)."""
    pending: deque[Future[list[Line | Skipped]]] = deque()
    for future in submitted:
        pending.append(future)
        while len(pending) >= workers * 2:
            _take(stats, pending.popleft().result(), bar)
    while pending:
        _take(stats, pending.popleft().result(), bar)


def _take(stats: ReplayStats, results: list[Line | Skipped], bar: Any) -> None:
    for item in results:
        stats.add(item)
    if bar is not None:
        bar.update(len(results))


def _bar(total: int | None, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit=" lines", desc="replay", file=sys.stderr, dynamic_ncols=True, smoothing=0.1)
