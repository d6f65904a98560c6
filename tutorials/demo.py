"""sofie-rdf demo (``make demo``): a Higgs classifier run with RDataFrame on every event, on all cores.

Steps: load ``data/higgs_model.onnx`` and write its standalone C++ header;
open the signal and background trees of ``data/higgs_sample.root`` with
RDataFrame (implicit multi-threading); add the network output as a column
with ``sr.rdf.define`` (one compiled Session per thread); fill histograms of
it in one event loop and save them as a PNG; print the events/s of the loop;
compare every event's score with onnxruntime on the same inputs.  Exits with
status 1 if the two disagree, so the test suite can run it as a check.

    python tutorials/demo.py [--outdir DIR] [--threads N] [--repeat K]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import uproot

import sofie_rdf as sr

ROOT_DIR = Path(__file__).resolve().parent.parent
MODEL = ROOT_DIR / "data" / "higgs_model.onnx"
SAMPLE = ROOT_DIR / "data" / "higgs_sample.root"
FEATURES = ["m_jj", "m_jjj", "m_lv", "m_jlv", "m_bb", "m_wbb", "m_wwbb"]  # model input order
SAMPLES = {"signal": "sig_tree", "background": "bkg_tree"}
RTOL, ATOL = 1e-5, 1e-6
BINS = 40


def section(title: str) -> None:
    """Visible separation between the demo's steps."""
    print(f"\n== {title} " + "=" * max(0, 66 - len(title)))


def setup_root(threads: int) -> Any:
    """PyROOT in batch mode (no windows) with implicit multi-threading: 0 = all cores."""
    import ROOT

    ROOT.gROOT.SetBatch(True)
    ROOT.gErrorIgnoreLevel = ROOT.kWarning  # no "Info in <TCanvas::Print>" lines
    if threads != 1:
        ROOT.EnableImplicitMT(threads)
    return ROOT


def book(ROOT: Any, sess: sr.Session, tree: str, repeat: int) -> dict[str, Any]:
    """Lazy results for one tree: score histogram, and (entry, score) pairs for the comparison.

    The actions are typed (``[...]``) so Cling compiles them now, not inside
    the timed event loop.  ``rdfentry_`` is the entry number: with several
    threads the events arrive out of order, the entry puts them back.
    """
    df = ROOT.RDataFrame(tree, [str(SAMPLE)] * repeat)  # the sample read `repeat` times: a longer loop to time
    df = sr.rdf.define(df, "score", sess, FEATURES)     # DefineSlot: one Session per thread
    model = ROOT.RDF.TH1DModel(f"h_{tree}", "", BINS, 0.0, 1.0)
    return {"hist": df.Histo1D["float"](model, "score"),
            "entry": df.Take["ULong64_t"]("rdfentry_"),
            "score": df.Take["float"]("score")}


def plot(ROOT: Any, hists: dict[str, Any], path: Path) -> None:
    """Normalised score distributions of signal and background, with a legend, as a PNG."""
    ROOT.gStyle.SetOptStat(0)
    canvas = ROOT.TCanvas("c_score", "score", 800, 600)
    canvas.SetLeftMargin(0.12)
    styles = {"signal": (ROOT.kRed + 1, 3004), "background": (ROOT.kAzure + 2, 3005)}
    legend = ROOT.TLegend(0.35, 0.72, 0.65, 0.88)
    legend.SetBorderSize(0)
    top = 0.0
    for label, h in hists.items():
        color, fill = styles[label]
        h.Scale(1.0 / h.Integral())
        h.SetLineColor(color)
        h.SetLineWidth(2)
        h.SetFillColor(color)
        h.SetFillStyle(fill)
        legend.AddEntry(h, f"{label} ({SAMPLES[label]})", "f")
        top = max(top, h.GetMaximum())
    first = next(iter(hists.values()))
    first.SetTitle("Higgs classifier (sofie-rdf, RDataFrame);network output (signal probability);fraction of events")
    first.SetMaximum(1.15 * top)
    first.GetYaxis().SetTitleOffset(1.4)
    for i, h in enumerate(hists.values()):
        h.Draw("hist" if i == 0 else "hist same")
    legend.Draw()
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.SaveAs(str(path))


def onnxruntime_scores(tree: str) -> np.ndarray:
    """Reference scores of one tree: its columns read with uproot, run by onnxruntime."""
    import onnxruntime as ort

    with uproot.open(SAMPLE) as f:
        columns = f[tree].arrays(FEATURES, library="np")
    x = np.stack([columns[k] for k in FEATURES], axis=1).astype(np.float32)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(MODEL), opts, providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0][:, 0]


def compare(booked: dict[str, Any], tree: str) -> tuple[float, int, bool]:
    """Max |sofie-rdf - onnxruntime| over every event of the loop, events compared, all within tolerance."""
    ref = onnxruntime_scores(tree)
    entries = np.asarray(booked["entry"].GetValue(), dtype=np.int64)
    ours = np.asarray(booked["score"].GetValue(), dtype=np.float32)
    expected = ref[entries % len(ref)]  # entry k of the repeated sample is event k mod n of the file
    agree = len(ours) > 0 and np.allclose(ours, expected, rtol=RTOL, atol=ATOL)
    return float(np.max(np.abs(ours - expected))), len(ours), bool(agree)


def main(argv: list[str] | None = None) -> int:
    """Run the demo; returns 0 when sofie-rdf agrees with onnxruntime on every event."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outdir", type=Path, default=ROOT_DIR / "out" / "demo",
                        help="where the header and the plot are written (default: out/demo)")
    parser.add_argument("--threads", type=int, default=0, help="0: all cores (default), 1: no multi-threading")
    parser.add_argument("--repeat", type=int, default=10,
                        help="read the sample this many times, so the timed loop is long enough (default 10)")
    args = parser.parse_args(argv)
    ROOT = setup_root(args.threads)

    section("1. ONNX model -> C++ header -> compiled Session")
    model = sr.load(MODEL)
    print(f"{MODEL.name}: inputs {model.inputs}, outputs {model.outputs}")
    files = model.generate(args.outdir)
    print(f"header {files.header} (namespace {files.namespace}), weights {files.weights}")
    start = time.perf_counter()
    sess = sr.compile(model, backend="jit")
    print(f"declared to Cling (JIT) in {time.perf_counter() - start:.2f} s")

    section("2. RDataFrame: score column and histograms (lazy)")
    start = time.perf_counter()
    booked = {label: book(ROOT, sess, tree, args.repeat) for label, tree in SAMPLES.items()}
    print(f"{ROOT.GetThreadPoolSize() or 1} thread(s); df = sr.rdf.define(df, 'score', sess, {FEATURES})")
    print(f"graph built and compiled in {time.perf_counter() - start:.2f} s")

    section("3. Event loop (both trees at once)")
    start = time.perf_counter()
    ROOT.RDF.RunGraphs([b["hist"] for b in booked.values()])
    seconds = time.perf_counter() - start
    events = sum(len(b["score"].GetValue()) for b in booked.values())
    print(f"{events:,} events ({args.repeat} x {SAMPLE.name}) in {seconds:.3f} s: {events / seconds:,.0f} events/s")
    hists = {label: b["hist"].GetValue() for label, b in booked.items()}
    for label, h in hists.items():
        print(f"{label:>10}: mean score {h.GetMean():.3f}")
    png = args.outdir / "higgs_score.png"
    plot(ROOT, hists, png)
    print(f"plot: {png}")

    section("4. Agreement with onnxruntime, event by event")
    ok = True
    for label, tree in SAMPLES.items():
        diff, n, good = compare(booked[label], tree)
        ok &= good
        print(f"{label:>10}: {n:,} events, max |sofie-rdf - onnxruntime| = {diff:.3g} ({'ok' if good else 'MISMATCH'})")
    print(f"agreement within rtol={RTOL}, atol={ATOL}: {'yes' if ok else 'NO'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
