"""The small heads that sit on the frozen encoder's features, trained with torch and exported to ONNX."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from torch import nn


def make_head(inputs: int, outputs: int, hidden: int) -> nn.Module:
    if hidden == 0:
        return nn.Sequential(nn.Dropout(0.1), nn.Linear(inputs, outputs))
    return nn.Sequential(nn.Dropout(0.1), nn.Linear(inputs, hidden), nn.GELU(), nn.Dropout(0.3), nn.Linear(hidden, outputs))


def mean_auroc(y: np.ndarray, scores: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean AUROC over the columns with both classes (among the rows a column's mask keeps, when there is a mask)."""
    values = []
    for j in range(y.shape[1]):
        rows = mask[:, j] > 0 if mask is not None else slice(None)
        column = y[rows, j]
        if 0 < column.sum() < len(column):
            values.append(roc_auc_score(column, scores[rows, j]))
    return float(np.mean(values)) if values else 0.0


def fit_head(
    x: np.ndarray, y: np.ndarray, x_dev: np.ndarray, y_dev: np.ndarray, hidden: int, seed: int, epochs: int = 300,
    *, mask: np.ndarray | None = None, dev_mask: np.ndarray | None = None,
    init: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[nn.Module, float]:
    """Full-batch AdamW with early stopping on the dev split's mean AUROC; returns the best head and that AUROC.

    `mask` (like y) says which labels each row trains (reviewed rows may leave some unknown); `init` (weight, bias) starts
    a linear head (hidden=0) from an existing one, which then competes as the starting point of early stopping."""
    torch.manual_seed(seed)
    head = make_head(x.shape[1], y.shape[1], hidden)
    weights = np.ones_like(y, dtype=np.float32) if mask is None else mask.astype(np.float32)
    if init is not None:
        linear = head[1]
        assert isinstance(linear, nn.Linear), "init needs a linear head (hidden=0)"
        with torch.no_grad():
            linear.weight.copy_(torch.tensor(init[0], dtype=torch.float32))
            linear.bias.copy_(torch.tensor(init[1], dtype=torch.float32))
    positives = (y * weights).sum(0).clip(min=1)
    pos_weight = torch.tensor((weights.sum(0) - positives) / positives, dtype=torch.float32).clamp(max=8.0)
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=pos_weight, reduction="none")
    optimiser = torch.optim.AdamW(head.parameters(), lr=2e-3, weight_decay=1e-2)
    xt, yt, wt = torch.tensor(x), torch.tensor(y, dtype=torch.float32), torch.tensor(weights)
    xd = torch.tensor(x_dev)
    best, best_state, since_best = -1.0, None, 0
    if init is not None:
        head.eval()
        with torch.no_grad():
            best = mean_auroc(y_dev, head(xd).numpy(), dev_mask)
        best_state = {k: v.clone() for k, v in head.state_dict().items()}
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        head.train()
        for batch in torch.randperm(len(xt), generator=generator).split(128):
            optimiser.zero_grad()
            loss = loss_fn(head(xt[batch]), yt[batch]) * wt[batch]
            (loss.sum() / wt[batch].sum().clamp(min=1.0)).backward()
            optimiser.step()
        head.eval()
        with torch.no_grad():
            score = mean_auroc(y_dev, head(xd).numpy(), dev_mask)
        if score > best + 1e-4:
            best, best_state, since_best = score, {k: v.clone() for k, v in head.state_dict().items()}, 0
        else:
            since_best += 1
            if since_best >= 25:
                break
    assert best_state is not None
    head.load_state_dict(best_state)
    head.eval()
    return head, best


def logits(head: nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return head(torch.tensor(x)).numpy()


def export_head(head: nn.Module, inputs: int, path: Path) -> None:
    head.eval()
    torch.onnx.export(
        head,
        (torch.zeros(2, inputs),),
        str(path),
        input_names=["features"],
        output_names=["logits"],
        dynamic_axes={"features": {0: "batch"}, "logits": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
