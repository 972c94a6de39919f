"""Heedful's classifiers: score a draft reply in context for pacification, sycophancy and rushed advice."""

from classifiers.artifacts import DEFAULT_MODEL_DIR, ModelFilesError
from classifiers.inputs import ConversationError
from classifiers.reading import ReplyReader
from classifiers.runtime import SCORE_LABELS, PreparedContext, Scorer, Scores

__all__ = [
    "DEFAULT_MODEL_DIR",
    "SCORE_LABELS",
    "ConversationError",
    "ModelFilesError",
    "PreparedContext",
    "ReplyReader",
    "Scorer",
    "Scores",
]
