"""Targets: the machines a planned model is generated for.

A :class:`Target` is an object, not a string (as tinygrad's ``Renderer``): it carries what the passes and
the emitters may ask of the machine, binds each operator to the emitter that computes it there, and stores
constant weights in the layouts its kernels read.  Each target lives in a folder of its own
(``targets/cpu/``, ``targets/cuda/``); no target imports another, and operators (``ops/``) know none of them.
What targets writing C++ share is ``targets/_cxx/``, which is no target.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import numpy as np

    from ..ir import Model, TensorType
    from ..ops.base import Op


class Target:
    """What the pipeline needs of a machine; a target subclasses it with its own capabilities."""

    # Short name ("cpu"), the first part of :attr:`key`.
    name: ClassVar[str] = ""
    # Whether the target computes the ONNX Attention operator, so that planning may fuse the attention chains
    # exporters write (passes/fuse_attention.py) into it; a target without its kernel runs the chain as it is.
    attention_op: ClassVar[bool] = True
    # Whether the target computes ``sofie_rdf::GridScatterND``, so that planning may give it the ScatterNDs over
    # broadcast index grids that PyTorch exports for ``x[:, i, j] = v`` (passes/index_grids.py).
    grid_scatter_op: ClassVar[bool] = True
    # Whether the target computes ``sofie_rdf::FusedGemm`` with ``pool_rows`` (the sum or mean of runs of rows),
    # so that planning may fold a ReduceSum/ReduceMean over a product's rows into it (passes/pool_fusion.py).
    pooled_gemm: ClassVar[bool] = True
    # Whether the target computes ``sofie_rdf::NeighbourGather``, so that planning may give it the gathers of
    # neighbours ParticleNet exports and split each EdgeConv's first convolution over it (passes/edge_conv.py).
    neighbour_gather: ClassVar[bool] = True
    # Whether the target computes ``sofie_rdf::SelectionGemm`` (products by constant selection matrices as gathers
    # and column sums: passes/selection.py).
    selection_products: ClassVar[bool] = True
    # Whether the target computes ``sofie_rdf::EdgeConvChain`` (an EdgeConv block's layers and pooling in one node).
    edge_chains: bool = False
    # Whether the target's session runs a batch of independent rows in blocks (planning/row_blocks.py), so that
    # planning may plan a model of static batch for one block of rows.
    row_blocks: ClassVar[bool] = False

    @property
    def key(self) -> str:
        """Identifies the generated code's machine: planned models are cached per key."""
        raise NotImplementedError

    def pools_conv(self, op: Op, x: TensorType, w: np.ndarray) -> bool:
        """Whether the target's code for convolution ``op`` (input ``x``, constant weights ``w``) computes it as a
        ``sofie_rdf::FusedConv`` with ``pool_window`` 2, so that planning may fold the 2 x 2 MaxPool after it into
        it (passes/conv_pool_fusion.py)."""
        return False

    def bind(self, op: Op) -> Any:
        """The emitter computing ``op`` on this target (raises when the target cannot)."""
        raise NotImplementedError

    def pack_weights(self, model: Model, emitters: list[Any]) -> None:
        """Store constant inputs in the layouts the bound emitters read (may rewrite ``model``'s weights)."""

    def __str__(self) -> str:
        return self.key
