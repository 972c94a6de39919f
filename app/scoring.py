"""Runs the classifiers off the event loop (onnxruntime releases the GIL, so threads use both cores) with a score cache."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from app.batching import MicroBatcher
from app.metrics import Metrics
from app.store import Store
from classifiers import PreparedContext, Scorer, Scores
from classifiers.encoder import WindowCache
from classifiers.inputs import ConversationView, view_of


def cache_key(model_identity: str, messages: Sequence[dict[str, Any]], reply: str) -> str:
    """The model's identity is part of the key: replicas sharing Redis across a model or threshold rollout must never
    serve each other's scores."""
    digest = hashlib.sha256(model_identity.encode() + b"\x00")
    digest.update(json.dumps(messages, sort_keys=True, ensure_ascii=False).encode())
    digest.update(b"\x00" + reply.encode())
    return digest.hexdigest()


class ScoringService:
    def __init__(self, scorer: Scorer, threads: int, store: Store, cache_ttl_s: int, metrics: Metrics) -> None:
        self.scorer = scorer
        self._threads = threads
        self._calls = 0  # scoring calls in flight: queued or running
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="heedful-score")
        self._store, self._ttl, self._metrics = store, cache_ttl_s, metrics
        self._contexts: MicroBatcher[Sequence[dict[str, Any]], PreparedContext] = MicroBatcher(
            scorer.prepare_many, self._pool, threads)
        self._reply_scores: MicroBatcher[tuple[ConversationView, str, WindowCache | None], dict[str, float]] = MicroBatcher(
            lambda items: scorer.reply_scores([v for v, _, _ in items], [r for _, r, _ in items], [c for _, _, c in items]),
            self._pool, threads)
        self._replies: MicroBatcher[tuple[PreparedContext, str, WindowCache | None], Scores] = MicroBatcher(
            lambda items: scorer.score_replies([p for p, _, _ in items], [r for _, r, _ in items], [c for _, _, c in items]),
            self._pool, threads)

    @property
    def thresholds(self) -> dict[str, float]:
        return self.scorer.thresholds

    @property
    def saturated(self) -> bool:
        """Whether new scoring work would queue: as many calls are in flight as there are scoring threads."""
        return self._calls >= self._threads

    @contextmanager
    def _in_flight(self) -> Iterator[None]:
        self._calls += 1
        try:
            yield
        finally:
            self._calls -= 1

    async def prepare(self, messages: Sequence[dict[str, Any]]) -> PreparedContext:
        start = time.perf_counter()
        with self._in_flight():
            prepared = await self._contexts(messages)
        self._metrics.scoring_seconds.labels("context").observe(time.perf_counter() - start)
        return prepared

    async def read_ahead(self, view: ConversationView, text_so_far: str, window_cache: WindowCache,
                         still_latest: Callable[[], bool]) -> None:
        """Score the settled windows of a reply the upstream is still writing (see classifiers/reading.py). Then guess
        that the reply ends here: if no more text has come (`still_latest`) and nothing else is being scored, its last
        window as it reads now is scored too, so a reply that does end at this sentence has nothing left to run after
        the stream's end. Under load the guess is skipped: spare cores buy latency, throughput pays nothing."""
        loop = asyncio.get_running_loop()
        guess = lambda: still_latest() and not self.scorer.busy  # noqa: E731 - asked in the scoring thread, after the settled windows
        with self._in_flight():
            await loop.run_in_executor(self._pool, self.scorer.score_settled_windows, view, text_so_far, window_cache,
                                       guess)

    async def score(self, messages: Sequence[dict[str, Any]], prepared: PreparedContext | Awaitable[PreparedContext],
                    replies: Sequence[str], window_cache: WindowCache | None = None) -> list[Scores]:
        """Score drafts against a context; cached drafts skip the encoder, and windows already scored while the draft
        was written (window_cache) are not run again. `prepared` may still be running: with the multi-task model the
        reply pass reads the conversation itself, so it runs beside the context pass instead of after it."""
        keys = [cache_key(self.scorer.identity, messages, reply) for reply in replies] if self._ttl else []
        cached = [await self._store.get_scores(k) for k in keys] if keys else [None] * len(replies)
        missing = [replies[i] for i, hit in enumerate(cached) if hit is None]
        fresh: list[dict[str, float]] = []
        if missing:
            start = time.perf_counter()
            with self._in_flight():
                fresh = await self._fresh_reply_scores(messages, prepared, missing, window_cache)
            self._metrics.scoring_seconds.labels("reply").observe(time.perf_counter() - start)
        context = await _ready(prepared)
        results: list[Scores] = []
        fresh_iter = iter(fresh)
        for i, hit in enumerate(cached):
            if hit is None:
                reply = next(fresh_iter)
                if keys:
                    await self._store.put_scores(keys[i], {"reply": reply}, self._ttl)
            else:
                reply = hit["reply"]
            results.append(self.scorer.with_context(context, reply))
        return results

    async def _fresh_reply_scores(self, messages: Sequence[dict[str, Any]],
                                  prepared: PreparedContext | Awaitable[PreparedContext], replies: Sequence[str],
                                  window_cache: WindowCache | None) -> list[dict[str, float]]:
        if self.scorer.reply_needs_context:
            context = await _ready(prepared)
            scored = await asyncio.gather(*(self._replies((context, reply, window_cache)) for reply in replies))
            return [scores.reply for scores in scored]
        view = view_of(messages)
        return list(await asyncio.gather(*(self._reply_scores((view, reply, window_cache)) for reply in replies)))

    def shutdown(self) -> None:
        self._contexts.close()
        self._replies.close()
        self._reply_scores.close()
        self._pool.shutdown(wait=False, cancel_futures=True)


async def _ready(prepared: PreparedContext | Awaitable[PreparedContext]) -> PreparedContext:
    return prepared if isinstance(prepared, PreparedContext) else await prepared
