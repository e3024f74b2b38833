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

Files: `save(path)` writes one .npz (vocabulary, idf, the CSR matrix; no pickle) to exactly the
path given (atomic replacement is the caller's job); `load(path)` rebuilds an identical vectorizer.
Live updates: `with_rows(texts)` returns a NEW index holding this one's rows and then the new texts,
transformed with the FIXED vocabulary and idf (cost: the new texts plus the rows added since the
last fit, not the catalog). A term that only new products use is not searchable lexically, and idf
drifts, until the next full `fit` (compaction refits on the compacted catalog).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

from index_service.fusion import top_ranked
from servekit.errors import InvalidArgument

FORMAT_VERSION = 1
MIN_DF = 2
NGRAM_RANGE = (1, 2)


def _vectorizer(vocabulary=None) -> TfidfVectorizer:
    return TfidfVectorizer(min_df=MIN_DF, ngram_range=NGRAM_RANGE, vocabulary=vocabulary)


class LexicalIndex:
    def __init__(self) -> None:
        self._vectorizer: TfidfVectorizer | None = None  # None: empty vocabulary
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
            self._vectorizer = None
            self._matrix = sp.csc_matrix((len(texts), 0), dtype=np.float64)
            return self
        self._vectorizer = vectorizer
        self._matrix = sp.csc_matrix(matrix, dtype=np.float64)
        return self

    def with_rows(self, texts: Sequence[str]) -> "LexicalIndex":
        """A NEW index: this one's rows, then `texts` transformed with this vocabulary and idf
        (no refit). This index is not touched (searches on it may run meanwhile)."""
        texts = list(texts)
        new = LexicalIndex()
        new._vectorizer, new._matrix = self._vectorizer, self._matrix
        if self._vectorizer is None:
            rows = sp.csc_matrix((len(texts), self._matrix.shape[1]), dtype=np.float64)
        else:
            rows = sp.csc_matrix(self._vectorizer.transform(texts), dtype=np.float64)
        added = rows if self._added.shape[0] == 0 else sp.vstack([self._added, rows], format="csc")
        new._added = added
        return new

    @property
    def rows_since_fit(self) -> int:
        return self._added.shape[0]

    def scores(self, query: str) -> np.ndarray:
        """Cosine similarity of the query with every row (float64, length len(self))."""
        if self._vectorizer is None:
            return np.zeros(len(self), dtype=np.float64)
        q = self._vectorizer.transform([query])  # 1 x terms, L2-normalized
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
        terms = (self._vectorizer.get_feature_names_out() if self._vectorizer is not None
                 else np.array([], dtype=str))
        idf = self._vectorizer.idf_ if self._vectorizer is not None else np.array([], np.float64)
        m = sp.csr_matrix(self._matrix if self._added.shape[0] == 0
                          else sp.vstack([self._matrix, self._added]))
        with open(path, "wb") as f:  # a file object: np.savez would append ".npz" to a bare name
            np.savez(f, format_version=np.array(FORMAT_VERSION), terms=terms.astype(str), idf=idf,
                     data=m.data, indices=m.indices, indptr=m.indptr, shape=np.array(m.shape))

    @classmethod
    def load(cls, path: str | Path) -> "LexicalIndex":
        with np.load(path, allow_pickle=False) as z:
            version = int(z["format_version"])
            if version != FORMAT_VERSION:
                raise ValueError(f"{path}: lexical index format {version}, expected {FORMAT_VERSION}")
            terms, idf = z["terms"], z["idf"]
            matrix = sp.csr_matrix((z["data"], z["indices"], z["indptr"]), shape=tuple(z["shape"]))
        index = cls()
        index._matrix = sp.csc_matrix(matrix, dtype=np.float64)
        if terms.size:
            vectorizer = _vectorizer(vocabulary=[str(t) for t in terms])
            vectorizer.idf_ = idf
            index._vectorizer = vectorizer
        return index
