"""``python -m benchmarks``: every benchmark, one after the other."""

from __future__ import annotations

from . import rdf_throughput


def main() -> None:
    rdf_throughput.main()


if __name__ == "__main__":
    main()
