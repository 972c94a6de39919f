"""The files of a shipped model folder and the small JSON documents that describe it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

DEFAULT_MODEL_NAME = "heedful-minilm-v1"
DEFAULT_MODEL_DIR = Path(__file__).parent / "models" / DEFAULT_MODEL_NAME
# The shipped model is one fine-tuned multi-task cross-encoder (MULTITASK_MODEL). The frozen variant (`train --reply
# frozen`, kept for comparison) is a base encoder with small heads.
MULTITASK_MODEL = "model.onnx"
FROZEN_FILES = ("encoder.onnx", "context_head.onnx", "reply_head.onnx")
REPLY_HEAD = "reply_head.onnx"


class ModelFilesError(RuntimeError):
    """A model folder is missing a file or holds an unreadable one."""


@dataclass(frozen=True)
class Calibration:
    """Platt scaling per label: p = sigmoid(scale * logit + shift)."""

    scale: dict[str, float]
    shift: dict[str, float]


@dataclass(frozen=True)
class ModelInfo:
    name: str
    version: str
    thresholds: dict[str, float]
    calibration: Calibration
    crisis_lexicon_floor: float


def load_model_info(model_dir: Path) -> ModelInfo:
    required = ["tokenizer.json", "thresholds.json", "calibration.json"]
    required += [MULTITASK_MODEL] if (model_dir / MULTITASK_MODEL).is_file() else list(FROZEN_FILES)
    missing = [name for name in required if not (model_dir / name).is_file()]
    if missing:
        raise ModelFilesError(f"model folder {model_dir} lacks {', '.join(missing)}")
    try:
        thresholds = json.loads((model_dir / "thresholds.json").read_text())
        calibration = json.loads((model_dir / "calibration.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelFilesError(f"model folder {model_dir}: {exc}") from exc
    return ModelInfo(
        name=thresholds.get("model", model_dir.name),
        version=str(thresholds.get("version", "0")),
        thresholds={k: float(v) for k, v in thresholds["thresholds"].items()},
        calibration=Calibration(
            scale={k: float(v["scale"]) for k, v in calibration["labels"].items()},
            shift={k: float(v["shift"]) for k, v in calibration["labels"].items()},
        ),
        crisis_lexicon_floor=float(thresholds.get("crisis_lexicon_floor", 0.97)),
    )
