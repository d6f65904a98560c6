"""``python -m benchmarks [--quick]``: every benchmark, one after the other.

``--quick`` is a short smoke run (10^5 events, a few small models, short
measurements) whose tables go to ``benchmarks/results/quick/``, leaving the
full results alone.  The published taggers (``benchmarks.real``, and ``benchmarks.compile_cost`` in a full
run) run where their files were fetched.
"""

from __future__ import annotations

import argparse
from typing import Optional

from . import (
    batches,
    build_paths,
    cold_start,
    columnar,
    compile_cost,
    gnn,
    hep_latency,
    latency,
    quantized,
    rdf_throughput,
    real,
    shipped,
    trees,
)

QUICK_EVENTS = 10**5


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short run; results in benchmarks/results/quick/")
    args = parser.parse_args(argv)
    if args.quick:
        rdf_throughput.main(["--events", str(QUICK_EVENTS), "--results", str(latency.RESULTS / "quick")])
        columnar.main(["--events", str(QUICK_EVENTS), "--results", str(latency.RESULTS / "quick")])
        gnn.main(["--results", str(latency.RESULTS / "quick")])
        latency.main(["--quick"])
        hep_latency.main(["--quick"])
        cold_start.main(["--runs", "1", "--results", str(latency.RESULTS / "quick")])
        shipped.main(["--quick"])
        trees.main(["--quick"])
        quantized.main(["--quick"])
        batches.main(["--quick"])
        build_paths.main(["--models", "higgs_model_dense,DeepSets_64p", "--rounds", "3",
                          "--out", str(latency.RESULTS / "quick")])
        _published(["--quick"])
    else:
        rdf_throughput.main([])
        columnar.main([])
        gnn.main([])
        latency.main([])
        hep_latency.main([])
        hep_latency.main(["--offgrid"])
        cold_start.main([])
        shipped.main([])
        trees.main([])
        quantized.main([])
        batches.main([])
        build_paths.main([])
        _published([])


def _published(argv: list[str]) -> None:
    """The taggers CMS publishes (benchmarks/real.py), where they were fetched: they are never in this repository."""
    missing = [t.path for t in real.TAGGERS if not (real.models_dir() / t.path).is_file()]
    if missing:
        print(f"benchmarks.real skipped: {len(missing)} published model file(s) not in {real.models_dir()} "
              f"(python -m benchmarks.real --fetch github)")
        return
    real.main(argv)
    if not argv:  # what building the big taggers costs, road by road (fresh processes, minutes)
        compile_cost.main([])


if __name__ == "__main__":
    main()
