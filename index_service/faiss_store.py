"""The embedded store (`--store faiss`, the default): the catalog, its FAISS index, its TF-IDF
model and its write-ahead log, all inside this process (snapshot.py, writes.py, compaction.py;
opened by startup.py).

A view is one immutable Snapshot: a call reads it alone, never waits for a writer and never sees
half of a write. Ranking keys are catalog rows; ties and ListProducts follow catalog order.

ListProducts page tokens: "p2:<build id>:<row>", the first row of the next page in that build.
Rows are stable within a build; a token of an earlier build is carried over by the row maps
compaction records (Snapshot.row_from), or refused with FAILED_PRECONDITION (start the listing
again) when the snapshot has no map from its build. A token of the older form "p1:<row>" (no
build named) is read as before: a row of the build served now. A row past the end of the catalog
is an empty last page.
"""
from __future__ import annotations

import re

import numpy as np

from servekit.errors import FailedPrecondition, NotFound

from .compaction import Compactor
from .filters import FilterSpec, allowed_mask
from .row_maps import MAX_ROW_MAPS
from .snapshot import ServedState, Snapshot
from .store import (ProductPage, Ranked, Store, StoreView, WriteResult, decode_page_token,
                    encode_page_token, no_products_message)
from .wal import WriteAheadLog
from .writes import CatalogWriter

# After "p": "1:<row>" (a row of the build served now) or "2:<build id>:<row>"; build ids are
# artifacts.write_build's (time and hex digits); at most 40 digits of row (int() stays cheap).
_TOKEN_PREFIX = "p"
_TOKEN = re.compile(r"1:([0-9]{1,40})|2:([0-9A-Za-z-]{0,64}):([0-9]{1,40})")
UNMAPPABLE_TOKEN = ("page_token belongs to an earlier build of the catalog that this server can "
                    "no longer map to the one it serves (rebuilt since, or more than "
                    f"{MAX_ROW_MAPS} compactions ago): start the listing again with an empty "
                    "page_token")


def start_row(snap: Snapshot, page_token: str) -> int:
    """The row of `snap` where the page of `page_token` starts (at most len(snap.catalog): a row
    past the end is an empty last page); InvalidArgument for a token this store did not issue,
    FailedPrecondition for one of a build `snap` cannot map."""
    if not page_token:
        return 0
    match = _TOKEN.fullmatch(decode_page_token(_TOKEN_PREFIX, page_token, _TOKEN.fullmatch))
    if match[1] is not None:
        row = int(match[1])
    else:
        row = snap.row_from(match[2], int(match[3]))
        if row is None:
            raise FailedPrecondition(UNMAPPABLE_TOKEN)
    return min(row, len(snap.catalog))


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
        snap = self.snap
        start = start_row(snap, page_token)
        if snap.live is None:
            rows = np.arange(start, min(start + page_size + 1, len(snap.catalog)))
        else:
            rows = np.flatnonzero(snap.live[start:])[:page_size + 1] + start
        more = len(rows) > page_size
        rows = rows[:page_size]
        token = (encode_page_token(_TOKEN_PREFIX, f"2:{snap.build_id}:{int(rows[-1]) + 1}")
                 if more else "")
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
