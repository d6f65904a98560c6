"""TfIdfVectorizer (opset 9): n-gram counts of integer token sequences, optionally IDF-weighted.

The pool of n-grams is an attribute, so the lookup tables are built when the code is generated: per
n-gram length, the pooled n-grams sorted for binary search, with their output columns.  Only integer
tokens (int32/int64 input, ``pool_int64s``) are supported: string tensors are out of scope for the
generated code.  As in onnxruntime, every n-gram found adds its weight (1 in TF mode) to its column, or
in IDF mode sets the column to it (so columns shared by n-grams hold the last one found); unigrams are
counted once whatever the skip.  (onnx.reference instead weighs by output column, which differs only
when ngram_indexes is not the identity.)
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from ..ir import TensorType
from .base import Op
from .registry import register

_MODES = ("TF", "IDF", "TFIDF")
_TOKEN_TYPES = (np.dtype(np.int32), np.dtype(np.int64))


@register
class TfIdfVectorizer(Op):
    """Y[row, ngram_indexes[i]] = count (TF), presence (IDF) or count (TFIDF) of pooled n-gram i, times its weight."""

    op_type = "TfIdfVectorizer"
    since_version = 9

    def settings(self) -> tuple[str, int, int, int, list[float]]:
        """(mode, min length, max length, max skip, weights), checked."""
        mode = self.attrs.get("mode")
        if mode not in _MODES:
            raise self.error(f"mode {mode!r} is not one of {', '.join(_MODES)}")
        if self.attrs.get("pool_strings"):
            raise self.error("pool_strings is not supported: string tensors are out of scope, use pool_int64s")
        lengths = [self.attrs.get(k) for k in ("min_gram_length", "max_gram_length", "max_skip_count")]
        if any(v is None for v in lengths) or not 1 <= lengths[0] <= lengths[1] or lengths[2] < 0:
            raise self.error(f"min_gram_length, max_gram_length and max_skip_count {lengths} must be given, "
                             "with 1 <= min <= max and skip >= 0")
        return mode, int(lengths[0]), int(lengths[1]), int(lengths[2]), [float(w) for w in self.attrs.get("weights") or []]

    def table(self) -> tuple[dict[int, dict[tuple[int, ...], int]], list[int], list[float]]:
        """Per length n in [min, max]: pooled n-gram -> its ordinal in the pool; the ordinals' columns and weights."""
        _, min_n, max_n, _, weights = self.settings()
        pool = [int(v) for v in self.attrs.get("pool_int64s") or []]
        starts = [int(v) for v in self.attrs.get("ngram_counts") or []]
        columns = [int(v) for v in self.attrs.get("ngram_indexes") or []]
        if not pool or not columns or min(columns) < 0:
            raise self.error("pool_int64s and non-negative ngram_indexes must be given")
        if weights and len(weights) != len(columns):
            raise self.error(f"weights has {len(weights)} entries, ngram_indexes {len(columns)}: they must match")
        table: dict[int, dict[tuple[int, ...], int]] = {n: {} for n in range(min_n, max_n + 1)}
        ordinal = 0
        for size, start in enumerate(starts, start=1):
            end = starts[size] if size < len(starts) else len(pool)
            for j in range(max(end - start, 0) // size):
                if ordinal >= len(columns):
                    raise self.error(f"ngram_indexes has {len(columns)} entries, fewer than the pool's n-grams")
                if size in table:
                    table[size][tuple(pool[start + j * size:start + (j + 1) * size])] = ordinal
                ordinal += 1
        return table, columns, weights or [1.0] * len(columns)

    def infer(self, inputs: list[Optional[TensorType]]) -> list[TensorType]:
        x = inputs[0]
        if x.dtype not in _TOKEN_TYPES:
            raise self.error(f"X must be int32 or int64 tokens (string tensors are out of scope), got {x.dtype}")
        if x.rank > 2:
            raise self.error(f"X must be [C] or [N, C], got shape {x.shape}")
        out_size = max(self.table()[1]) + 1
        return [TensorType(np.float32, (x.shape[0], out_size) if x.rank == 2 else (out_size,))]

    def evaluate(self, values: list[Optional[np.ndarray]]) -> list[np.ndarray]:
        mode, min_n, max_n, max_skip, _ = self.settings()
        table, columns, weights = self.table()
        x = np.asarray(values[0])
        rows = x.reshape(-1, x.shape[-1] if x.ndim else 1).astype(np.int64).tolist()
        y = np.zeros((len(rows), max(columns) + 1), np.float32)
        for r, row in enumerate(rows):
            smallest = min_n
            for skip in range(1, max_skip + 2):
                if smallest > max_n:
                    break
                for start in range(len(row)):
                    for n in range(smallest, max_n + 1):
                        k = table[n].get(tuple(row[start:start + skip * (n - 1) + 1:skip]), -1)
                        if k >= 0 and start + skip * (n - 1) < len(row):
                            w = 1.0 if mode == "TF" else weights[k]
                            y[r, columns[k]] = w if mode == "IDF" else y[r, columns[k]] + w
                smallest = max(smallest, 2)
        return [y if x.ndim == 2 else y.reshape(-1)]
