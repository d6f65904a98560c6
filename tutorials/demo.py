"""sofie-rdf demo (``make demo``): a Higgs classifier from ONNX to C++ and back to numpy.

Steps: load ``data/higgs_model.onnx``, show what it takes and gives, write its
standalone C++ header, JIT-compile it with Cling, score the events of
``data/higgs_sample.root`` (read with uproot), check the scores against
onnxruntime, and time the compiled model.  Exits with status 1 if the two
disagree, so the test suite can run it as a check.

    python tutorials/demo.py [--outdir DIR]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import uproot

import sofie_rdf as sr

ROOT_DIR = Path(__file__).resolve().parent.parent
MODEL = ROOT_DIR / "data" / "higgs_model.onnx"
SAMPLE = ROOT_DIR / "data" / "higgs_sample.root"
FEATURES = ("m_jj", "m_jjj", "m_lv", "m_jlv", "m_bb", "m_wbb", "m_wwbb")  # model input order
RTOL, ATOL = 1e-5, 1e-6
LATENCY_EVENTS = 2000  # events scored one call each for the batch-1 latency


def section(title: str) -> None:
    """Visible separation between the demo's steps."""
    print(f"\n== {title} " + "=" * max(0, 66 - len(title)))


def read_events(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """All events of both trees as an (n, 7) float32 matrix, plus 1/0 labels (signal/background)."""
    blocks, labels = [], []
    with uproot.open(path) as f:
        for tree, label in (("sig_tree", 1), ("bkg_tree", 0)):
            columns = f[tree].arrays(list(FEATURES), library="np")
            blocks.append(np.stack([columns[k] for k in FEATURES], axis=1).astype(np.float32))
            labels.append(np.full(len(blocks[-1]), label))
    return np.concatenate(blocks), np.concatenate(labels)


def infer_excerpt(header: Path, lines: int = 14) -> str:
    """The first lines of the Session's allocation-free ``infer``: what the generated C++ looks like."""
    text = header.read_text().splitlines()
    start = next(i for i, line in enumerate(text) if line.lstrip().startswith("void infer("))
    return "\n".join(text[start:start + lines])


def onnxruntime_scores(x: np.ndarray) -> np.ndarray:
    """Reference scores from onnxruntime, single-threaded like our Session."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(MODEL), opts, providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def time_latency(sess: sr.Session, x: np.ndarray) -> float:
    """Mean seconds per ``sess.infer`` call on one event (Python call overhead included)."""
    rows = [x[i:i + 1] for i in range(min(LATENCY_EVENTS, len(x)))]
    sess.infer(rows[0])  # warm-up: first call sizes the arena
    start = time.perf_counter()
    for row in rows:
        sess.infer(row)
    return (time.perf_counter() - start) / len(rows)


def time_throughput(sess: sr.Session, x: np.ndarray, repeats: int = 5) -> float:
    """Events per second scoring the whole sample in one call (best of ``repeats``)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        sess.infer(x)
        best = min(best, time.perf_counter() - start)
    return len(x) / best


def main(argv: list[str] | None = None) -> int:
    """Run the demo; returns 0 when sofie-rdf agrees with onnxruntime."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outdir", type=Path, default=ROOT_DIR / "out" / "demo", help="where the header is written")
    args = parser.parse_args(argv)

    section("1. Load the ONNX model")
    model = sr.load(MODEL)
    print(model.summary())

    section("2. Generate the standalone C++ header")
    files = model.generate(args.outdir)
    print(f"header:  {files.header}\nweights: {files.weights}\nnamespace {files.namespace}, first lines of infer:\n")
    print(infer_excerpt(files.header))
    print("   ...")

    section("3. JIT-compile with Cling")
    start = time.perf_counter()
    sess = sr.compile(model, backend="jit")
    print(f"compiled in {time.perf_counter() - start:.2f} s (cached by content hash for the rest of the process)")

    section("4. Score the events of the ROOT file")
    x, labels = read_events(SAMPLE)
    ours = sess.infer(x)
    accuracy = np.mean((ours[:, 0] > 0.5) == (labels == 1))
    print(f"{len(x)} events from {SAMPLE.name}: input {x.shape} {x.dtype} -> scores {ours.shape}")
    print(f"mean score: signal {ours[labels == 1].mean():.3f}, background {ours[labels == 0].mean():.3f}; "
          f"accuracy at 0.5: {accuracy:.3f} (training events included)")

    section("5. Compare with onnxruntime")
    ref = onnxruntime_scores(x)
    diff = float(np.max(np.abs(ours - ref)))
    same_class = int(np.sum((ours > 0.5) == (ref > 0.5)))
    agree = np.allclose(ours, ref, rtol=RTOL, atol=ATOL)
    print(f"max |sofie-rdf - onnxruntime| = {diff:.3g}")
    print(f"same class (score > 0.5) for {same_class}/{len(x)} events")
    print(f"agreement within rtol={RTOL}, atol={ATOL}: {'yes' if agree else 'NO'}")

    section("6. Timing (JIT backend, this machine, one thread)")
    latency = time_latency(sess, x)
    print(f"batch 1 (one Python call per event, {min(LATENCY_EVENTS, len(x))} events): {latency * 1e6:.1f} us/event")
    print(f"whole sample in one call ({len(x)} events): {time_throughput(sess, x):,.0f} events/s")
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
