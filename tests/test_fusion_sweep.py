"""`recsys evaluate --sweep-fusion` without services: the even/odd split, the choice of the best
setting, and the files, against a stand-in client whose answers depend on the setting asked for;
the real service runs in test_fusion_e2e.py."""
import json
import threading

import pytest

from client.cli import build_parser
from client.errors import RecsysError
from client.eval_report import write_report
from client.evaluate import evaluate
from client.fusion_sweep import (ALPHAS, choose_best, hybrid_names, split_halves, sweep_settings,
                                 weighted_name)
from client.types import Hit, Product, SearchResult, Stats

# 12 products in two categories of 6, listed in an order that is not id order (the split follows
# the listing, as ListProducts gives it).
LISTING = ["p07", "p00", "p11", "p03", "p05", "p08", "p01", "p10", "p02", "p09", "p06", "p04"]
CATEGORY = {pid: ("A" if int(pid[1:]) < 6 else "B") for pid in LISTING}
EVEN, ODD = LISTING[0::2], LISTING[1::2]


class SweepStandIn:
    """weighted@0.3 answers the product's category peers for products at even listing positions
    only, weighted@0.7 for odd positions only, lexical for every product; everything else
    answers the other category. Its default hybrid (no HybridParams) is weighted@0.7."""
    index_target = "stand-in"

    def __init__(self):
        self.calls, self.lock = [], threading.Lock()

    def stats(self):
        return Stats(product_count=12, dimension=3, model_name="m", index_type="flat",
                     catalog_sha256="sha", max_k=100, hybrid_fusion="weighted", hybrid_alpha=0.7)

    def list_products(self, page_size=100):
        yield from (Product(id=pid, title=f"title of {pid}", category=CATEGORY[pid])
                    for pid in LISTING)

    def search(self, query, k=10, mode="semantic", hybrid=None):
        with self.lock:
            self.calls.append((mode, hybrid))
        pid = query.removeprefix("title of ")
        if pid not in CATEGORY:  # an example query
            return SearchResult(hits=())
        if hybrid is None:
            setting = weighted_name(0.7) if mode == "hybrid" else mode
        else:
            setting = "rrf" if hybrid.fusion == "rrf" else weighted_name(hybrid.alpha)
        good = (setting == "lexical" or (setting == weighted_name(0.3) and pid in EVEN)
                or (setting == weighted_name(0.7) and pid in ODD))
        peers = [p for p in LISTING if p != pid and (CATEGORY[p] == CATEGORY[pid]) == good]
        ids = [pid] + peers
        return SearchResult(hits=tuple(Hit(Product(id=i, title=i), 1.0, r)
                                       for r, i in enumerate(ids[:k], 1)))


def test_split_is_even_and_odd_positions_of_the_listing():
    assert split_halves(["a", "b", "c", "d", "e"]) == (["a", "c", "e"], ["b", "d"])
    assert split_halves([]) == ([], [])
    assert split_halves(LISTING) == (EVEN, ODD)
    assert split_halves(LISTING) == split_halves(list(LISTING))  # deterministic


def test_settings_cover_rrf_and_eleven_alphas():
    settings = sweep_settings()
    assert list(settings)[:4] == ["semantic", "lexical", "hybrid", "rrf"]
    assert settings["hybrid"] == ("hybrid", None)  # the service's default
    assert [settings[weighted_name(a)][1].alpha for a in ALPHAS] == [i / 10 for i in range(11)]
    assert all(settings[n][0] == "hybrid" and settings[n][1].fusion == "weighted"
               for n in hybrid_names()[1:])
    assert settings["rrf"][1].fusion == "rrf" and settings["semantic"] == ("semantic", None)


def _figures(p5=0.5, mrr=0.5):
    return {"precision@5": p5, "mrr@10": mrr}


def test_choose_best_by_precision_then_mrr_then_rrf_then_the_middle():
    tune = {name: _figures() for name in hybrid_names()}
    assert choose_best(tune) == "rrf"  # all equal: the service's default stays
    tune[weighted_name(0.2)] = _figures(0.5, 0.6)
    assert choose_best(tune) == weighted_name(0.2)  # precision ties: higher MRR
    tune[weighted_name(0.9)] = _figures(0.6, 0.1)
    assert choose_best(tune) == weighted_name(0.9)  # precision first
    tune[weighted_name(0.3)] = tune[weighted_name(0.7)] = _figures(0.6, 0.1)
    assert choose_best(tune) == weighted_name(0.3)  # nearest 0.5, then the lower alpha
    tune["semantic"] = tune["lexical"] = _figures(0.9, 0.9)  # single modes are not candidates
    assert choose_best(tune) == weighted_name(0.3)


def test_sweep_chooses_on_even_positions_and_reports_on_odd(tmp_path):
    client = SweepStandIn()
    report = evaluate(client, (1, 5), ("semantic", "lexical", "hybrid"), workers=3,
                      progress=False, sweep_fusion=True)
    sweep = report.sweep
    assert sweep.best == weighted_name(0.3) and sweep.flags == \
        "--hybrid-fusion weighted --hybrid-alpha 0.3"
    assert sweep.tune[weighted_name(0.3)]["precision@5"] == 1.0
    assert sweep.report[weighted_name(0.3)]["precision@5"] == 0.0  # never tuned on these
    assert sweep.report[weighted_name(0.7)]["precision@5"] == 1.0
    assert sweep.headline() == {"semantic": 0.0, "lexical": 1.0, "hybrid_best": 0.0,
                                "hybrid_rrf": 0.0, "hybrid_served": 1.0}
    assert sweep.served == "weighted, alpha 0.7"
    assert (sweep.tune_products, sweep.report_products) == (6, 6)
    # semantic, lexical and hybrid (served) are asked once per title, shared by modes and sweep
    hybrid_calls = [h for mode, h in client.calls if mode == "hybrid" and h is not None]
    assert len(hybrid_calls) == 12 * len(hybrid_names())
    assert sum(1 for mode, h in client.calls if mode == "hybrid" and h is None) == 12 + 4
    assert sum(1 for mode, h in client.calls if mode == "semantic") == 12 + 4  # + examples

    paths = write_report(report, tmp_path)
    assert {"fusion_sweep.json", "fusion_sweep.png", "report.md"} <= set(paths)
    body = json.loads(paths["fusion_sweep.json"].read_text())
    assert body["best"] == {"fusion": "weighted", "alpha": 0.3}
    assert body["flags"] == "--hybrid-fusion weighted --hybrid-alpha 0.3"
    assert body["report"] == {"semantic": 0.0, "lexical": 1.0, "hybrid_best": 0.0, "hybrid_rrf": 0.0,
                              "hybrid_served": 1.0}
    assert body["served"] == "weighted, alpha 0.7"
    assert set(body["tune"]) == {"semantic", "lexical", "hybrid", "rrf", "weighted"}
    assert list(body["tune"]["weighted"]) == [f"{a:.1f}" for a in ALPHAS]
    assert body["tune"]["weighted"]["0.3"] == {"precision@5": 1.0, "mrr@10": 1.0}
    assert body["report_sweep"]["weighted"]["0.7"]["precision@5"] == 1.0
    assert body["split"]["tune_products"] == 6 and body["split"]["order"] == "ListProducts"
    text = paths["report.md"].read_text()
    assert "## Fusion sweep" in text and "`--hybrid-fusion weighted --hybrid-alpha 0.3`" in text
    assert "| weighted alpha 0.3 (best) | 1.0000 | 1.0000 | 0.0000 | 0.0000 |" in text
    assert "| hybrid as served (weighted, alpha 0.7) | 0.0000 |" in text
    assert "falls short of the best single mode" in text  # lexical 1.0 on the report half
    png = paths["fusion_sweep.png"].read_bytes()
    assert png.startswith(b"\x89PNG") and b"Software" not in png
    again = write_report(evaluate(SweepStandIn(), (1, 5), progress=False, sweep_fusion=True),
                         tmp_path / "again")
    for name in ("fusion_sweep.json", "fusion_sweep.png", "report.md"):
        assert again[name].read_bytes() == paths[name].read_bytes(), name


def test_resplit_scores_the_same_searches_on_another_split():
    """Shifting the listing by one swaps the halves: the choice follows the new tuning half, and
    no search is made again."""
    client = SweepStandIn()
    sweep = evaluate(client, (1, 5), progress=False, sweep_fusion=True).sweep
    calls = len(client.calls)
    assert sweep.resplit(LISTING) == sweep
    swapped = sweep.resplit(LISTING[1:] + LISTING[:1])
    assert swapped.best == weighted_name(0.7) and swapped.served == sweep.served
    assert swapped.tune == sweep.report and swapped.report == sweep.tune
    assert swapped.headline()["hybrid_best"] == 0.0 and len(client.calls) == calls  # never tuned
    with pytest.raises(ValueError, match="an order of the products"):
        sweep.resplit(LISTING[1:])


def test_a_service_without_weighted_fusion_is_refused():
    class OldService(SweepStandIn):
        def stats(self):
            return Stats(product_count=12, dimension=3, model_name="m", index_type="flat", max_k=100)

    with pytest.raises(RecsysError, match="predates weighted fusion"):
        evaluate(OldService(), (5,), progress=False, sweep_fusion=True)
    assert evaluate(OldService(), (5,), ("semantic",), progress=False).sweep is None


def test_rrf_best_prints_rrf_flags():
    from client.fusion_sweep import score_sweep
    hits = {name: {pid: [pid] for pid in LISTING} for name in sweep_settings()}
    sweep = score_sweep(CATEGORY, LISTING, hits)
    assert sweep.best == "rrf" and sweep.flags == "--hybrid-fusion rrf"
    assert json.loads(sweep.to_json())["best"] == {"fusion": "rrf", "alpha": None}


def test_cli_flag():
    assert build_parser().parse_args(["evaluate", "--sweep-fusion"]).sweep_fusion is True
    assert build_parser().parse_args(["evaluate"]).sweep_fusion is False


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_alpha_0_and_1_are_named_as_the_single_modes_orders(alpha):
    from client.fusion_sweep import FusionSweep
    from client.sweep_report import best_label
    figures = {name: _figures() for name in sweep_settings()}
    sweep = FusionSweep(figures, figures, 6, 6, 6, 6, weighted_name(alpha))
    assert ("lexical" if alpha == 0 else "semantic") in best_label(sweep)
    assert sweep.flags.endswith(f"--hybrid-alpha {alpha:.1f}")
