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


def cache_key(messages: Sequence[dict[str, Any]], reply: str) -> str:
    digest = hashlib.sha256(json.dumps(messages, sort_keys=True, ensure_ascii=False).encode())
    digest.update(b"\x00" + reply.encode())
    return digest.hexdigest()


class ScoringService:
    def __init__(self, scorer: Scorer, threads: int, store: Store, cache_ttl_s: int, metrics: Metrics) -> None:
        self.scorer = scorer
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="heedful-score")
        self._store, self._ttl, self._metrics = store, cache_ttl_s, metrics
        self._contexts: MicroBatcher[Sequence[dict[str, Any]], PreparedContext] = MicroBatcher(
            scorer.prepare_many, self._pool, threads)
        self._replies: MicroBatcher[tuple[PreparedContext, str], Scores] = MicroBatcher(
            lambda items: scorer.score_replies([p for p, _ in items], [r for _, r in items]), self._pool, threads)

    @property
    def thresholds(self) -> dict[str, float]:
        return self.scorer.thresholds

    async def prepare(self, messages: Sequence[dict[str, Any]]) -> PreparedContext:
        start = time.perf_counter()
        prepared = await self._contexts(messages)
        self._metrics.scoring_seconds.labels("context").observe(time.perf_counter() - start)
        return prepared

    async def score(self, messages: Sequence[dict[str, Any]], prepared: PreparedContext, replies: Sequence[str]) -> list[Scores]:
        """Score drafts against a prepared context; cached drafts skip the encoder."""
        keys = [cache_key(messages, reply) for reply in replies] if self._ttl else []
        cached = [await self._store.get_scores(k) for k in keys] if keys else [None] * len(replies)
        missing = [i for i, hit in enumerate(cached) if hit is None]
        fresh: list[Scores] = []
        if missing:
            start = time.perf_counter()
            fresh = list(await asyncio.gather(*(self._replies((prepared, replies[i])) for i in missing)))
            self._metrics.scoring_seconds.labels("reply").observe(time.perf_counter() - start)
        results: list[Scores] = []
        fresh_iter = iter(fresh)
        for i, hit in enumerate(cached):
            if hit is None:
                scores = next(fresh_iter)
                if keys:
                    await self._store.put_scores(keys[i], _to_dict(scores), self._ttl)
            else:
                scores = Scores(hit["reply"], dict(prepared.signals), [f for f in hit["flags"] if f in hit["reply"]],
                                prepared.crisis_phrase)
            results.append(scores)
        return results

    def shutdown(self) -> None:
        self._contexts.close()
        self._replies.close()
        self._pool.shutdown(wait=False, cancel_futures=True)


def _to_dict(scores: Scores) -> dict[str, Any]:
    return {"reply": scores.reply, "flags": scores.flags}
