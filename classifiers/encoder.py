"""The int8 MiniLM over the three capped passes: token budgets applied, batches padded, outputs out.

The session is the shipped multi-task model (logits) or, for the frozen variant, the base sentence encoder (embeddings).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from classifiers.inputs import (
    CONTEXT_TOKENS,
    OLDER_TURN_SEPARATOR,
    PREVIOUS_TOKENS,
    REPLY_PASS_PREVIOUS_TOKENS,
    REPLY_PASS_TOKENS,
    REPLY_PASS_USER_TOKENS,
    ConversationView,
)

EMBEDDING_DIM = 384
# Tokenising a huge string is linear but not free; nothing past this many characters can reach a capped pass.
_MAX_CHARS = 8000


def _session(path: Path, threads: int, arena: bool = True) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Without the arena, activation buffers go back after each run instead of staying at the high-water mark of the
    # largest batch: a long-running server holds less memory for a small cost in speed.
    options.enable_cpu_mem_arena = arena
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class Encoder:
    """Builds the passes' token rows under their budgets and runs them through a model (logits or embeddings)."""

    def __init__(self, model_dir: Path, threads: int = 1, model_file: str = "encoder.onnx", arena: bool = True) -> None:
        self._tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        self._cls = self._tokenizer.token_to_id("[CLS]")
        self._sep = self._tokenizer.token_to_id("[SEP]")
        self._separator = self._ids([OLDER_TURN_SEPARATOR])[0]
        self._session = _session(model_dir / model_file, threads, arena)

    def _ids(self, texts: Sequence[str]) -> list[list[int]]:
        return [e.ids for e in self._tokenizer.encode_batch([t[:_MAX_CHARS] for t in texts], add_special_tokens=False)]

    def _newest_first(self, turns: Sequence[str]) -> Iterator[list[int]]:
        """Token ids of the turns, newest first, tokenised a few at a time so that a consumer that stops early (the
        budget is full) never pays for the rest: a 50-turn conversation costs about what a 5-turn one does."""
        newest_first = list(reversed(turns))
        for start in range(0, len(newest_first), 4):
            yield from self._ids(newest_first[start : start + 4])

    def context_ids(self, views: Sequence[ConversationView]) -> list[tuple[list[int], list[int]]]:
        budget = CONTEXT_TOKENS - 2
        rows = []
        for view in views:
            turns = self._newest_first(view.user_turns)
            ids = next(turns, [])[-budget:]  # the last user turn keeps its end
            for older in turns:
                room = budget - len(ids) - len(self._separator)
                if room <= 8:
                    break
                ids = ids + self._separator + older[-room:]
            rows.append(([self._cls, *ids, self._sep], [0] * (len(ids) + 2)))
        return rows

    def previous_ids(self, views: Sequence[ConversationView]) -> list[tuple[list[int], list[int]]]:
        rows = []
        for ids in self._ids([v.previous_assistant for v in views]):
            ids = ids[: PREVIOUS_TOKENS - 2]
            rows.append(([self._cls, *ids, self._sep], [0] * (len(ids) + 2)))
        return rows

    def reply_ids(self, last_user_turns: Sequence[str], replies: Sequence[str]) -> list[tuple[list[int], list[int]]]:
        """The frozen-feature reply pass: [CLS] user tail [SEP] reply head [SEP]."""
        users = self._ids(last_user_turns)
        answers = self._ids(replies)
        rows = []
        for user, reply in zip(users, answers, strict=True):
            user = user[-REPLY_PASS_USER_TOKENS:] if user else []
            reply = reply[: REPLY_PASS_TOKENS - 3 - len(user)]
            ids = [self._cls, *user, self._sep, *reply, self._sep]
            types = [0] * (len(user) + 2) + [1] * (len(reply) + 1)
            rows.append((ids, types))
        return rows

    def joint_ids(self, views: Sequence[ConversationView], replies: Sequence[str]) -> list[tuple[list[int], list[int]]]:
        """The fine-tuned reply pass: [CLS] previous-answer tail [SEP] user tail [SEP] reply head [SEP]."""
        previous = self._ids([v.previous_assistant for v in views])
        users = self._ids([v.last_user for v in views])
        answers = self._ids(replies)
        rows = []
        for prev, user, reply in zip(previous, users, answers, strict=True):
            prev = prev[-REPLY_PASS_PREVIOUS_TOKENS:] if prev else []
            user = user[-REPLY_PASS_USER_TOKENS:] if user else []
            head = [self._cls, *prev, self._sep, *user, self._sep] if prev else [self._cls, *user, self._sep]
            reply = reply[: REPLY_PASS_TOKENS - len(head) - 1]
            rows.append(([*head, *reply, self._sep], [0] * len(head) + [1] * (len(reply) + 1)))
        return rows

    def session(self, path: Path, threads: int = 1) -> ort.InferenceSession:
        """A small head over this encoder's outputs (the frozen variant)."""
        return _session(path, threads)

    def embed(self, rows: Sequence[tuple[list[int], list[int]]], batch_size: int = 32,
              session: ort.InferenceSession | None = None, width_out: int = EMBEDDING_DIM) -> np.ndarray:
        """Run token rows through the encoder (or another session over the same inputs), batching rows of similar
        length together to waste little on padding."""
        session = session or self._session
        out = np.zeros((len(rows), width_out), np.float32)
        order = sorted(range(len(rows)), key=lambda i: len(rows[i][0]))
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            width = max(len(rows[i][0]) for i in chunk)
            ids = np.zeros((len(chunk), width), np.int64)
            types = np.zeros_like(ids)
            mask = np.zeros_like(ids)
            for r, i in enumerate(chunk):
                tok, typ = rows[i]
                ids[r, : len(tok)] = tok
                types[r, : len(typ)] = typ
                mask[r, : len(tok)] = 1
            out[chunk] = session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})[0]
        return out
