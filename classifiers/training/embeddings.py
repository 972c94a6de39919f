"""Embed examples through the shipped int8 encoder, with an on-disk cache so retraining the heads is fast."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from classifiers.encoder import EMBEDDING_DIM, Encoder
from classifiers.inputs import view_of

CACHE_DIR = Path(__file__).resolve().parents[2] / ".cache" / "embeddings"
BLANK_CONTEXT = [{"role": "user", "content": ""}]


@dataclass
class Embedded:
    reply_pass: np.ndarray
    context: np.ndarray
    previous: np.ndarray
    has_previous: np.ndarray


class CachedEncoder:
    def __init__(self, encoder: Encoder, cache_file: Path) -> None:
        self._encoder = encoder
        self._file = cache_file
        self._cache: dict[str, np.ndarray] = {}
        if cache_file.exists():
            with np.load(cache_file) as stored:
                self._cache = {k: stored[k] for k in stored.files}

    def _embed(self, rows: list[tuple[list[int], list[int]]]) -> np.ndarray:
        keys = [hashlib.sha1(repr(row).encode()).hexdigest() for row in rows]
        todo = sorted({k: i for i, k in enumerate(keys) if k not in self._cache}.items(), key=lambda kv: kv[1])
        if todo:
            fresh = self._encoder.embed([rows[i] for _, i in todo], batch_size=64)
            for (key, _), vector in zip(todo, fresh, strict=True):
                self._cache[key] = vector
        if not rows:
            return np.zeros((0, EMBEDDING_DIM), np.float32)
        return np.stack([self._cache[k] for k in keys])

    def embed(self, conversations: list[list[dict[str, Any]]], replies: list[str]) -> Embedded:
        views = [view_of(m) for m in conversations]
        return Embedded(
            reply_pass=self._embed(self._encoder.reply_ids([v.last_user for v in views], replies)),
            context=self._embed(self._encoder.context_ids(views)),
            previous=self._embed(self._encoder.previous_ids(views)),
            has_previous=np.array([bool(v.previous_assistant) for v in views]),
        )

    def save(self) -> None:
        self._file.parent.mkdir(parents=True, exist_ok=True)
        np.savez(self._file, **self._cache)
