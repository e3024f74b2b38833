"""Exact top-k of inner products over a subset of rows, in bounded-memory chunks (numpy)."""
from __future__ import annotations

import numpy as np

CHUNK_ROWS = 65536


def exact_topk(vectors: np.ndarray, rows: np.ndarray | None, queries: np.ndarray,
               k: int) -> tuple[np.ndarray, np.ndarray]:
    """(scores, rows), each (n_queries, min(k, len(rows))), best first; ties by row order.
    rows None: every row of `vectors`, read in place (slices, no gathered copy)."""
    n = len(vectors) if rows is None else len(rows)
    k = min(k, n)
    best_scores = np.empty((len(queries), 0), dtype=np.float32)
    best_rows = np.empty((len(queries), 0), dtype=np.int64)
    for start in range(0, n, CHUNK_ROWS):
        stop = min(n, start + CHUNK_ROWS)
        if rows is None:
            chunk, chunk_vectors = np.arange(start, stop), vectors[start:stop]
        else:
            chunk = rows[start:stop]
            chunk_vectors = vectors[chunk]
        scores = queries @ np.asarray(chunk_vectors, dtype=np.float32).T
        if scores.shape[1] > k:  # the chunk's own top k first: no row ids for the whole chunk
            keep = np.argpartition(-scores, k - 1, axis=1)[:, :k]
            scores, found = np.take_along_axis(scores, keep, axis=1), chunk[keep]
        else:
            found = np.broadcast_to(chunk, scores.shape)
        best_scores = np.concatenate([best_scores, scores], axis=1)
        best_rows = np.concatenate([best_rows, found], axis=1)
        if best_scores.shape[1] > k:
            keep = np.argpartition(-best_scores, k - 1, axis=1)[:, :k]
            best_scores = np.take_along_axis(best_scores, keep, axis=1)
            best_rows = np.take_along_axis(best_rows, keep, axis=1)
    order = np.lexsort((best_rows, -best_scores), axis=1) if k else np.empty((len(queries), 0), int)
    return (np.take_along_axis(best_scores, order, axis=1).astype(np.float32),
            np.take_along_axis(best_rows, order, axis=1))
