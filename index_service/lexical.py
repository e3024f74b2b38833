"""MODE_LEXICAL: the app's TF-IDF baseline, with exact filters, offset and min_score.

Interface::

    lex = LexicalIndex().fit(search_texts)            # one text per catalog row, in catalog order
    scores, rows = lex.search("blue metal table", k=5, allowed_rows=mask, offset=0, min_score=None)
    scores, rows = lex.rank("blue metal table", allowed_rows=mask, depth=1000)  # for hybrid
    lex.save(data_dir / "lexical.npz");  lex = LexicalIndex.load(data_dir / "lexical.npz")
    lex.vocabulary_size                                # Stats.lexical_vocabulary_size

Model: `TfidfVectorizer(min_df=2, ngram_range=(1, 2))` fitted on the products' search texts,
exactly as the app's baseline; rows are L2-normalized, so cosine similarity is a sparse dot
product (float64). `allowed_rows` is None (every row), a bool mask of length len(index), or an
array of row numbers; only those rows are ranked, so a filter is exact.

Ranking rules:
- `search` ranks every allowed row: best score first, ties in catalog order (lower row first).
  Rows sharing no term with the query score 0 and come after every positive score, in catalog
  order, so lexical search returns k hits whenever at least k rows are allowed, like semantic
  search. Pass `min_score` > 0 to get only rows that share a term with the query.
- `rank` (the lexical input of hybrid fusion) holds only rows with a score > 0: a row sharing no
  term with the query is not in the lexical ranking and gets nothing from it in RRF.

Small catalogs: with fewer than 2 texts, or when no term occurs in 2 texts (min_df=2), the
vocabulary is empty; the index then holds its rows with no terms, every query scores 0 for every
row, `search` returns allowed rows in catalog order with score 0 and `rank` returns nothing.

Files: `save(path)` writes one uncompressed .npz (no pickle) to exactly the path given (atomic
replacement is the caller's job), holding what search uses as it is used, so that `load(path)` is a
few array reads: format 2 stores the vocabulary as a sorted array of UTF-8 terms (a query's terms
are found by binary search; no per-term Python dict: 3.5M terms at 1M products), the idf, and the
matrix in CSC (term columns). Format 1 files (CSR, str terms) still load, converted in memory with
a log line (slow at 1M products: the next build or compaction writes format 2).
Queries are transformed exactly as `TfidfVectorizer.transform` does (the same analyzer, counts,
idf product and L2 `normalize`), so the scores are those of the fitted vectorizer.
Live updates: `with_rows(texts)` returns a NEW index holding this one's rows and then the new texts,
transformed with the FIXED vocabulary and idf (cost: the new texts plus the rows added since the
last fit, not the catalog). A term that only new products use is not searchable lexically, and idf
drifts, until the next full `fit` (compaction refits on the compacted catalog).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize

from index_service.fusion import top_ranked
from servekit.errors import InvalidArgument

log = logging.getLogger(__name__)

FORMAT_VERSION = 2  # 1: CSR matrix, str terms (still loaded); 2: CSC matrix, sorted UTF-8 terms
MIN_DF = 2
NGRAM_RANGE = (1, 2)


def _vectorizer() -> TfidfVectorizer:
    return TfidfVectorizer(min_df=MIN_DF, ngram_range=NGRAM_RANGE)


_ANALYZER = _vectorizer().build_analyzer()  # text -> terms (unigrams, bigrams), as in fit


def _utf8_terms(terms: np.ndarray) -> np.ndarray:
    """str terms -> fixed-width UTF-8 bytes ('S'): byte order is code point order, so a sorted
    vocabulary stays sorted; a quarter of the memory of numpy's UCS-4 'U' strings."""
    if terms.dtype.kind == "S":
        return terms
    return np.char.encode(terms.astype(str), "utf-8") if terms.size else np.array([], dtype="S1")


class LexicalIndex:
    def __init__(self) -> None:
        self._terms = np.array([], dtype="S1")  # sorted UTF-8 terms; empty: empty vocabulary
        self._idf = np.array([], dtype=np.float64)
        self._matrix = sp.csc_matrix((0, 0), dtype=np.float64)  # rows x terms; CSC: fast term columns
        # Rows added by with_rows since the last fit: a second, small matrix, so that adding a
        # batch copies only the rows added since the fit, never the whole catalog's matrix.
        self._added = sp.csc_matrix((0, 0), dtype=np.float64)

    def __len__(self) -> int:
        return self._matrix.shape[0] + self._added.shape[0]

    @property
    def vocabulary_size(self) -> int:
        return self._matrix.shape[1]

    def fit(self, texts: Sequence[str]) -> "LexicalIndex":
        texts = list(texts)
        vectorizer = _vectorizer()
        try:
            matrix = vectorizer.fit_transform(texts)
        except ValueError:  # fewer than 2 texts, or no term in 2 texts: empty vocabulary
            self._terms, self._idf = np.array([], dtype="S1"), np.array([], dtype=np.float64)
            self._matrix = sp.csc_matrix((len(texts), 0), dtype=np.float64)
            return self
        terms = _utf8_terms(vectorizer.get_feature_names_out())  # fit numbers terms in sorted order
        if terms.size > 1 and not (terms[1:] > terms[:-1]).all():
            raise AssertionError("TfidfVectorizer's vocabulary is not in sorted order")
        self._terms, self._idf = terms, np.asarray(vectorizer.idf_, dtype=np.float64)
        self._matrix = sp.csc_matrix(matrix, dtype=np.float64)
        return self

    def _transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        """texts -> L2-normalized TF-IDF rows with the fixed vocabulary and idf, computed as
        TfidfVectorizer.transform does (counts, times idf, then sklearn's normalize)."""
        width = self._terms.dtype.itemsize
        indices: list[np.ndarray] = []
        indptr = [0]
        for text in texts:
            grams = [g.encode("utf-8") for g in _ANALYZER(text)]
            grams = np.array([g for g in grams if len(g) <= width], dtype=self._terms.dtype)
            pos = np.searchsorted(self._terms, grams)
            pos[pos == self._terms.size] = 0
            found = pos[self._terms[pos] == grams] if grams.size else pos
            indices.append(found)
            indptr.append(indptr[-1] + found.size)
        cols = np.concatenate(indices) if indices else np.array([], dtype=np.int64)
        counts = sp.csr_matrix((np.ones(cols.size, dtype=np.float64), cols, np.array(indptr)),
                               shape=(len(indptr) - 1, self._terms.size))
        counts.sum_duplicates()  # sorted indices, summed counts: as CountVectorizer's
        counts.data *= self._idf[counts.indices]
        return normalize(counts, norm="l2", copy=False)

    def with_rows(self, texts: Sequence[str]) -> "LexicalIndex":
        """A NEW index: this one's rows, then `texts` transformed with this vocabulary and idf
        (no refit). This index is not touched (searches on it may run meanwhile)."""
        texts = list(texts)
        new = LexicalIndex()
        new._terms, new._idf, new._matrix = self._terms, self._idf, self._matrix
        if self._terms.size == 0:
            rows = sp.csc_matrix((len(texts), self._matrix.shape[1]), dtype=np.float64)
        else:
            rows = sp.csc_matrix(self._transform(texts), dtype=np.float64)
        added = rows if self._added.shape[0] == 0 else sp.vstack([self._added, rows], format="csc")
        new._added = added
        return new

    @property
    def rows_since_fit(self) -> int:
        return self._added.shape[0]

    def scores(self, query: str) -> np.ndarray:
        """Cosine similarity of the query with every row (float64, length len(self))."""
        if self._terms.size == 0:
            return np.zeros(len(self), dtype=np.float64)
        q = self._transform([query])  # 1 x terms, L2-normalized
        if q.nnz == 0:
            return np.zeros(len(self), dtype=np.float64)
        scores = np.asarray(self._matrix[:, q.indices] @ q.data, dtype=np.float64).ravel()
        if self._added.shape[0]:
            added = np.asarray(self._added[:, q.indices] @ q.data, dtype=np.float64).ravel()
            scores = np.concatenate([scores, added])
        return scores

    def _allowed(self, allowed_rows) -> np.ndarray:
        n = len(self)
        if allowed_rows is None:
            return np.arange(n, dtype=np.int64)
        allowed = np.asarray(allowed_rows)
        if allowed.dtype == bool:
            if allowed.shape != (n,):
                raise ValueError(f"allowed_rows mask has shape {allowed.shape}, index has {n} rows")
            return np.flatnonzero(allowed).astype(np.int64)
        rows = np.unique(allowed.astype(np.int64))  # sorted: catalog order for ties
        if rows.size and (rows[0] < 0 or rows[-1] >= n):
            raise ValueError(f"allowed_rows holds rows outside 0..{n - 1}")
        return rows

    def search(self, query: str, k: int, allowed_rows=None, offset: int = 0,
               min_score: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The page [offset, offset + k) of the allowed rows' ranking: (scores, rows), best first."""
        if k < 1:
            raise InvalidArgument(f"k must be >= 1, got {k}")
        if offset < 0:
            raise InvalidArgument(f"offset must be >= 0, got {offset}")
        rows = self._allowed(allowed_rows)
        scores = self.scores(query)[rows]
        if min_score is not None:
            keep = scores >= min_score
            scores, rows = scores[keep], rows[keep]
        scores, rows = top_ranked(scores, rows, offset + k)
        return scores[offset:], rows[offset:]

    def rank(self, query: str, allowed_rows=None, depth: int | None = None
             ) -> tuple[np.ndarray, np.ndarray]:
        """The allowed rows with a score > 0, best first, ties by row; the first `depth` of them."""
        rows = self._allowed(allowed_rows)
        scores = self.scores(query)[rows]
        positive = scores > 0
        scores, rows = scores[positive], rows[positive]
        return top_ranked(scores, rows, rows.size if depth is None else depth)

    def save(self, path: str | Path) -> None:
        m = sp.csc_matrix(self._matrix if self._added.shape[0] == 0
                          else sp.vstack([self._matrix, self._added], format="csc"))
        with open(path, "wb") as f:  # a file object: np.savez would append ".npz" to a bare name
            np.savez(f, format_version=np.array(FORMAT_VERSION), terms=self._terms, idf=self._idf,
                     data=m.data, indices=m.indices, indptr=m.indptr, shape=np.array(m.shape))

    @classmethod
    def load(cls, path: str | Path) -> "LexicalIndex":
        with np.load(path, allow_pickle=False) as z:
            version = int(z["format_version"])
            if version not in (1, FORMAT_VERSION):
                raise ValueError(f"{path}: lexical index format {version}, expected {FORMAT_VERSION}")
            terms, idf = z["terms"], z["idf"].astype(np.float64, copy=False)
            parts, shape = (z["data"], z["indices"], z["indptr"]), tuple(int(n) for n in z["shape"])
        index = cls()
        if version == FORMAT_VERSION:
            index._matrix = sp.csc_matrix(parts, shape=shape)
        else:
            log.warning("%s: lexical index format 1 (CSR, str terms): converting in memory, which "
                        "is slow for a large catalog; the next build or compaction writes format %d",
                        path, FORMAT_VERSION)
            index._matrix = sp.csc_matrix(sp.csr_matrix(parts, shape=shape), dtype=np.float64)
            terms = _utf8_terms(terms)
            if terms.size > 1 and not (terms[1:] > terms[:-1]).all():  # fit wrote them sorted
                order = np.argsort(terms, kind="stable")
                terms, idf, index._matrix = terms[order], idf[order], index._matrix[:, order]
        index._terms, index._idf = (terms, idf) if terms.size else (index._terms, index._idf)
        return index
