"""The ONNX front end under mutation: only ``SofieError`` may escape (bounded run; ``make fuzz`` runs long)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.fuzz import onnx_parser

ITERATIONS = 1500


@pytest.mark.filterwarnings("ignore")
def test_mutated_models_raise_only_sofie_errors():
    with np.errstate(all="ignore"):
        report = onnx_parser.run(ITERATIONS, seed=11)
    assert report.iterations == ITERATIONS
    assert report.loaded > 0 and report.refused > 0  # the mutations reach both outcomes
    assert not report.findings, "\n\n".join(report.findings[:3])
