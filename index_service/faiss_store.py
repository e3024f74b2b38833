"""The embedded store (`--store faiss`, the default): the catalog, its FAISS index, its TF-IDF
model and its write-ahead log, all inside this process (snapshot.py, writes.py, compaction.py;
opened by startup.py).

A view is one immutable Snapshot: a call reads it alone, never waits for a writer and never sees
half of a write. Ranking keys are catalog rows; ties and ListProducts follow catalog order.
"""
from __future__ import annotations

import numpy as np

from servekit.errors import NotFound

from .compaction import Compactor
from .filters import FilterSpec, allowed_mask
from .snapshot import ServedState, Snapshot
from .store import (ProductPage, Ranked, Store, StoreView, WriteResult, decode_page_token,
                    encode_page_token, no_products_message)
from .wal import WriteAheadLog
from .writes import CatalogWriter

_TOKEN_PREFIX = "p1:"


def is_row_number(value: str) -> bool:
    """ASCII digits only: str.isdigit() alone also takes "²" (which int() refuses) and other
    scripts' digits, none of which a token of ours holds."""
    return value.isascii() and value.isdigit()


class FaissView(StoreView):
    def __init__(self, snapshot: Snapshot):
        self.snap = snapshot
        self._masks: dict[FilterSpec, np.ndarray | None] = {}

    def _allowed(self, spec: FilterSpec) -> np.ndarray | None:
        if spec not in self._masks:
            self._masks[spec] = allowed_mask(self.snap.catalog, spec, self.snap.live)
        return self._masks[spec]

    def _row(self, product_id: str) -> int:
        row = self.snap.row_of(product_id)
        if row is None:
            raise NotFound(no_products_message([product_id]))
        return row

    def size_hint(self, spec: FilterSpec) -> int:
        allowed = self._allowed(spec)
        return self.snap.product_count if allowed is None else int(allowed.sum())

    def vector_ranking(self, vector, depth, spec, overrides, exclude_ids=()) -> Ranked:
        allowed = self._allowed(spec)
        excluded = [row for row in map(self.snap.row_of, exclude_ids) if row is not None]
        if excluded and allowed is not None:
            allowed = allowed.copy()
            allowed[excluded] = False
            excluded = []
        # len(excluded) more hits, then drop the excluded products themselves
        scores, rows = self.snap.vectors.search(vector[None, :], depth + len(excluded), allowed,
                                                overrides)
        scores, rows = scores[0], rows[0]
        keep = (rows >= 0) & ~np.isin(rows, excluded)
        return Ranked(rows[keep][:depth], scores[keep][:depth])

    def lexical_ranking(self, text, depth, spec, *, matches_only) -> Ranked:
        allowed = self._allowed(spec)
        if matches_only:
            scores, rows = self.snap.lexical.rank(text, allowed_rows=allowed, depth=depth)
        else:  # MODE_LEXICAL pads a short list with rows scoring 0, in catalog order
            scores, rows = self.snap.lexical.search(text, depth, allowed_rows=allowed)
        return Ranked(rows, scores)

    def vectors_of(self, product_ids: list[str]) -> np.ndarray:
        rows = [self.snap.row_of(pid) for pid in product_ids]
        unknown = [pid for pid, row in zip(product_ids, rows) if row is None]
        if unknown:
            raise NotFound(no_products_message(unknown))
        return np.stack([self.snap.vectors.vector(row) for row in rows])

    def products(self, keys) -> list[dict]:
        product = self.snap.catalog.product
        return [product(int(row)) for row in np.asarray(keys).tolist()]

    def product(self, product_id: str) -> dict:
        return self.snap.catalog.product(self._row(product_id))

    def page(self, page_size: int, page_token: str) -> ProductPage:
        start = int(decode_page_token(_TOKEN_PREFIX, page_token, is_row_number)) if page_token else 0
        snap = self.snap
        n = len(snap.catalog)
        if snap.live is None:
            rows = np.arange(min(start, n), min(start + page_size + 1, n))
        else:
            rows = np.flatnonzero(snap.live[start:])[:page_size + 1] + start
        more = len(rows) > page_size
        rows = rows[:page_size]
        token = encode_page_token(_TOKEN_PREFIX, str(int(rows[-1]) + 1)) if more else ""
        return ProductPage(self.products(rows), token, snap.product_count)


class FaissStore(Store):
    """The served snapshot, its writer (write-ahead log, then a new snapshot) and compaction."""

    name = "faiss"

    def __init__(self, state: ServedState, writer: CatalogWriter, wal: WriteAheadLog,
                 compactor: Compactor):
        self.state, self.writer, self.wal, self.compactor = state, writer, wal, compactor

    @property
    def dimension(self) -> int:
        return self.state.snapshot.vectors.dimension

    def view(self) -> FaissView:
        return FaissView(self.state.snapshot)

    def upsert(self, products, vectors) -> WriteResult:
        upserted, count, seq = self.writer.upsert(products, vectors)
        return WriteResult(upserted, count, seq)

    def delete(self, product_ids) -> WriteResult:
        deleted, not_found, count, seq = self.writer.delete(product_ids)
        return WriteResult(deleted, count, seq, tuple(not_found))

    def stats(self) -> dict:
        snap = self.state.snapshot
        m = snap.manifest
        return {"product_count": snap.product_count, "dimension": snap.vectors.dimension,
                "model_name": m["model_name"], "index_type": m["index_type"],
                "catalog_sha256": m["catalog_sha256"], "built_at": m["built_at"],
                "wal_sequence": snap.sequence,
                "lexical_vocabulary_size": snap.lexical.vocabulary_size,
                "catalog_format": m.get("catalog_format", "csv"),
                "csv_delimiter": m.get("csv_delimiter", ",")}

    def start(self) -> None:
        self.compactor.start()

    def close(self) -> None:
        """Compact what the log holds (the next start replays nothing), then close the log."""
        self.compactor.stop(final=True)
        self.wal.close()
