"""evaluate()'s orchestration (paging, concurrency, result order, errors) and the CLI's flags,
against a stand-in client with known hits; the real services are in test_eval_e2e.py."""
import threading

import pytest

from client.cli import build_parser
from client.errors import UnavailableError
from client.evaluate import evaluate
from client.eval_report import EXAMPLE_QUERIES
from client.types import Hit, Product, SearchResult, Stats
from tests.test_eval_metrics import CATEGORIES, HITS


class StandInClient:
    """Semantic mode answers the hand-made HITS; lexical always answers the product itself."""
    index_target = "stand-in"

    def __init__(self, fail_on=None, max_k=100):
        self.products = [Product(id=pid, title=f"title of {pid}", category=c)
                         for pid, c in CATEGORIES.items()]
        self.fail_on, self.max_k = fail_on, max_k
        self.calls, self.lock = [], threading.Lock()

    def stats(self):
        return Stats(product_count=len(self.products), dimension=3, model_name="m",
                     index_type="flat", catalog_sha256="sha", max_k=self.max_k)

    def list_products(self, page_size=100):
        assert page_size >= 1
        yield from self.products

    def search(self, query, k=10, mode="semantic", hybrid=None):
        with self.lock:
            self.calls.append((query, k, mode))
        if query == self.fail_on:
            raise UnavailableError("the index service is down")
        pid = query.removeprefix("title of ")
        if pid not in CATEGORIES:  # an example query
            ids = ["a", "b", "c", "d", "e", "f"] if mode == "semantic" else ["f"]
        else:
            ids = HITS[pid] if mode == "semantic" else [pid]
        return SearchResult(hits=tuple(Hit(Product(id=i, title=f"title of {i}"), 1.0, r)
                                       for r, i in enumerate(ids[:k], 1)))


def test_evaluate_maps_hits_to_products_and_modes():
    client = StandInClient()
    report = evaluate(client, (1, 2), ("semantic", "lexical"), workers=4, progress=False)
    assert report.products == 7 and report.category_products == 5 and report.catalog == "sha"
    semantic = report.modes["semantic"]  # the hand-computed means of test_eval_metrics
    assert semantic["self_retrieval@1"] == pytest.approx(3 / 7)
    assert semantic["precision@2"] == pytest.approx(0.3) and semantic["mrr@10"] == pytest.approx(0.5)
    lexical = report.modes["lexical"]  # only the product itself: found, but nothing relevant
    assert lexical["self_retrieval@1"] == 1.0 and lexical["precision@1"] == 0.0
    assert {k for _, k, _ in client.calls} == {11, 5}  # depth for MRR@10; 5 for the examples
    assert len(client.calls) == 2 * 7 + 2 * len(EXAMPLE_QUERIES)
    for query in EXAMPLE_QUERIES:
        assert report.examples[query]["semantic"] == [f"title of {i}" for i in "abcde"]
        assert report.examples[query]["lexical"] == ["title of f"]


def test_a_failed_search_stops_the_run():
    with pytest.raises(UnavailableError, match="down"):
        evaluate(StandInClient(fail_on="title of c"), (1,), ("semantic",), progress=False)


def test_k_above_the_servers_max_k_is_refused():
    with pytest.raises(Exception, match="max_k 10"):
        evaluate(StandInClient(max_k=10), (1, 5), ("semantic",), progress=False)


def test_cli_flags():
    args = build_parser().parse_args(["evaluate", "--index", "h:1", "--k", "10,1", "--modes",
                                      "hybrid,lexical", "--out", "x", "--workers", "2"])
    assert args.k == (1, 10) and args.modes == ("hybrid", "lexical") and str(args.out) == "x"
    assert args.index == "h:1" and args.workers == 2
    defaults = build_parser().parse_args(["evaluate"])
    assert defaults.k == (1, 5, 10) and defaults.modes == ("semantic", "lexical", "hybrid")


@pytest.mark.parametrize("flags, message", [(["--k", "0"], "--k"), (["--k", "x"], "--k"),
                                            (["--modes", "fuzzy"], "modes"),
                                            (["--workers", "0"], "--workers")])
def test_bad_flags_are_usage_errors(flags, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["evaluate", *flags])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err
