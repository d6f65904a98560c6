"""The ``sofie-rdf`` command line: emit, info, and clean errors."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import uproot
from conftest import make_model
from onnx import helper

import sofie_rdf as sr
from sofie_rdf.cli import main
from sofie_rdf.targets.cpu import host_isa


def save(model: onnx.ModelProto, path: Path) -> Path:
    onnx.save(model, str(path))
    return path


@pytest.fixture
def mlp_file(tmp_path) -> Path:
    """A supported two-layer model with a symbolic batch."""
    rng = np.random.default_rng(0)
    nodes = [helper.make_node("Gemm", ["x", "W1", "b1"], ["h"], name="fc1"),
             helper.make_node("Relu", ["h"], ["hr"]),
             helper.make_node("Gemm", ["hr", "W2", "b2"], ["y"], name="fc2")]
    init = {"W1": rng.standard_normal((4, 8)).astype(np.float32), "b1": np.zeros(8, np.float32),
            "W2": rng.standard_normal((8, 2)).astype(np.float32), "b2": np.zeros(2, np.float32)}
    model = make_model(nodes, [("x", np.float32, ["N", 4])], [("y", np.float32, ["N", 2])], init, name="cli_mlp")
    return save(model, tmp_path / "cli_mlp.onnx")


@pytest.fixture
def unsupported_file(tmp_path) -> Path:
    """A model with an operator sofie-rdf does not implement (a custom domain's) next to one it does."""
    nodes = [helper.make_node("Mystery", ["x"], ["h"], domain="com.example", name="odd"),
             helper.make_node("Relu", ["h"], ["y"])]
    model = make_model(nodes, [("x", np.float32, ["seq", 3])], [("y", np.float32, None)], name="odd")
    model.opset_import.append(helper.make_opsetid("com.example", 1))
    return save(model, tmp_path / "odd.onnx")


def test_emit_writes_header_and_weights(mlp_file, tmp_path, capsys):
    out = tmp_path / "gen"
    assert main(["emit", str(mlp_file), "-o", str(out)]) == 0
    header, weights = out / "cli_mlp.hxx", out / "cli_mlp.dat"
    assert header.is_file() and weights.is_file()
    assert "namespace TMVA_SOFIE_cli_mlp" in header.read_text()
    printed = capsys.readouterr().out
    assert str(header) in printed and str(weights) in printed


def test_emit_name_and_embedded_weights(mlp_file, tmp_path, capsys):
    out = tmp_path / "gen"
    assert main(["emit", str(mlp_file), "-o", str(out), "--name", "Higgs", "--weights", "embed"]) == 0
    assert "namespace TMVA_SOFIE_Higgs" in (out / "Higgs.hxx").read_text()
    assert not (out / "Higgs.dat").exists()
    assert "embedded" in capsys.readouterr().out


def test_emit_target(tmp_path, capsys):
    """``--target jit`` writes a header for Cling on this machine, planned as the native build (gemm_panels where
    the CPU has AVX2); a target that is not one is refused by the Python API as by the command line."""
    rng = np.random.default_rng(1)
    model = make_model([helper.make_node("Gemm", ["x", "w"], ["y"])], [("x", np.float32, [16, 32])],
                       [("y", np.float32, [16, 20000])], {"w": rng.standard_normal((32, 20000)).astype(np.float32)},
                       name="wide")
    path = save(model, tmp_path / "wide.onnx")
    for target, panels in (("native", True), ("jit", host_isa() != "generic")):
        assert main(["emit", str(path), "-o", str(tmp_path / target), "--target", target]) == 0
        assert ("kernels::gemm_panels(" in (tmp_path / target / "wide.hxx").read_text()) == panels
    with pytest.raises(sr.SofieError, match="target must be one of native, jit, cuda"):
        sr.load(str(path)).code(target="metal")
    with pytest.raises(SystemExit):
        main(["emit", str(path), "--target", "metal"])
    capsys.readouterr()


def test_save_then_emit_from_root_file(mlp_file, tmp_path, capsys):
    """``save`` stores the IR under a key; ``emit`` and ``info`` read ``FILE.root:KEY``; root weights on request."""
    store = tmp_path / "models.root"
    assert main(["save", str(mlp_file), str(store), "--key", "first"]) == 0
    assert main(["save", str(mlp_file), str(store)]) == 0
    out = capsys.readouterr().out
    assert "saved cli_mlp as" in out and "models in" in out and "first, cli_mlp" in out
    assert main(["info", f"{store}:first"]) == 0
    assert "Gemm x2" in capsys.readouterr().out
    assert main(["emit", f"{store}:first", "-o", str(tmp_path / "gen"), "--weights", "root"]) == 0
    # A stored model keeps its own name, whatever key it is stored under.
    assert (tmp_path / "gen" / "cli_mlp.root").is_file()
    assert "#include <TFile.h>" in (tmp_path / "gen" / "cli_mlp.hxx").read_text()


def test_info_prints_counts(mlp_file, capsys):
    assert main(["info", str(mlp_file)]) == 0
    text = capsys.readouterr().out
    assert "Gemm x2" in text and "Relu x1" in text
    assert "unsupported: none" in text
    assert "parameters: 58" in text


def test_info_reports_unsupported_ops(unsupported_file, capsys):
    assert main(["info", str(unsupported_file)]) == 0
    text = capsys.readouterr().out
    assert "com.example::Mystery x1" in text and "Relu x1" in text
    assert "unsupported: com.example::Mystery" in text


def test_emit_unsupported_is_clean_error(unsupported_file, tmp_path, capsys):
    assert main(["emit", str(unsupported_file), "-o", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "com.example::Mystery" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("command", ["info", "emit"])
def test_bad_file_exit_code_and_message(tmp_path, capsys, command):
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"this is not a protobuf")
    assert main([command, str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"sofie-rdf {command}: error:") and "broken.onnx" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_missing_file_from_console_script(tmp_path):
    """Through a real process: exit status 1 and one line on stderr, no traceback."""
    proc = subprocess.run([sys.executable, "-m", "sofie_rdf.cli", "info", str(tmp_path / "nope.onnx")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "nope.onnx" in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stdout == ""


@pytest.fixture
def small_tree(tmp_path) -> Path:
    """A 300-event TTree with the 4 float columns the ``mlp_file`` model takes, and an int column."""
    rng = np.random.default_rng(1)
    events = {f"x{i}": rng.standard_normal(300).astype(np.float32) for i in range(4)}
    events["n"] = np.arange(300, dtype=np.int32)
    path = tmp_path / "small.root"
    with uproot.recreate(path) as f:
        f.mktree("events", {k: v.dtype for k, v in events.items()}).extend(events)
    return path


def _run(model: Path, tree_file: Path, *extra: str, columns=("x0", "x1", "x2", "x3")) -> list[str]:
    return ["run", str(model), str(tree_file), "events", *columns, "--threads", "2", *extra]


def test_run_reports_and_writes(mlp_file, small_tree, tmp_path, capsys):
    """Summary printed, snapshot written with the output next to the inputs, plot saved: one event loop."""
    out, png = tmp_path / "scored.root", tmp_path / "plots" / "dnn.png"
    assert main(_run(mlp_file, small_tree, "--name", "dnn", "--output", str(out), "--plot", str(png))) == 0
    text = capsys.readouterr().out
    assert "events:   300" in text and "events/s" in text and "mean" in text
    assert png.stat().st_size > 0

    tree = uproot.open(out)["events"]
    assert {"x0", "x3", "dnn"} <= set(tree.keys()) and tree.num_entries == 300
    cols = tree.arrays(["x0", "x1", "x2", "x3", "dnn"], library="np")
    x = np.stack([cols[f"x{i}"] for i in range(4)], axis=1)
    expected = sr.compile(sr.load(mlp_file)).infer(x)  # two outputs per event: dnn is an RVec<float>
    got = np.stack([np.asarray(v) for v in cols["dnn"]])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_run_scalar_output_stats(tmp_path, small_tree, capsys):
    """A one-value output: the printed statistics are those of the column."""
    rng = np.random.default_rng(2)
    w = rng.standard_normal((4, 1)).astype(np.float32)
    nodes = [helper.make_node("MatMul", ["x", "W"], ["y"])]
    model = make_model(nodes, [("x", np.float32, ["N", 4])], [("y", np.float32, ["N", 1])], {"W": w}, name="lin")
    path = save(model, tmp_path / "lin.onnx")
    assert main(_run(path, small_tree, "--threads", "1")) == 0
    cols = uproot.open(small_tree)["events"].arrays(["x0", "x1", "x2", "x3"], library="np")
    y = np.stack([cols[f"x{i}"] for i in range(4)], axis=1) @ w
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("score:"))
    printed = {k: float(v) for k, v in re.findall(r"(mean|std|min|max) ([-+0-9.e]+)", line)}
    expected = {"mean": y.mean(), "std": y.std(ddof=1), "min": y.min(), "max": y.max()}
    assert printed == pytest.approx(expected, rel=1e-4, abs=1e-5)


@pytest.mark.parametrize("case, message", [
    ("tree", "no tree 'nope'"),
    ("column", "no column(s) x9"),
    ("file", "no such file"),
    ("count", "takes 4 values per event"),
])
def test_run_errors_are_one_line(mlp_file, small_tree, tmp_path, capsys, case, message):
    args = _run(mlp_file, small_tree)
    if case == "tree":
        args[3] = "nope"
    elif case == "column":
        args = _run(mlp_file, small_tree, columns=("x0", "x1", "x2", "x9"))
    elif case == "file":
        args[2] = str(tmp_path / "missing.root")
    else:  # three values per event for a model that takes four: caught before the event loop
        args = _run(mlp_file, small_tree, columns=("x0", "x1", "x2"))
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err.startswith("sofie-rdf run: error:") and message in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
