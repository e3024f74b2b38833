"""LexicalIndex on tiny hand-made texts whose TF-IDF scores are known by hand.

Texts: 0 "red chair", 1 "red table", 2 "blue chair", 3 "green lamp". With min_df=2 the vocabulary
is {chair, red} (each in 2 texts, same idf), so row vectors are 0: (1/sqrt2, 1/sqrt2), 1: red only,
2: chair only, 3: no term.
"""
import math

import numpy as np
import pytest

from index_service.lexical import LexicalIndex
from servekit.errors import InvalidArgument
from tests.procs import IKARUS_CSV

TEXTS = ["red chair", "red table", "blue chair", "green lamp"]
R = 1 / math.sqrt(2)


@pytest.fixture(scope="module")
def lex():
    return LexicalIndex().fit(TEXTS)


def test_vocabulary_is_min_df_2(lex):
    assert len(lex) == 4
    assert lex.vocabulary_size == 2  # chair, red


def test_bigrams_are_terms():
    index = LexicalIndex().fit(["oak dining table", "oak dining chair", "pine table"])
    assert index.vocabulary_size == 4  # oak, dining, table, "oak dining" (all df 2: same idf)
    scores, rows = index.search("oak dining", k=3)
    # query = row 1 = (oak, dining, oak dining) / sqrt3; row 0 adds "table": 3 / (sqrt3 * 2)
    assert rows.tolist() == [1, 0, 2]
    np.testing.assert_allclose(scores, [1.0, math.sqrt(3) / 2, 0.0], atol=1e-12)


def test_scores_known_by_hand(lex):
    np.testing.assert_allclose(lex.scores("red chair"), [1.0, R, R, 0.0], atol=1e-12)
    np.testing.assert_allclose(lex.scores("red"), [R, 1.0, 0.0, 0.0], atol=1e-12)


def test_ties_keep_catalog_order_and_zero_scores_come_last(lex):
    scores, rows = lex.search("red chair", k=4)
    assert rows.tolist() == [0, 1, 2, 3]
    np.testing.assert_allclose(scores, [1.0, R, R, 0.0], atol=1e-12)
    scores, rows = lex.search("red", k=4)
    assert rows.tolist() == [1, 0, 2, 3]  # 2 and 3 share no term: score 0, catalog order


def test_k_and_offset(lex):
    _, rows = lex.search("red chair", k=2, offset=1)
    assert rows.tolist() == [1, 2]
    _, rows = lex.search("red chair", k=10, offset=3)
    assert rows.tolist() == [3]
    _, rows = lex.search("red chair", k=2, offset=10)
    assert rows.tolist() == []


def test_min_score_drops_non_matches(lex):
    scores, rows = lex.search("red chair", k=4, min_score=0.5)
    assert rows.tolist() == [0, 1, 2]
    _, rows = lex.search("red chair", k=4, min_score=1e-9, allowed_rows=[3])
    assert rows.tolist() == []


@pytest.mark.parametrize("allowed", [np.array([False, True, True, True]), [3, 2, 1], np.array([1, 2, 3, 3])])
def test_filter_is_exact(lex, allowed):
    _, rows = lex.search("red chair", k=2, allowed_rows=allowed)
    assert rows.tolist() == [1, 2]  # row 0 (best) is not allowed; still k hits
    _, rows = lex.search("red", k=2, allowed_rows=allowed)
    assert rows.tolist() == [1, 2]


def test_filter_with_no_match_returns_allowed_rows_in_catalog_order(lex):
    scores, rows = lex.search("red", k=1, allowed_rows=[3, 2])
    assert rows.tolist() == [2] and scores.tolist() == [0.0]


def test_rank_holds_positive_scores_only(lex):
    scores, rows = lex.rank("red")
    assert rows.tolist() == [1, 0]
    np.testing.assert_allclose(scores, [1.0, R])
    assert lex.rank("red", depth=1)[1].tolist() == [1]
    assert lex.rank("red", allowed_rows=[0, 2, 3])[1].tolist() == [0]
    assert lex.rank("purple")[1].tolist() == []


def test_unknown_words_score_zero(lex):
    scores, rows = lex.search("purple sofa", k=3)
    assert rows.tolist() == [0, 1, 2] and not scores.any()


def test_bad_arguments(lex):
    with pytest.raises(InvalidArgument):
        lex.search("red", k=0)
    with pytest.raises(InvalidArgument):
        lex.search("red", k=1, offset=-1)
    with pytest.raises(ValueError):
        lex.search("red", k=1, allowed_rows=np.array([True, False]))
    with pytest.raises(ValueError):
        lex.search("red", k=1, allowed_rows=[4])


@pytest.mark.parametrize("texts", [[], ["one lonely product"], ["alpha", "beta"]])
def test_empty_vocabulary_falls_back(texts, tmp_path):
    index = LexicalIndex().fit(texts)
    assert index.vocabulary_size == 0 and len(index) == len(texts)
    scores, rows = index.search("alpha", k=5)
    assert rows.tolist() == list(range(len(texts))) and not scores.any()
    assert index.rank("alpha")[1].size == 0
    index.save(tmp_path / "lex.npz")
    loaded = LexicalIndex.load(tmp_path / "lex.npz")
    assert len(loaded) == len(texts) and loaded.vocabulary_size == 0


def test_save_load_round_trip_on_the_shared_catalog(tmp_path):
    pd = pytest.importorskip("pandas")
    if not IKARUS_CSV.exists():
        pytest.skip(f"{IKARUS_CSV} not present")
    frame = pd.read_csv(IKARUS_CSV).fillna("")
    texts = (frame["title"] + " " + frame["brand"] + " " + frame["description"]).tolist()
    index = LexicalIndex().fit(texts)
    path = tmp_path / "lexical"  # no suffix: written to exactly this path
    index.save(path)
    loaded = LexicalIndex.load(path)
    assert path.exists() and loaded.vocabulary_size == index.vocabulary_size > 100
    for query in ["cozy wooden chair for study table", "small folding computer desk", "zzz"]:
        np.testing.assert_array_equal(loaded.scores(query), index.scores(query))
        a, b = index.search(query, k=10), loaded.search(query, k=10)
        np.testing.assert_array_equal(a[1], b[1])


def _ikarus_texts():
    pd = pytest.importorskip("pandas")
    if not IKARUS_CSV.exists():
        pytest.skip(f"{IKARUS_CSV} not present")
    frame = pd.read_csv(IKARUS_CSV).fillna("")
    return (frame["title"] + " " + frame["brand"] + " " + frame["description"]).tolist()


QUERIES = ["cozy wooden chair for study table", "Ünïcode café chair", "the", "", "zzz qqq"]


def test_scores_equal_sklearns_tfidf_exactly_also_for_rows_added_after_the_fit(tmp_path):
    """The index keeps no TfidfVectorizer (sorted term array + searchsorted instead of its dict):
    queries and added rows must still be exactly what the fitted vectorizer computes."""
    sp = pytest.importorskip("scipy.sparse")
    from sklearn.feature_extraction.text import TfidfVectorizer
    texts = _ikarus_texts()
    vectorizer = TfidfVectorizer(min_df=2, ngram_range=(1, 2))
    fitted = vectorizer.fit_transform(texts[:200])
    matrix = sp.vstack([fitted, vectorizer.transform(texts[200:])]).tocsc()
    index = LexicalIndex().fit(texts[:200]).with_rows(texts[200:])
    index.save(tmp_path / "lex.npz")
    loaded = LexicalIndex.load(tmp_path / "lex.npz")
    for query in QUERIES:
        q = vectorizer.transform([query])
        expected = np.asarray(matrix[:, q.indices] @ q.data).ravel()
        np.testing.assert_array_equal(index.scores(query), expected)
        np.testing.assert_array_equal(loaded.scores(query), expected)


def test_format_1_file_still_loads_with_the_same_scores(tmp_path, caplog):
    """Format 1 (before CSC + UTF-8 terms): CSR matrix and str terms; loaded with a log line."""
    sp = pytest.importorskip("scipy.sparse")
    texts = _ikarus_texts()
    index = LexicalIndex().fit(texts)
    index.save(tmp_path / "v2.npz")
    with np.load(tmp_path / "v2.npz") as z:
        terms = np.char.decode(z["terms"], "utf-8")
        csr = sp.csr_matrix(sp.csc_matrix((z["data"], z["indices"], z["indptr"]),
                                          shape=tuple(z["shape"])))
        idf = z["idf"]
    with open(tmp_path / "v1.npz", "wb") as f:
        np.savez(f, format_version=np.array(1), terms=terms, idf=idf, data=csr.data,
                 indices=csr.indices, indptr=csr.indptr, shape=np.array(csr.shape))
    with caplog.at_level("WARNING"):
        old = LexicalIndex.load(tmp_path / "v1.npz")
    assert "format 1" in caplog.text
    assert old.vocabulary_size == index.vocabulary_size and len(old) == len(index)
    for query in QUERIES:
        np.testing.assert_array_equal(old.scores(query), index.scores(query))


def test_unknown_format_is_refused(tmp_path):
    with open(tmp_path / "lex.npz", "wb") as f:
        np.savez(f, format_version=np.array(99))
    with pytest.raises(ValueError, match="format 99"):
        LexicalIndex.load(tmp_path / "lex.npz")
