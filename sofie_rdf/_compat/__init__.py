"""The machinery of :mod:`sofie_rdf.compat` (SOFIE's Python and C++ names over sofie-rdf), importable without
the side effect of making those names resolve in ROOT, which only ``import sofie_rdf.compat`` has."""
