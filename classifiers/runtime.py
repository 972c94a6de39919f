"""Scoring with onnxruntime: context signals before the draft arrives, reply scores after. No training dependencies."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from classifiers.artifacts import DEFAULT_MODEL_DIR, MULTITASK_MODEL, REPLY_HEAD, ModelInfo, load_model_info
from classifiers import crisis_ceiling, crisis_lexicon, crisis_signs
from classifiers.crisis_ceiling import below_resources
from classifiers.crisis_lexicon import RECENT_USER_TURNS
from classifiers.crisis_signs import crisis_evidence
from classifiers.encoder import Encoder, WindowCache
from classifiers.features import CONTEXT_LABELS, REPLY_LABELS, context_features, reply_features
from classifiers.inputs import ConversationView, view_of
from classifiers.labels import HEADLINE_SCORES, derive_reply_scores, flags_of

SCORE_LABELS = HEADLINE_SCORES
_CRISIS_RULES = (crisis_lexicon, crisis_signs, crisis_ceiling)
# Grief for another or an idiom, with nothing pointing the risk at the user, stays this far under the resources threshold.
_GRIEF_MARGIN = 1e-3


@dataclass(frozen=True)
class PreparedContext:
    """Everything about a conversation that can be computed before the draft reply exists."""

    view: ConversationView
    context_embedding: np.ndarray
    previous_embedding: np.ndarray
    signals: dict[str, float]
    crisis_evidence: str | None = None  # an explicit phrase or a warning sign that floored the crisis signal


@dataclass(frozen=True)
class Scores:
    """Calibrated probabilities for a draft reply in context, and the labels at or above their thresholds."""

    reply: dict[str, float]
    context: dict[str, float]
    flags: list[str] = field(default_factory=list)
    crisis_evidence: str | None = None  # an explicit phrase or a warning sign that floored the crisis signal


class Scorer:
    """Loads a model folder once; scores are thread-safe to compute from several threads."""

    def __init__(self, model_dir: Path = DEFAULT_MODEL_DIR, threads: int = 1, arena: bool = True,
                 idle_threads: int = 0) -> None:
        self.model_dir = Path(model_dir)
        self._identity: str | None = None
        self.info: ModelInfo = load_model_info(self.model_dir)
        self._multitask = (self.model_dir / MULTITASK_MODEL).is_file()
        self._grief_ceiling = self.info.thresholds["crisis"] - _GRIEF_MARGIN
        if self._multitask:
            self._encoder = Encoder(self.model_dir, threads=threads, model_file=MULTITASK_MODEL, arena=arena,
                                    idle_threads=idle_threads)
        else:
            self._encoder = Encoder(self.model_dir, threads=threads, arena=arena)
            self._reply_head = self._encoder.session(self.model_dir / REPLY_HEAD)
            self._context_head = self._encoder.session(self.model_dir / "context_head.onnx")

        calibration = self.info.calibration
        self._calibration = {
            labels: (np.array([calibration.scale[n] for n in labels], np.float32),
                     np.array([calibration.shift[n] for n in labels], np.float32))
            for labels in (REPLY_LABELS, CONTEXT_LABELS)
        }

    @property
    def identity(self) -> str:
        """What a score depends on besides its input: the model file, calibration and thresholds, and the crisis rules that
        floor or cap the crisis signal (a content digest), so a rollout of any of them never serves cached scores."""
        if self._identity is None:
            digest = hashlib.sha256()
            for name in sorted(p.name for p in self.model_dir.iterdir() if p.suffix in (".onnx", ".json")):
                if name in ("metrics.json", "training_report.json", "finetune_report.json"):
                    continue
                digest.update(name.encode() + b"\x00" + (self.model_dir / name).read_bytes())
            for module in _CRISIS_RULES:
                digest.update(Path(module.__file__ or "").read_bytes())
            self._identity = f"{self.info.name}:{self.info.version}:{digest.hexdigest()[:16]}"
        return self._identity

    @property
    def outputs(self) -> int:
        return len(REPLY_LABELS) + len(CONTEXT_LABELS)

    @property
    def thresholds(self) -> dict[str, float]:
        return self.info.thresholds

    def _calibrate(self, logits: np.ndarray, labels: tuple[str, ...]) -> np.ndarray:
        scale, shift = self._calibration[labels]
        return np.asarray(1.0 / (1.0 + np.exp(-(logits * scale + shift))), dtype=np.float32)

    def prepare(self, messages: Sequence[dict[str, Any]]) -> PreparedContext:
        return self.prepare_many([messages])[0]

    def prepare_many(self, conversations: Sequence[Sequence[dict[str, Any]]]) -> list[PreparedContext]:
        views = [view_of(messages) for messages in conversations]
        if self._multitask:
            # One model: the context pass trains and serves the context outputs; the reply pass reads the previous
            # answer itself, so no embeddings are kept.
            logits = self._encoder.embed(self._encoder.context_ids(views), width_out=self.outputs)[:, len(REPLY_LABELS):]
            context = previous = np.zeros((len(views), 1), np.float32)
        else:
            context = self._encoder.embed(self._encoder.context_ids(views))
            previous = self._encoder.embed(self._encoder.previous_ids(views))
            logits = self._context_head.run(None, {"features": context_features(context)})[0]
        probs = self._calibrate(logits, CONTEXT_LABELS)
        prepared = []
        for i, view in enumerate(views):
            signals = {name: float(probs[i, j]) for j, name in enumerate(CONTEXT_LABELS)}
            recent = view.user_turns[-RECENT_USER_TURNS:]
            evidence = crisis_evidence(recent)
            if evidence is not None:
                signals["crisis"] = max(signals["crisis"], self.info.crisis_lexicon_floor)
            elif below_resources(recent) is not None:
                signals["crisis"] = min(signals["crisis"], self._grief_ceiling)
            prepared.append(PreparedContext(view, context[i], previous[i], signals, evidence))
        return prepared

    def score_reply(self, prepared: PreparedContext, reply: str) -> Scores:
        return self.score_replies([prepared], [reply])[0]

    def reply_logits(self, prepared: Sequence[PreparedContext], replies: Sequence[str],
                     window_caches: Sequence[WindowCache | None] | None = None) -> np.ndarray:
        """Reply-label logits of each whole reply: every window is scored and each label takes its highest window."""
        if self._multitask:
            views = [p.view for p in prepared]
            return self._encoder.whole_reply_outputs(views, replies, self.outputs, window_caches)[:, : len(REPLY_LABELS)]
        rows = self._encoder.reply_ids([p.view.last_user for p in prepared], replies)
        reply_pass = self._encoder.embed(rows)
        features = reply_features(
            reply_pass,
            np.stack([p.context_embedding for p in prepared]),
            np.stack([p.previous_embedding for p in prepared]),
            np.array([bool(p.view.previous_assistant) for p in prepared]),
        )
        return np.asarray(self._reply_head.run(None, {"features": features})[0], dtype=np.float32)

    def score_settled_windows(self, view: ConversationView, text_so_far: str, window_cache: WindowCache,
                              guess_last: Callable[[], bool] | None = None) -> int:
        """Run the windows of a reply still being written that can no longer change (all but its last) into the cache;
        returns how many were run now. Then, if `guess_last()` says so, the last window as it reads now: if the reply
        ends here (replies end at sentence ends), its final window is scored before the stream's end arrives."""
        windows = self._encoder.reply_windows([view], [text_so_far])[0]
        run = self._encoder.run_missing(windows[:-1], window_cache, self.outputs)
        if guess_last is not None and guess_last():
            run += self._encoder.run_missing(windows[-1:], window_cache, self.outputs)
        return run

    @property
    def busy(self) -> bool:
        """Whether the encoder is running something (other requests are being scored)."""
        return self._encoder.busy

    def score_replies(self, prepared: Sequence[PreparedContext], replies: Sequence[str],
                      window_caches: Sequence[WindowCache | None] | None = None) -> list[Scores]:
        probs = self._calibrate(self.reply_logits(prepared, replies, window_caches), REPLY_LABELS)
        return [self._scores(p, probs[i]) for i, p in enumerate(prepared)]

    def score(self, messages: Sequence[dict[str, Any]], reply: str) -> Scores:
        return self.score_reply(self.prepare(messages), reply)

    def score_many(self, items: Sequence[tuple[Sequence[dict[str, Any]], str]]) -> list[Scores]:
        prepared = self.prepare_many([messages for messages, _ in items])
        return self.score_replies(prepared, [reply for _, reply in items])

    @property
    def reply_needs_context(self) -> bool:
        """Whether reply scores need the context pass first (the frozen variant's heads read its embeddings); the
        multi-task model reads the conversation header itself, so both passes can run at once."""
        return not self._multitask

    def reply_scores(self, views: Sequence[ConversationView], replies: Sequence[str],
                     window_caches: Sequence[WindowCache | None] | None = None) -> list[dict[str, float]]:
        """The reply scores of whole replies without the context pass (multi-task model only); `with_context` joins
        them to a prepared context."""
        if not self._multitask:
            raise ValueError("this model's reply heads read the context pass: use score_replies")
        logits = self._encoder.whole_reply_outputs(views, replies, self.outputs, window_caches)[:, : len(REPLY_LABELS)]
        probs = self._calibrate(logits, REPLY_LABELS)
        return [derive_reply_scores({name: float(probs[i, j]) for j, name in enumerate(REPLY_LABELS)})
                for i in range(len(replies))]

    def with_context(self, prepared: PreparedContext, reply: dict[str, float]) -> Scores:
        context = dict(prepared.signals)
        return Scores(reply=reply, context=context, flags=flags_of(reply, context, self.thresholds),
                      crisis_evidence=prepared.crisis_evidence)

    def _scores(self, prepared: PreparedContext, probs: np.ndarray) -> Scores:
        return self.with_context(prepared, derive_reply_scores({name: float(probs[j]) for j, name in enumerate(REPLY_LABELS)}))
