"""What SOFIE's scripts expect of the Python around ROOT that pip's environment has differently.

SOFIE's Python tutorials were written for ROOT's own builds, with TensorFlow beside Keras.  pip's ROOT has
neither TensorFlow nor graph_nets:

- Keras runs on its torch backend (``KERAS_BACKEND=torch`` unless the user chose one).  A Keras model called
  on the torch backend returns a tensor that carries the autograd graph, whose ``.numpy()`` raises where
  TensorFlow's returns the values (``model(x).numpy()`` in ``TMVA_SOFIE_Keras_HiggsModel.py``); with the
  backend chosen here, ``torch.Tensor.numpy`` reads such a tensor's values as TensorFlow's does (detached).
  Nothing else of torch changes, and a backend the user chose is left as it is.

A script importing ``tensorflow`` (``TMVA_SOFIE_Keras.py``, ``TMVA_SOFIE_Models.py``) or ``graph_nets`` (the GNN
tutorials) fails there with Python's own one line, ``No module named 'tensorflow'``: no finder here answers for
them, since libraries probe for TensorFlow with ``importlib.util.find_spec`` and must be told it is absent.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import sys
from typing import Any, Optional, Sequence


class _AfterTorchImport(importlib.abc.MetaPathFinder):
    """First on ``sys.meta_path`` until torch is imported: runs :func:`_numpy_as_tensorflow` right after."""

    def find_spec(self, fullname: str, path: Optional[Sequence[str]], target: Any = None) -> Any:
        if fullname != "torch":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)  # the finders after this one
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_patch(module: Any) -> None:
            exec_module(module)
            _numpy_as_tensorflow(module)

        spec.loader.exec_module = exec_and_patch  # type: ignore[method-assign]
        return spec


def _numpy_as_tensorflow(torch: Any) -> None:
    """``tensor.numpy()`` on a tensor that requires grad gives its values (TensorFlow's eager tensors do)."""
    original = torch.Tensor.numpy
    if getattr(original, "_sofie_rdf_compat", False):
        return

    def numpy(self: Any, *, force: bool = False) -> Any:
        return original(self.detach() if self.requires_grad else self, force=force)

    numpy._sofie_rdf_compat = True  # type: ignore[attr-defined]
    numpy.__doc__ = original.__doc__
    torch.Tensor.numpy = numpy


def adapt_environment() -> None:
    """Keras on torch where TensorFlow is missing (unless a backend was chosen), its tensors' ``numpy()`` as
    TensorFlow's; once per process."""
    if importlib.util.find_spec("tensorflow") is not None and "KERAS_BACKEND" not in os.environ:
        return  # Keras finds TensorFlow, as SOFIE's scripts expect
    if os.environ.setdefault("KERAS_BACKEND", "torch") != "torch":
        return
    if "torch" in sys.modules:
        _numpy_as_tensorflow(sys.modules["torch"])
    elif not any(isinstance(f, _AfterTorchImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterTorchImport())
