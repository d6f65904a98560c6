"""What ``sr.load`` adapts while reading: symbolic dims fixed by the user (``dims=``, ``input_shapes=``,
``sofie-rdf ... --dim``), and recurrent nodes of older converters' files (``clip = 0``, float
``sequence_lens``), read as TMVA SOFIE reads them, with a warning naming the node."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import ATOL, RTOL, make_model, ort_run, random_array
from onnx import helper

import sofie_rdf as sr
from sofie_rdf.cli import main as cli_main


def _conv1d_model():
    """Conv1d + Relu over a named length: the dims a user fixes."""
    w = random_array((4, 3, 3), seed=1)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1]), helper.make_node("Relu", ["c"], ["y"])]
    return make_model(nodes, [("x", np.float32, ["N", 3, "length"])], [("y", np.float32, None)], {"w": w})


def test_fixed_dims_specialise_the_code_and_agree_with_onnxruntime():
    model = _conv1d_model()
    fixed = sr.load(model, dims={"N": 2, "length": 12})
    assert fixed.inputs[0].shape == (2, 3, 12) and fixed.outputs[0].shape == (2, 4, 12)
    assert "size_t" not in fixed.code().signatures["infer"]  # no dim parameters left
    x = random_array((2, 3, 12), seed=2)
    for backend in ("jit", "native"):
        got = sr.compile(fixed, backend=backend).infer(x)
        np.testing.assert_allclose(got, ort_run(model, {"x": x})[0], rtol=RTOL, atol=ATOL)
    with pytest.raises(sr.ShapeError, match="expected shape"):
        sr.compile(fixed, backend="jit").infer(random_array((2, 3, 13)))


def test_input_shapes_fix_rename_or_keep_dims():
    model = _conv1d_model()
    assert sr.load(model, input_shapes={"x": (1, None, 20)}).inputs[0].shape == (1, 3, 20)
    renamed = sr.load(model, input_shapes={"x": ("batch", 3, 7)})  # a convolution's length must be fixed today
    assert [str(d) for d in renamed.inputs[0].shape] == ["batch", "3", "7"]
    both = sr.load(model, input_shapes={"x": (None, None, "t")}, dims={"t": 5, "N": 1})
    assert both.inputs[0].shape == (1, 3, 5)


@pytest.mark.parametrize("options, message", [
    ({"dims": {"T": 3}}, "no dim of the inputs .*N, length"),
    ({"dims": {"length": -2}}, "must be a size >= 0"),
    ({"input_shapes": {"z": (1, 3, 4)}}, "not an input"),
    ({"input_shapes": {"x": (1, 3)}}, "rank 2"),
    ({"input_shapes": {"x": (1, 4, 5)}}, "fixed size 3, not 4"),
    ({"input_shapes": {"x": (1, "c", 5)}}, "cannot become the dim 'c'"),
])
def test_bad_fixes_name_the_problem(options, message):
    with pytest.raises(sr.ModelFormatError, match=message):
        sr.load(_conv1d_model(), **options)


def test_cli_dim_option(tmp_path, capsys):
    path = tmp_path / "conv1d.onnx"
    path.write_bytes(_conv1d_model().SerializeToString())
    assert cli_main(["info", str(path), "--dim", "length=12"]) == 0
    assert "(N, 4, 12)" in capsys.readouterr().out
    assert cli_main(["emit", str(path), "--dim", "length=12", "--dim", "N=1", "-o", str(tmp_path / "out")]) == 0
    assert "float32 ('1', '3', '12')" in (tmp_path / "out" / "conv1d.hxx").read_text()
    assert cli_main(["info", str(path), "--dim", "length"]) == 1
    assert "--dim takes NAME=N" in capsys.readouterr().err


# ---- recurrent nodes of older converters ----------------------------------------------------------------

def _lstm(clip: float | None, lens_dtype, lens_as_input: bool = False):
    seq, batch, inp, hidden = 5, 2, 3, 4
    weights = {"W": random_array((1, 4 * hidden, inp), seed=3), "R": random_array((1, 4 * hidden, hidden), seed=4),
               "B": random_array((1, 8 * hidden), seed=5)}
    lens = np.array([5, 3], dtype=lens_dtype)
    inputs = [("x", np.float32, [seq, batch, inp])]
    if lens_as_input:
        inputs.append(("lens", lens_dtype, [batch]))
    else:
        weights["lens"] = lens
    attrs = {"hidden_size": hidden} | ({"clip": clip} if clip is not None else {})
    node = helper.make_node("LSTM", ["x", "W", "R", "B", "lens"], ["y", "yh"], name="lstm", **attrs)
    return make_model([node], inputs, [("y", np.float32, None), ("yh", np.float32, None)], weights), lens


@pytest.mark.parametrize("lens_as_input", [False, True])
def test_older_recurrent_files_run_with_a_warning(lens_as_input):
    legacy, lens = _lstm(0.0, np.float32, lens_as_input)
    spec, _ = _lstm(None, np.int32, lens_as_input)
    with pytest.warns(sr.LegacyModelWarning) as caught:
        model = sr.load(legacy)
    messages = [str(w.message) for w in caught]
    assert any("LSTM node 'lstm': clip = 0" in m and "no clipping" in m for m in messages)
    assert any("LSTM node 'lstm': sequence_lens is float32" in m and "int32" in m for m in messages)
    x = random_array((5, 2, 3), seed=6)
    feeds = {"x": x} | ({"lens": lens.astype(np.int32)} if lens_as_input else {})
    want = ort_run(spec, feeds)
    got = sr.compile(model, backend="jit").infer(x, *([lens] if lens_as_input else []))
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL)


def test_spec_recurrent_files_load_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sr.load(_lstm(2.5, np.int32)[0])
