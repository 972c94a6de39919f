"""The int8 MiniLM over the three capped passes: token budgets applied, batches padded, outputs out.

The session is the shipped multi-task model (logits) or, for the frozen variant, the base sentence encoder (embeddings).
"""

from __future__ import annotations

import re
import threading
from contextlib import contextmanager
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
# A window's token ids (header included) -> the model's outputs for it.
WindowCache = dict[tuple[int, ...], np.ndarray]
# Tokenising a huge string is linear but not free; nothing past this many characters can reach a capped pass.
_MAX_CHARS = 8000
# A reply is read in windows up to this many (about 1,300 words); past that only the head is read.
MAX_REPLY_WINDOWS = 16
_REPLY_MAX_CHARS = 16000
# Windows end at a sentence end or a line break where one falls inside the window's room.
_SENTENCE_END = re.compile(r"[.!?…]+[\"')\]]*(?=\s|$)|\n")


def _session(path: Path, threads: int, arena: bool = True, spin: bool = True) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    if not spin:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Without the arena, activation buffers go back after each run instead of staying at the high-water mark of the
    # largest batch: a long-running server holds less memory for a small cost in speed.
    options.enable_cpu_mem_arena = arena
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _token_id(tokenizer: Tokenizer, token: str) -> int:
    found = tokenizer.token_to_id(token)
    if found is None:
        raise ValueError(f"the tokenizer has no {token} token")
    return int(found)


class Encoder:
    """Builds the passes' token rows under their budgets and runs them through a model (logits or embeddings)."""

    def __init__(self, model_dir: Path, threads: int = 1, model_file: str = "encoder.onnx", arena: bool = True,
                 idle_threads: int = 0) -> None:
        self._tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        self._cls = _token_id(self._tokenizer, "[CLS]")
        self._sep = _token_id(self._tokenizer, "[SEP]")
        self._separator = self._ids([OLDER_TURN_SEPARATOR])[0]
        self._session = _session(model_dir / model_file, threads, arena)
        # A server keeps one single-threaded run per core under load; a run with the machine to itself (one client, or
        # the last window after a reply's last token) takes every core instead. The outputs are identical: the int8
        # kernels split rows, not sums, across threads (tests/classifiers/test_windows.py).
        self._idle_session: ort.InferenceSession | None = None
        self._idle_ready = threading.Event()
        if idle_threads > threads:
            # Built beside the first requests instead of before them (it is a second copy of the model: about a tenth
            # of the proxy's start-up); until it is there, a lone run uses the single-threaded session.
            threading.Thread(target=self._build_idle_session, args=(model_dir / model_file, idle_threads, arena),
                             name="heedful-idle-session", daemon=True).start()
        else:
            self._idle_ready.set()
        self._running = 0
        self._running_lock = threading.Lock()

    def _build_idle_session(self, path: Path, threads: int, arena: bool) -> None:
        try:
            # Its pool threads must not spin between runs: they would burn the cores that the other scoring thread
            # and the event loop need (measured in the proxy: 35 -> 20 ms of CPU per request at one client, latency
            # unchanged; +10% requests/s at 32 clients).
            self._idle_session = _session(path, threads, arena, spin=False)
        finally:
            self._idle_ready.set()

    def wait_for_idle_session(self, timeout_s: float | None = None) -> bool:
        """Whether the every-core session is built (or none was asked for), waiting up to `timeout_s`."""
        return self._idle_ready.wait(timeout_s)

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
        return self.text_rows([v.previous_assistant for v in views], PREVIOUS_TOKENS)

    def text_rows(self, texts: Sequence[str], max_tokens: int) -> list[tuple[list[int], list[int]]]:
        """[CLS] text [SEP] for each text, its head kept under `max_tokens` (the frozen sentence encoder's plain input)."""
        rows = []
        for ids in self._ids(texts):
            ids = ids[: max_tokens - 2]
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
        """The reply pass over each reply's first window only: [CLS] previous-answer tail [SEP] user tail [SEP] head [SEP]."""
        return [windows[0] for windows in self.reply_windows(views, replies)]

    def reply_windows(self, views: Sequence[ConversationView], replies: Sequence[str]) -> list[list[tuple[list[int], list[int]]]]:
        """Every reply read whole, as windows of consecutive sentences, each under the same conversation header:
        [CLS] previous-answer tail [SEP] user tail [SEP] window [SEP] (<= REPLY_PASS_TOKENS). A failure late in a long
        draft lands in a window of its own instead of past the cap."""
        previous = self._ids([v.previous_assistant for v in views])
        users = self._ids([v.last_user for v in views])
        out = []
        for prev, user, reply in zip(previous, users, replies, strict=True):
            prev = prev[-REPLY_PASS_PREVIOUS_TOKENS:] if prev else []
            user = user[-REPLY_PASS_USER_TOKENS:] if user else []
            head = [self._cls, *prev, self._sep, *user, self._sep] if prev else [self._cls, *user, self._sep]
            room = REPLY_PASS_TOKENS - len(head) - 1
            out.append([([*head, *piece, self._sep], [0] * len(head) + [1] * (len(piece) + 1))
                        for piece, _ in self._windows(reply, room)])
        return out

    def whole_reply_outputs(self, views: Sequence[ConversationView], replies: Sequence[str], width_out: int,
                            caches: Sequence[WindowCache | None] | None = None) -> np.ndarray:
        """The model's outputs for each whole reply: every window is run and each output takes its highest window.

        `caches` (one per reply, or None) map a window's token ids to its outputs: windows scored while the reply was
        still being written are not run again. Rows run alone, so a cached window's outputs are exactly what running it
        now would give."""
        per_reply = self.reply_windows(views, replies)
        known: WindowCache = {}
        for cache in caches or ():
            known.update(cache or {})
        self.run_missing([row for rows in per_reply for row in rows], known, width_out)
        return np.stack([np.max([known[tuple(ids)] for ids, _ in rows], axis=0) for rows in per_reply])

    def run_missing(self, rows: Sequence[tuple[list[int], list[int]]], cache: WindowCache, width_out: int) -> int:
        """Run the rows the cache lacks (each once) into it; returns how many were run."""
        missing = list({tuple(ids): (ids, types) for ids, types in rows if tuple(ids) not in cache}.values())
        if missing:
            for row, out in zip(missing, self.embed(missing, width_out=width_out), strict=True):
                cache[tuple(row[0])] = out
        return len(missing)

    def window_starts(self, view: ConversationView, reply: str) -> list[int]:
        """The character offset in `reply` where each of its windows starts (training labels late failures by it)."""
        header = self.reply_windows([view], [""])[0][0][0]
        return [start for _, start in self._windows(reply, REPLY_PASS_TOKENS - len(header))]

    def _windows(self, reply: str, room: int) -> list[tuple[list[int], int]]:
        """Token windows of the reply with the character offset each starts at."""
        text = reply[:_REPLY_MAX_CHARS]
        encoding = self._tokenizer.encode(text, add_special_tokens=False)
        ids = encoding.ids
        starts = [start for start, _ in encoding.offsets]
        ends = sorted({m.end() for m in _SENTENCE_END.finditer(text)})
        # Token index after which a sentence has ended: the count of tokens that start before the sentence's end.
        cuts: list[int] = []
        t = 0
        for end in ends:
            while t < len(starts) and starts[t] < end:
                t += 1
            if not cuts or cuts[-1] != t:
                cuts.append(t)
        windows: list[tuple[list[int], int]] = []
        start = 0
        while start < len(ids) and len(windows) < MAX_REPLY_WINDOWS:
            fitting = [c for c in cuts if start < c <= start + room]
            stop = fitting[-1] if fitting and start + room < len(ids) else min(start + room, len(ids))
            windows.append((ids[start:stop], encoding.offsets[start][0]))
            start = stop
        return windows or [([], 0)]

    @property
    def busy(self) -> bool:
        """Whether a run is in flight (another request's, under load)."""
        return self._running > 0

    @contextmanager
    def _busy(self) -> Iterator[bool]:
        """Count a run in flight; yields whether it is the only one."""
        with self._running_lock:
            self._running += 1
            alone = self._running == 1
        try:
            yield alone
        finally:
            with self._running_lock:
                self._running -= 1

    def session(self, path: Path, threads: int = 1) -> ort.InferenceSession:
        """A small head over this encoder's outputs (the frozen variant)."""
        return _session(path, threads)

    def embed(self, rows: Sequence[tuple[list[int], list[int]]], batch_size: int = 1,
              session: ort.InferenceSession | None = None, width_out: int = EMBEDDING_DIM) -> np.ndarray:
        """Run token rows through the encoder (or another session over the same inputs).

        The default runs each row alone and unpadded: the int8 model quantises activations dynamically over the whole
        input tensor, so a row's score would otherwise depend on the other rows and the padding in its batch. Larger
        batches (rows of similar length together) are for training-time feature extraction only.
        """
        if session is None:
            with self._busy() as alone:
                return self.embed(rows, batch_size, self._idle_session if alone and self._idle_session else self._session,
                                  width_out)
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
