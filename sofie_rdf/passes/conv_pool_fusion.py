"""A 2 x 2 max-pooling into the 2-D convolution before it: ``FusedConv`` with ``pool_window`` 2.

Calorimeter-image CNNs repeat ``Conv -> ReLU -> MaxPool(2 x 2, stride 2)``.  Fused, the convolution takes the
maximum of each window as it writes its output (Winograd's output tiles hold whole windows), and the full-size
output is never stored nor read back: for 16 features on 32 x 32 pixels, 64 KB per image written, then read by
the pooling, become the 16 KB of the pooled output.

A pair qualifies when the ``MaxPool`` reads a ``Conv`` or ``FusedConv`` (the activation already fused,
``passes/fusion.py``) of float32 2-D images of static sides, whose output nothing else reads and which is no
graph output, with constant weights; the pooling has windows of 2 x 2 with stride 2, no padding nor dilation,
no ``Indices`` output, and as many outputs as the floor of half each side.  The target decides, per layer,
whether its code can pool so (``Target.pools_conv``); elsewhere the two nodes stay.
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from ..ir import Model, Node, TensorType
from ..ops import Op, make_node, op_for
from ..ops.fused import FUSED_DOMAIN
from .fusion import _consumers

POOL_WINDOW = 2

ConvPools = Callable[[Op, TensorType, np.ndarray], bool]


def fuse_conv_max_pooling(model: Model, pools: ConvPools) -> Model:
    """Fold every qualifying ``MaxPool`` into the convolution before it, where ``pools(op, x, w)`` says the
    target's code for that convolution can take it."""
    consumers = _consumers(model)
    producer = {o: n for n in model.nodes for o in n.outputs if o}
    replaced: dict[int, Node] = {}
    removed: set[int] = set()
    for node in model.nodes:
        conv = _pooled_conv(model, node, producer, consumers, pools)
        if conv is None:
            continue
        activation = {} if conv.op_type == "FusedConv" else {"activation": "Identity", "activation_version": 0}
        attrs = {**conv.attrs, **activation, "pool_window": POOL_WINDOW}
        replaced[id(node)] = make_node("FusedConv", conv.inputs, node.outputs[:1], attrs,
                                       name=f"{conv.name}+{node.name}", domain=FUSED_DOMAIN, version=1,
                                       model=model.name, internal=True)
        removed.add(id(conv))
        del model.tensors[conv.outputs[0]]
    model.nodes = [replaced.get(id(n), n) for n in model.nodes if id(n) not in removed]
    return model


def _pooled_conv(model: Model, node: Node, producer: dict[str, Node], consumers: dict[str, list[Node]],
                 pools: ConvPools) -> Optional[Node]:
    """The convolution that ``node``, a 2 x 2 MaxPool, fuses into, or None."""
    if node.op_type != "MaxPool" or node.domain not in ("", "ai.onnx") or any(node.outputs[1:]):
        return None
    conv = producer.get(node.inputs[0])
    if conv is None or conv.op_type not in ("Conv", "FusedConv") or conv.domain not in ("", "ai.onnx", FUSED_DOMAIN):
        return None
    y = conv.outputs[0]
    if y in model.outputs or len(consumers.get(y, [])) != 1 or conv.attrs.get("pool_window", 0):
        return None
    x, image = model.tensors.get(conv.inputs[0]), model.tensors[y]
    weights = model.initializers.get(conv.inputs[1]) if len(conv.inputs) > 1 else None
    if (x is None or weights is None or image.dtype != np.float32 or image.rank != 4
            or not all(isinstance(d, int) and d >= POOL_WINDOW for d in image.shape[2:])):
        return None
    if not _two_by_two(op_for(node, model.name), image):
        return None
    return conv if pools(op_for(conv, model.name), x, np.asarray(weights)) else None


def _two_by_two(pool: Op, image: TensorType) -> bool:
    """Whether ``pool`` takes the maximum of unpadded 2 x 2 windows, stride 2, over all of ``image`` it covers."""
    g = pool.geometry(image)
    return (g.kernel == (POOL_WINDOW,) * 2 and g.strides == (POOL_WINDOW,) * 2 and g.dilations == (1, 1)
            and not any(g.pads_begin + g.pads_end) and g.out == tuple(d // POOL_WINDOW for d in image.shape[2:]))
