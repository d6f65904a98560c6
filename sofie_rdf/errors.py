"""Exceptions raised by sofie-rdf.

Every failure a user can cause (a bad file, an operator we do not know, a wrong
array at ``infer``) surfaces as a subclass of :class:`SofieError`, so analysis
code can catch one type and report the message, which always names the model
and, where there is one, the node.
"""

from __future__ import annotations


class SofieError(Exception):
    """Base class of every error sofie-rdf raises on purpose."""


class ModelFormatError(SofieError):
    """The model file or object is unreadable or not a valid model."""


class UnsupportedOperatorError(SofieError):
    """The model uses operators that have no implementation.

    ``target`` names the target that lacks them when another has them (the CUDA target).
    ``unsupported`` maps each op type (``domain::Type`` outside the default
    domain) to the names of the nodes using it, so a user sees every gap at
    once instead of one per attempt.
    """

    def __init__(self, model: str, unsupported: dict[str, list[str]], target: str = ""):
        self.model = model
        self.unsupported = unsupported
        self.target = target  # the target lacking them ("cuda"); empty where no target has them
        lines = [
            f"  {op}: {len(nodes)} node(s): {', '.join(repr(n) for n in nodes[:5])}"
            + (" ..." if len(nodes) > 5 else "")
            for op, nodes in sorted(unsupported.items())
        ]
        super().__init__(
            f"model {model!r} uses {len(unsupported)} "
            + (f"operator type(s) the {target} target does not support" if target else "unsupported operator type(s)")
            + ":\n" + "\n".join(lines)
        )


class ShapeError(SofieError):
    """A tensor has a shape or dtype that the model cannot accept."""


class NeedsDimsError(ShapeError):
    """Code generation cannot settle a shape while some input dims stay symbolic: an ``If`` whose branches
    differ in rank and whose condition depends on dims (``torch.onnx.export``'s ``x.squeeze(d)`` of a dynamic
    dim), or a shape computed from values that only the dims' sizes decide.

    ``dims`` names the input dims whose sizes settle it (None: every input dim); shape inference finds them
    from ``input``, the index of the node's input whose value decides it.  :func:`sofie_rdf.compile` then
    builds the model for the dims of each call (see :mod:`sofie_rdf._specialise`); :meth:`Model.generate`
    needs them given, ``sr.load(..., dims={...})``.
    """

    def __init__(self, message: str, dims: frozenset[str] | None = None, input: int | None = None):
        super().__init__(message)
        self.dims = dims
        self.input = input


class CompilationError(SofieError):
    """Generated C++ failed to compile (a bug in sofie-rdf: please report it)."""


class SpecialisationWarning(UserWarning):
    """A model is built for the dims of each call, since one build cannot serve them all (the message names
    the node); said once per Session."""


class LegacyModelWarning(UserWarning):
    """A model file written by an older converter was read with an assumption (named in the message)."""
