"""Benchmarks of sofie-rdf; ``python -m benchmarks`` runs them all and writes ``benchmarks/results/``."""
