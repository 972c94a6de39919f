"""Runs the classifiers off the event loop (onnxruntime releases the GIL, so threads use both cores) with a score cache."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from app.batching import MicroBatcher
from app.metrics import Metrics
from app.store import Store
from classifiers import PreparedContext, Scorer, Scores
from classifiers.encoder import WindowCache
from classifiers.labels import flags_of


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
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="heedful-score")
        self._store, self._ttl, self._metrics = store, cache_ttl_s, metrics
        self._contexts: MicroBatcher[Sequence[dict[str, Any]], PreparedContext] = MicroBatcher(
            scorer.prepare_many, self._pool, threads)
        self._replies: MicroBatcher[tuple[PreparedContext, str, WindowCache | None], Scores] = MicroBatcher(
            lambda items: scorer.score_replies([p for p, _, _ in items], [r for _, r, _ in items], [c for _, _, c in items]),
            self._pool, threads)

    @property
    def thresholds(self) -> dict[str, float]:
        return self.scorer.thresholds

    async def prepare(self, messages: Sequence[dict[str, Any]]) -> PreparedContext:
        start = time.perf_counter()
        prepared = await self._contexts(messages)
        self._metrics.scoring_seconds.labels("context").observe(time.perf_counter() - start)
        return prepared

    async def read_ahead(self, prepared: PreparedContext, text_so_far: str, window_cache: WindowCache) -> None:
        """Score the settled windows of a reply the upstream is still writing (see classifiers/reading.py)."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._pool, self.scorer.score_settled_windows, prepared, text_so_far, window_cache)

    async def score(self, messages: Sequence[dict[str, Any]], prepared: PreparedContext, replies: Sequence[str],
                    window_cache: WindowCache | None = None) -> list[Scores]:
        """Score drafts against a prepared context; cached drafts skip the encoder, and windows already scored while the
        draft was written (window_cache) are not run again."""
        keys = [cache_key(self.scorer.identity, messages, reply) for reply in replies] if self._ttl else []
        cached = [await self._store.get_scores(k) for k in keys] if keys else [None] * len(replies)
        missing = [i for i, hit in enumerate(cached) if hit is None]
        fresh: list[Scores] = []
        if missing:
            start = time.perf_counter()
            fresh = list(await asyncio.gather(*(self._replies((prepared, replies[i], window_cache)) for i in missing)))
            self._metrics.scoring_seconds.labels("reply").observe(time.perf_counter() - start)
        results: list[Scores] = []
        fresh_iter = iter(fresh)
        for i, hit in enumerate(cached):
            if hit is None:
                scores = next(fresh_iter)
                if keys:
                    await self._store.put_scores(keys[i], _to_dict(scores), self._ttl)
            else:
                context = dict(prepared.signals)
                scores = Scores(hit["reply"], context, flags_of(hit["reply"], context, self.thresholds), prepared.crisis_phrase)
            results.append(scores)
        return results

    def shutdown(self) -> None:
        self._contexts.close()
        self._replies.close()
        self._pool.shutdown(wait=False, cancel_futures=True)


def _to_dict(scores: Scores) -> dict[str, Any]:
    return {"reply": scores.reply}
