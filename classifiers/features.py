"""Feature vectors the ONNX heads read, built the same way in training and at run time."""

from __future__ import annotations

import numpy as np

from classifiers.labels import CONTEXT_OUTPUTS as CONTEXT_LABELS
from classifiers.labels import REPLY_OUTPUTS as REPLY_LABELS

__all__ = ["CONTEXT_LABELS", "REPLY_LABELS", "context_features", "reply_features"]


def reply_features(reply_pass: np.ndarray, context: np.ndarray, previous: np.ndarray, has_previous: np.ndarray) -> np.ndarray:
    """Joint features: the reply pass (which already attends over the user's last words) and its interactions with the
    context and with the assistant's previous answer, so a head can see agreement, reversal and topic drift."""
    has_previous = has_previous.reshape(-1, 1).astype(np.float32)
    return np.concatenate(
        [reply_pass, context, previous, reply_pass * context, reply_pass * previous, has_previous], axis=1
    ).astype(np.float32)


def context_features(context: np.ndarray) -> np.ndarray:
    return context.astype(np.float32)
