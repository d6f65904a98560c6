"""The pass pipeline, in the order it runs.

``run_pipeline`` is the only place passes are sequenced: read it to know what
happens to a graph and when.
"""

from __future__ import annotations

import copy

from ..ir import Model
from ..ops import check_supported
from .constant_folding import fold_constants
from .elementwise_fusion import fuse_elementwise_chains
from .fold_batchnorm import fold_batchnorm
from .fusion import fuse_activations, fuse_matmul_add
from .memory_planning import MemoryPlan, plan_memory
from .row_blocks import plan_row_blocks
from .shape_inference import infer_shapes
from .weight_layout import pack_weights

__all__ = ["MemoryPlan", "prepare", "run_pipeline"]


def prepare(model: Model) -> Model:
    """Validated, supported, shape-inferred copy of ``model`` (no rewriting)."""
    model = copy.copy(model)
    model.nodes = [copy.copy(n) for n in model.nodes]
    model.tensors = {n: model.tensors[n] for n in model.inputs}
    model.constraints = []
    model.runtime_dims = {}
    model.validate()
    check_supported(model)
    return infer_shapes(model)


def run_pipeline(model: Model, target: str = "native") -> tuple[Model, MemoryPlan]:
    """Everything between parsing and emission, for the compiler ``target`` (ops.base.TARGETS): returns the
    rewritten model and its memory plan."""
    model = prepare(model)          # 1. validate, check support, infer shapes and fold values
    model = fold_constants(model)   # 2. drop nodes computed at generation time, collect weights
    model = fuse_matmul_add(model)  # 2a. MatMul + constant bias Add -> Gemm (which 2b and 2c may then fuse further)
    model = fold_batchnorm(model)   # 2b. inference BatchNormalization merged into the Conv/Gemm weights before it
    model = fuse_activations(model)  # 2c. Conv/ConvTranspose/Gemm + activation -> one sofie_rdf::Fused* node
    model = fuse_elementwise_chains(model)  # 2d. runs of element-wise ops -> one sofie_rdf::FusedElementwise loop
    model = pack_weights(model, target)  # 3. constant weights stored in the layout the kernels read (Op.pack_constants)
    plan = plan_memory(model)       # 4. place every tensor (caller buffers, weights, views, arena)
    plan.row_block = plan_row_blocks(model, plan)  # 5. a batch of independent rows run in cache-sized blocks
    return model, plan
