"""The files of a shipped model folder and the small JSON documents that describe it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

DEFAULT_MODEL_NAME = "heedful-minilm-v1"
DEFAULT_MODEL_DIR = Path(__file__).parent / "models" / DEFAULT_MODEL_NAME
# The reply labels come from a fine-tuned cross-encoder (REPLY_MODEL) or, failing that, from heads on frozen features.
REPLY_MODEL = "reply_model.onnx"
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
    required = ["encoder.onnx", "tokenizer.json", "context_head.onnx", "thresholds.json", "calibration.json"]
    missing = [name for name in required if not (model_dir / name).is_file()]
    if not (model_dir / REPLY_MODEL).is_file() and not (model_dir / REPLY_HEAD).is_file():
        missing.append(f"{REPLY_MODEL} (or {REPLY_HEAD})")
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
