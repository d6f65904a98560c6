"""``python -m benchmarks [--quick]``: every benchmark, one after the other.

``--quick`` is a short smoke run (10^5 events, a few small models, short
measurements) whose tables go to ``benchmarks/results/quick/``, leaving the
full results alone.
"""

from __future__ import annotations

import argparse
from typing import Optional

from . import cold_start, columnar, gnn, hep_latency, latency, quantized, rdf_throughput, shipped, trees

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


if __name__ == "__main__":
    main()
