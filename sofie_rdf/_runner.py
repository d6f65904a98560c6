"""``sofie-rdf run``: a model over every event of a TTree, with RDataFrame, in one event loop.

Everything the command reports (count, summary statistics, the optional
snapshot and histogram) is booked lazily on the same RDataFrame graph, so the
file is read once whatever is asked for.  The functions here return plain
values and leave the printing to :mod:`sofie_rdf.cli`.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

from . import _root, rdf
from .errors import SofieError

HIST_BINS = 100


@dataclass(frozen=True)
class RunResult:
    """What one ``run`` measured: events, wall time of the event loop, statistics of the output."""

    events: int
    seconds: float
    setup_seconds: float
    threads: int
    mean: float
    std: float
    minimum: float
    maximum: float
    snapshot: Optional[Path] = None
    plot: Optional[Path] = None

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else math.inf


def configure_threads(threads: int) -> int:
    """Set ROOT's implicit multi-threading: 0 = all cores, 1 = sequential; returns the slots used.

    Must happen before the RDataFrame is built: its number of slots is fixed then.
    """
    ROOT = _root.root()
    if threads < 0:
        raise SofieError(f"--threads must be >= 0, got {threads}")
    if threads == 1:
        if ROOT.IsImplicitMTEnabled():
            ROOT.DisableImplicitMT()
        return 1
    if ROOT.IsImplicitMTEnabled() and threads not in (0, ROOT.GetThreadPoolSize()):
        ROOT.DisableImplicitMT()  # a different pool size was asked for than the running one
    if not ROOT.IsImplicitMTEnabled():
        ROOT.EnableImplicitMT(threads)
    return max(1, ROOT.GetThreadPoolSize())


def open_tree(path: str, tree: str) -> Any:
    """``RDataFrame(tree, path)`` with a clean error for a missing file or tree (ROOT would throw deep inside)."""
    ROOT = _root.root()
    if "://" not in path and not Path(path).is_file():
        raise SofieError(f"no such file: {path}")
    f = ROOT.TFile.Open(path)
    if not f or f.IsZombie():
        raise SofieError(f"cannot open {path} as a ROOT file")
    found = f.Get(tree)
    if not found or not found.InheritsFrom("TTree"):
        names = [k.GetName() for k in f.GetListOfKeys() if k.GetClassName() in ("TTree", "TNtuple")]
        f.Close()
        raise SofieError(f"{path} has no tree {tree!r} (trees: {', '.join(names) or 'none'})")
    f.Close()
    return ROOT.RDataFrame(tree, path)


def check_columns(df: Any, columns: Sequence[str]) -> None:
    """Every column exists: one message listing all missing ones, with what is there."""
    have = {str(c) for c in df.GetColumnNames()}
    missing = [c for c in columns if c not in have]
    if missing:
        raise SofieError(f"no column(s) {', '.join(missing)} in the tree (columns: {', '.join(sorted(have))})")


def add_progress_bar(df: Any) -> bool:
    """ROOT's progress bar on ``df`` when this ROOT has one (6.30+); False otherwise."""
    ROOT = _root.root()
    adder = getattr(getattr(ROOT.RDF, "Experimental", None), "AddProgressBar", None)
    if adder is None:
        return False
    adder(ROOT.RDF.AsRNode(df))
    return True


def run_tree(model: Any, path: str, tree: str, columns: Sequence[str], *, name: str = "score",
             threads: int = 0, output: Optional[str] = None, plot: Optional[str] = None,
             progress: Optional[bool] = None) -> RunResult:
    """Define ``name`` = model(columns) on ``tree`` and run one event loop for everything asked.

    ``progress``: None shows ROOT's bar only when stdout is a terminal (in a
    log file it would only add a summary line).
    """
    setup = time.perf_counter()
    slots = configure_threads(threads)
    df = open_tree(path, tree)
    check_columns(df, columns)
    if name in {str(c) for c in df.GetColumnNames()}:
        raise SofieError(f"the tree already has a column {name!r}: choose another --name")
    node = rdf.define(df, name, model, list(columns))
    booked = _book(node, name, tree, list(columns), output, plot)
    if progress if progress is not None else sys.stdout.isatty():
        add_progress_bar(node)  # after booking: the bar's clock starts here, its rates are the loop's
    start = time.perf_counter()
    setup_seconds = start - setup
    try:
        events = int(booked["count"].GetValue())  # runs the one event loop for every booked result
    except Exception as exc:  # a C++ exception from the model (e.g. wrong number of values) reaches here
        raise SofieError(f"event loop failed: {' '.join(str(exc).split())}") from None
    seconds = time.perf_counter() - start
    stats = booked["stats"].GetValue()
    plot_path = None
    if plot:
        hist = booked["hist"].GetValue()
        # RDataFrame's automatic axis can reach well past the largest value: show the filled part.
        hist.GetXaxis().SetRangeUser(stats.GetMin(), stats.GetMax())
        plot_path = save_histogram(hist, plot, name, path, tree)
    return RunResult(events, seconds, setup_seconds, slots, stats.GetMean(), stats.GetRMS(), stats.GetMin(),
                     stats.GetMax(), snapshot=Path(output) if output else None, plot=plot_path)


def _book(node: Any, name: str, tree: str, columns: list[str], output: Optional[str],
          plot: Optional[str]) -> dict[str, Any]:
    """Lazy results on ``node``: count, statistics of ``name``, and the optional snapshot and histogram.

    Typed by the output's column type, so Cling compiles them here, before the
    loop, rather than inside it: the event-loop time is then the work itself.
    """
    ROOT = _root.root()
    kind = str(node.GetColumnType(name))  # float, or ROOT::VecOps::RVec<float> for a multi-value output
    booked = {"count": node.Count(), "stats": node.Stats[kind](name)}  # TStatistic: mean, RMS, min, max
    if output:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        opts = ROOT.RDF.RSnapshotOptions()
        opts.fLazy = True
        booked["snapshot"] = node.Snapshot(tree, output, columns + [name], opts)
    if plot:
        # Equal axis limits: RDataFrame buffers the values and picks the range itself.
        booked["hist"] = node.Histo1D[kind](ROOT.RDF.TH1DModel(f"h_{name}", "", HIST_BINS, 0.0, 0.0), name)
    return booked


def save_histogram(hist: Any, plot: str, name: str, path: str, tree: str) -> Path:
    """PNG (or any format ROOT knows from the extension) of the output's distribution."""
    ROOT = _root.root()
    out = Path(plot)
    out.parent.mkdir(parents=True, exist_ok=True)
    canvas = ROOT.TCanvas(f"c_{name}", name, 800, 600)
    hist.SetTitle(f"{name} on {Path(path).name}:{tree};{name};events")
    hist.SetLineColor(ROOT.kAzure + 2)
    hist.SetFillColorAlpha(ROOT.kAzure + 1, 0.35)
    hist.SetLineWidth(2)
    hist.SetStats(False)
    hist.Draw("hist")
    quiet, ROOT.gErrorIgnoreLevel = ROOT.gErrorIgnoreLevel, ROOT.kWarning  # no "Info: file created" line
    try:
        canvas.SaveAs(str(out))
    finally:
        ROOT.gErrorIgnoreLevel = quiet
    return out
