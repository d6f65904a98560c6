"""Internal operators the fusion passes make (domain ``sofie_rdf``; a model file may not contain them).

``FusedConv``/``FusedConvTranspose``/``FusedGemm`` (``passes/fusion.py``) carry a following activation as
attributes (``activation``, ``activation_version``, ``activation_<attr>``), like onnxruntime's
``com.microsoft`` FusedConv; the node computes the activation of the base operator's output.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Op
from .conv import Conv, ConvTranspose
from .gemm import Gemm
from .registry import INTERNAL_DOMAIN, lookup, make_node, register

FUSED_DOMAIN = INTERNAL_DOMAIN

ACTIVATION_PREFIX = "activation_"


def activation_attrs(node_attrs: dict[str, Any]) -> dict[str, Any]:
    """The fused activation's own attributes (prefix removed)."""
    skip = {"activation", "activation_version"}
    return {k[len(ACTIVATION_PREFIX):]: v for k, v in node_attrs.items()
            if k.startswith(ACTIVATION_PREFIX) and k not in skip}


class FusedActivation:
    """Mixin: the activation named by the node's attributes, applied to every output of the base operator."""

    attr_defaults = {"activation": "Identity", "activation_version": 0}

    def activation_op(self) -> Op:
        """The activation as an operator of its own (the emitter binds it to the target for its code)."""
        attrs = self.attrs
        node = make_node(attrs["activation"], ["x"], ["y"], activation_attrs(attrs),
                         version=int(attrs["activation_version"]), model=self.model)
        return lookup(node.op_type, node.domain, node.version)(node, self.model)

    def activation_reference(self, y: np.ndarray) -> np.ndarray:
        return self.activation_op().evaluate([y])[0]


@register
class FusedConv(FusedActivation, Conv):
    """Conv followed by an element-wise activation, computed in one pass."""

    op_type = "FusedConv"
    domain = FUSED_DOMAIN
    attr_defaults = {**Conv.attr_defaults, **FusedActivation.attr_defaults, "auto_pad": "NOTSET", "group": 1}

    def evaluate(self, values):
        return [self.activation_reference(super().evaluate(values)[0])]


@register
class FusedConvTranspose(FusedActivation, ConvTranspose):
    """ConvTranspose followed by an element-wise activation."""

    op_type = "FusedConvTranspose"
    domain = FUSED_DOMAIN
    attr_defaults = {**ConvTranspose.attr_defaults, **FusedActivation.attr_defaults, "auto_pad": "NOTSET",
                     "group": 1}

    def evaluate(self, values):
        return [self.activation_reference(super().evaluate(values)[0])]


@register
class FusedGemm(FusedActivation, Gemm):
    """Gemm followed by an element-wise activation of its output."""

    op_type = "FusedGemm"
    domain = FUSED_DOMAIN
    since_version = 1  # fused nodes are made at version 1 (Gemm's own since_version is 7)
    attr_defaults = {**FusedActivation.attr_defaults, "alpha": 1.0, "beta": 1.0, "transA": 0, "transB": 0}

    def evaluate(self, values):
        return [self.activation_reference(super().evaluate(values)[0])]
