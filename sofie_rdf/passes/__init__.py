"""The graph passes, in the order they run.

:func:`prepare` validates a model and infers its shapes (on load); :func:`rewrite` is the only place the
rewriting passes are sequenced: read it to know what happens to a graph and when.  Neither knows a
target: what the machine decides (weight layouts, memory) happens afterwards, in :mod:`sofie_rdf.planning`.
"""

from __future__ import annotations

import copy
from typing import Optional

from ..ir import Model
from ..ops import check_supported
from .constant_folding import fold_constants
from .conv_pool_fusion import ConvPools, fuse_conv_max_pooling
from .edge_conv import fuse_edge_convs
from .elementwise_fusion import fuse_elementwise_chains
from .fold_batchnorm import fold_batchnorm
from .fuse_attention import fuse_attention
from .fusion import fuse_activations, fuse_matmul_add
from .gelu_fusion import fuse_gelu
from .index_grids import fuse_index_grids
from .inline_if import inline_known_ifs
from .pool_fusion import fuse_row_pooling
from .qonnx_layout import write_out_qonnx
from .quantized_fusion import fuse_dynamic_products, fuse_quantized
from .selection import use_selection_products
from .shape_inference import infer_shapes

__all__ = ["prepare", "rewrite"]


def prepare(model: Model) -> Model:
    """Validated, supported, shape-inferred copy of ``model`` (no rewriting but one: an ``If`` whose condition
    shape inference decides is replaced by its branch, and the shapes inferred again)."""
    model = copy.copy(model)
    model.nodes = [copy.copy(n) for n in model.nodes]
    model = _inferred(model)
    while inline_known_ifs(model):
        model = _inferred(model)
    return model


def _inferred(model: Model) -> Model:
    """``model`` validated, checked and its shapes inferred afresh (from its inputs' types)."""
    model.tensors = {n: model.tensors[n] for n in model.inputs}
    model.constraints = []
    model.runtime_dims = {}
    model.validate()
    check_supported(model)
    return infer_shapes(model)


def rewrite(model: Model, attention: bool = True, index_grids: bool = True, row_pooling: bool = True,
            conv_pooling: Optional[ConvPools] = None, edge_conv: bool = True, edge_chains: bool = True,
            selections: bool = True) -> Model:
    """A prepared model rewritten for inference (``model`` itself, changed).  ``attention``, ``index_grids`` and
    ``row_pooling``: whether the machine it is planned for computes the ONNX Attention operator
    (``Target.attention_op``), ``sofie_rdf::GridScatterND`` (``Target.grid_scatter_op``) and a pooled
    ``sofie_rdf::FusedGemm`` (``Target.pooled_gemm``), which steps 1b, 1c and 4b produce; ``conv_pooling``,
    which of its convolutions compute a pooled ``sofie_rdf::FusedConv`` (``Target.pools_conv``: step 4c);
    ``edge_conv``, whether it computes ``sofie_rdf::NeighbourGather`` (``Target.neighbour_gather``: step 4a), and
    ``edge_chains`` ``sofie_rdf::EdgeConvChain`` (``Target.edge_chains``); ``selections``, whether it computes
    ``sofie_rdf::SelectionGemm`` (``Target.selection_products``: step 2b)."""
    model = write_out_qonnx(model)  # 0. QONNX's quantizers and channels-last operators as ONNX operators
    model = fuse_quantized(model)   # 0b. DequantizeLinear -> op -> QuantizeLinear as integer operators (before 1
    #                                     folds the dequantized weights into floats)
    model = fuse_dynamic_products(model)  # 0c. DynamicQuantizeLinear -> MatMulInteger -> Cast -> scale (-> bias)
    #                                           -> one DynamicQuantizeMatMul
    model = fold_constants(model)   # 1. drop nodes computed at generation time, collect weights
    if attention:
        model = fuse_attention(model)  # 1b. MatMul(Q, K^T) -> scale -> Softmax -> MatMul(V) -> one Attention
    if index_grids:
        model = fuse_index_grids(model)  # 1c. ScatterND(Concat(Unsqueeze(Expand(c)))) -> one GridScatterND
    model = fuse_matmul_add(model)  # 2. MatMul + constant bias Add -> Gemm (which 3 and 4 may then fuse further)
    if selections:
        model = use_selection_products(model)  # 2b. Gemm by a constant 0/1 selection -> a gather or a column sum
    model = fold_batchnorm(model)   # 3. inference BatchNormalization merged into the Conv/Gemm weights before it
    model = fuse_gelu(model)        # 3b. GELU as exported (Erf or Tanh chains) -> one Gelu node, which 4 may fuse
    model = fuse_activations(model)  # 4. Conv/ConvTranspose/Gemm + activation -> one sofie_rdf::Fused* node
    if edge_conv:
        model = fuse_edge_convs(model, edge_chains)  # 4a. EdgeConv's gather -> one node, its first conv per point
    if row_pooling:
        model = fuse_row_pooling(model)  # 4b. Gemm -> ReduceSum/ReduceMean over its rows -> one pooled FusedGemm
    if conv_pooling is not None:
        model = fuse_conv_max_pooling(model, conv_pooling)  # 4c. Conv -> 2 x 2 MaxPool -> one pooled FusedConv
    model = fuse_elementwise_chains(model)  # 5. runs of element-wise ops -> one sofie_rdf::FusedElementwise loop
    return model
