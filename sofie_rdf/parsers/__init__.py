"""Front ends: each turns a model file or object into an :class:`~sofie_rdf.ir.Model`."""
