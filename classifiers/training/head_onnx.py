"""The shipped model.onnx split at its output head: the features the head reads, the head's weights, and a copy of the
model with a new head put in its place.

The multi-task model ends in BERT's pooler (a tanh over the [CLS] state) and one linear layer to the seven logits
(int8-quantised like the rest). Everything before that layer stays as shipped; only the layer is retrained, so the new
model keeps the shipped encoder, tokeniser, input layout and output width, and the run time serves it unchanged.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

LOGITS = "logits"
_HEAD_PREFIX = "heedful_head"


class HeadNotFound(ValueError):
    """The model is not one whose output head this module knows how to find."""


def _producers(graph: onnx.GraphProto) -> dict[str, onnx.NodeProto]:
    return {out: node for node in graph.node for out in node.output}


def _ancestors(graph: onnx.GraphProto, tensor: str) -> set[int]:
    """Indices of the nodes the tensor depends on (its producer included)."""
    producers = _producers(graph)
    index = {id(node): i for i, node in enumerate(graph.node)}
    seen: set[int] = set()
    todo = [tensor]
    while todo:
        node = producers.get(todo.pop())
        if node is None or index[id(node)] in seen:
            continue
        seen.add(index[id(node)])
        todo.extend(node.input)
    return seen


def _head_weight_names(graph: onnx.GraphProto) -> tuple[str, str, str, str]:
    """(quantised weight, its per-column scale, its zero point, bias) initialiser names of the classifier layer."""
    names = {i.name for i in graph.initializer}
    weight = next((n for n in names if "classifier.weight" in n and n.endswith("_quantized")), None)
    bias = next((n for n in names if n.endswith("classifier.bias")), None)
    if weight is None or bias is None:
        raise HeadNotFound("no int8 classifier layer (classifier.weight*_quantized and classifier.bias) in the model")
    stem = weight.removesuffix("_quantized")
    return weight, f"{stem}_scale", f"{stem}_zero_point", bias


def _retrained(graph: onnx.GraphProto) -> bool:
    """A model this module wrote already (its head is the float `heedful_head`)."""
    return any(i.name == f"{_HEAD_PREFIX}.weight" for i in graph.initializer)


def features_tensor(graph: onnx.GraphProto) -> str:
    """The name of the tensor the classifier layer reads (the pooler's output, before its dynamic quantisation)."""
    weight = f"{_HEAD_PREFIX}.weight" if _retrained(graph) else _head_weight_names(graph)[0]
    consumer = next((n for n in graph.node if weight in n.input), None)
    if consumer is None:
        raise HeadNotFound(f"nothing reads {weight}")
    source = consumer.input[0]
    producer = _producers(graph).get(source)
    return producer.input[0] if producer is not None and producer.op_type == "DynamicQuantizeLinear" else source


def head_weights(model: onnx.ModelProto) -> tuple[np.ndarray, np.ndarray]:
    """The shipped head as float: weight (outputs, features) and bias (outputs,), as a torch Linear holds them."""
    tensors = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    if _retrained(model.graph):
        return tensors[f"{_HEAD_PREFIX}.weight"].T.copy(), tensors[f"{_HEAD_PREFIX}.bias"].copy()
    weight_name, scale_name, zero_name, bias_name = _head_weight_names(model.graph)
    quantised = tensors[weight_name].astype(np.float32)  # (features, outputs): stored transposed for MatMul
    weight = (quantised - tensors[zero_name].astype(np.float32)) * tensors[scale_name].astype(np.float32)
    return weight.T.copy(), tensors[bias_name].astype(np.float32)


def features_model(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy whose only output is the features the head reads, without the head."""
    graph = model.graph
    tensor = features_tensor(graph)
    keep = _ancestors(graph, tensor)
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    nodes = [n for i, n in enumerate(graph.node) if i in keep]
    del copy.graph.node[:]
    copy.graph.node.extend(nodes)
    used = {name for n in nodes for name in n.input}
    kept = [i for i in graph.initializer if i.name in used]
    del copy.graph.initializer[:]
    copy.graph.initializer.extend(kept)
    del copy.graph.output[:]
    copy.graph.output.append(helper.make_tensor_value_info(tensor, onnx.TensorProto.FLOAT, ["batch", None]))
    return copy


def with_head(model: onnx.ModelProto, weight: np.ndarray, bias: np.ndarray) -> onnx.ModelProto:
    """A copy of the model with its head replaced by a float linear layer (weight (outputs, features), bias (outputs,))."""
    graph = model.graph
    tensor = features_tensor(graph)
    below = _ancestors(graph, tensor)
    head = _ancestors(graph, LOGITS) - below
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    nodes = [n for i, n in enumerate(graph.node) if i not in head]
    nodes += [helper.make_node("MatMul", [tensor, f"{_HEAD_PREFIX}.weight"], [f"{_HEAD_PREFIX}.matmul"], name=f"{_HEAD_PREFIX}/MatMul"),
              helper.make_node("Add", [f"{_HEAD_PREFIX}.matmul", f"{_HEAD_PREFIX}.bias"], [LOGITS], name=f"{_HEAD_PREFIX}/Add")]
    del copy.graph.node[:]
    copy.graph.node.extend(nodes)
    used = {name for n in nodes for name in n.input}
    kept = [i for i in graph.initializer if i.name in used]
    kept += [numpy_helper.from_array(weight.T.astype(np.float32).copy(), f"{_HEAD_PREFIX}.weight"),
             numpy_helper.from_array(bias.astype(np.float32), f"{_HEAD_PREFIX}.bias")]
    del copy.graph.initializer[:]
    copy.graph.initializer.extend(kept)
    onnx.checker.check_model(copy)
    return copy


def load(path: Path) -> onnx.ModelProto:
    return onnx.load(str(path))
