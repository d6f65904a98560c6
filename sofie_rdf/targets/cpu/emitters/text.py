"""CPU emitters of the operators in :mod:`sofie_rdf.ops.text`."""

from __future__ import annotations

import numpy as np

from ....ops import text as text_ops
from ..._cxx.context import NodeContext
from ..emitter import Emitter, emits


@emits(text_ops.TfIdfVectorizer)
class TfIdfVectorizerEmitter(Emitter):
    """The CPU code of :class:`~sofie_rdf.ops.text.TfIdfVectorizer`."""

    kernels = ("text",)

    def emit(self, ctx: NodeContext) -> str:
        mode, min_n, max_n, max_skip, given = self.op.settings()
        table, columns, weights = self.op.table()
        x = ctx.inputs[0]
        rows = ctx.dim(x.shape[0]) if x.rank == 2 else "1"
        row_size = ctx.dim(x.shape[-1]) if x.rank else "1"
        grams = [sorted(table.get(n, {}).items()) for n in range(max_n + 1)]
        begin, first = np.cumsum([0] + [n * len(g) for n, g in enumerate(grams)]), np.cumsum([0] + [len(g) for g in grams])
        entries = [k for g in grams for _, k in g]
        tokens = ctx.array("pool", [t for g in grams for gram, _ in g for t in gram], "int64_t")
        tables = ", ".join(ctx.array(label, values) for label, values in (
            ("begin", begin[:-1].tolist()), ("count", [len(g) for g in grams]), ("first", first[:-1].tolist()),
            ("columns", [columns[k] for k in entries])))
        weighted = mode != "TF" and bool(given) and bool(entries)  # no entries: nothing to weigh
        call = (f"kernels::tfidf({ctx.x(0)}, {rows}, {row_size}, {tokens}, {tables}, {'weights' if weighted else 'nullptr'}, "
                f"{min_n}, {max_n}, {max_skip}, {'true' if mode == 'IDF' else 'false'}, {ctx.y(0)}, {max(columns) + 1});")
        if not weighted:
            return call
        values = ", ".join(ctx.literal(weights[k], np.float32) for k in entries)
        return f"{{\n   const float weights[] = {{{values}}};\n   {call}\n}}"
