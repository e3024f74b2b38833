"""RecsysClient and the CLI against the real services (real model) on loopback ports.

One embedder and one index service (built from data/products.csv into a tmp dir) serve the whole
module; the embedder-restart test runs last, as it replaces the embedder process.
"""
import json
import math
import os
import subprocess
import sys

import pytest

from client import (DeadlineExceededError, InvalidArgumentError, NotFoundError, Product,
                    RecsysClient, UnavailableError, UnimplementedError)
from tests.procs import ROOT, ServiceProcess, free_port

CATALOG = ROOT / "data" / "products.csv"
pytestmark = [pytest.mark.timeout(600), pytest.mark.slow]


class Services:
    def __init__(self, tmp_path):
        self.embedder_port = free_port()
        self.embedder = self.start_embedder()
        index_port = free_port()
        self.index = ServiceProcess(
            "index_service", ["--port", str(index_port), "--embedder", self.embedder.address,
                              "--catalog", str(CATALOG), "--data-dir", str(tmp_path / "index")],
            index_port)
        try:
            self.index.wait_serving(600)
        except BaseException:  # leave nothing running when the index does not come up
            self.stop()
            raise

    def start_embedder(self) -> ServiceProcess:
        embedder = ServiceProcess("embedder_service", ["--port", str(self.embedder_port)],
                                  self.embedder_port)
        try:
            return embedder.wait_serving(300)
        except BaseException:
            embedder.kill()
            raise

    def stop(self):
        self.index.terminate()
        self.embedder.terminate()


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    running = Services(tmp_path_factory.mktemp("client"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def client(services):
    with RecsysClient(index=services.index.address, embedder=services.embedder.address,
                      timeout=30) as c:
        yield c


def _cli(services, *args, columns=80, env=None):
    full_env = {**os.environ, "COLUMNS": str(columns), "RECSYS_INDEX": services.index.address,
                "RECSYS_EMBEDDER": services.embedder.address, **(env or {})}
    return subprocess.run([sys.executable, "-m", "client", *args], cwd=ROOT, env=full_env,
                          capture_output=True, text=True, timeout=120)


# ---- the API ----

def test_search_answers_with_ranked_sensible_products(client):
    result = client.search("small folding computer desk", k=5)
    assert len(result) == 5
    assert [h.rank for h in result] == [1, 2, 3, 4, 5]
    scores = [h.score for h in result]
    assert scores == sorted(scores, reverse=True) and 0 < scores[-1] <= scores[0] <= 1.0001
    assert sum("Desk" in h.product.title for h in result) >= 4
    assert all(isinstance(h.product, Product) and h.product.id for h in result)
    assert result.timing.total_us > 0


def test_filters_offset_and_min_score(client):
    everything = client.search("table", k=20)
    brand = everything[0].product.brand
    by_brand = client.search("table", k=5, brand=brand)
    assert by_brand.hits and all(h.product.brand == brand for h in by_brand)
    category = everything[0].product.categories[-2]  # a breadcrumb level above the leaf
    by_category = client.search("table", k=10, category=category, max_price=150)
    assert by_category.hits
    assert all(category in h.product.categories and h.product.price <= 150 for h in by_category)
    cheap = client.search("chair", k=10, min_price=20, max_price=60)
    assert cheap.hits and all(20 <= h.product.price <= 60 for h in cheap)

    page1, page2 = client.search("lamp", k=3), client.search("lamp", k=3, offset=3)
    assert client.search("lamp", k=6).ids == page1.ids + page2.ids
    assert [h.rank for h in page2] == [4, 5, 6]
    threshold = page1[1].score
    assert all(h.score >= threshold for h in client.search("lamp", k=10, min_score=threshold))


@pytest.mark.parametrize("mode", ["lexical", "hybrid"])
def test_other_modes(client, mode):
    result = client.search("blue metal cafe table", k=5, mode=mode)
    assert len(result) == 5 and any("Cafe" in h.product.title or "Bistro" in h.product.title
                                    for h in result)


def test_similar_get_stats_and_paging_the_catalog(client):
    products = list(client.list_products(page_size=50))
    stats = client.stats()
    assert stats.product_count == len(products) >= 200
    assert len({p.id for p in products}) == len(products)
    assert stats.dimension == 384 and stats.index_type == "flat"
    assert client.list_products_page(page_size=50).total_count == len(products)

    seed = products[7]
    assert client.get(seed.id) == seed
    similar = client.similar(seed.id, k=5)
    assert len(similar) == 5 and seed.id not in similar.ids
    assert all(h.product.brand == seed.brand for h in client.similar(seed.id, k=3,
                                                                     brand=seed.brand))
    basket = [seed.id, products[8].id]
    like_both = client.similar(basket, k=5)  # a list of ids: products like all of them
    assert len(like_both) == 5 and not set(basket) & set(like_both.ids)
    assert like_both.ids != similar.ids


def test_embed_and_model_info(client):
    info = client.model_info()
    result = client.embed(["a wooden chair", "a blue table"])
    assert len(result) == 2 and result.model_name == info.model_name
    for vector in result.vectors:
        assert len(vector) == info.dimension == 384
        assert math.isclose(math.sqrt(sum(v * v for v in vector)), 1.0, rel_tol=1e-3)
    assert client.embed("one text").embeddings[0].token_count > 0


def test_upsert_then_delete(client):
    new = Product(id="client-test-1", title="Zebrawood Hexagonal Meditation Stool",
                  brand="ClientTest", price=42.0, categories=("Furniture", "Stools"))
    try:
        written = client.upsert([new])
    except UnimplementedError:
        pytest.skip("the index service does not implement UpsertProducts yet")
    assert written.upserted == 1 and written.sequence > 0
    stored = client.get(new.id)
    assert (stored.title, stored.price, stored.category) == (new.title, 42.0, "Stools")
    assert client.search("zebrawood hexagonal meditation stool", k=1).ids == [new.id]
    deleted = client.delete([new.id, "client-test-missing"])
    assert deleted.deleted == 1 and deleted.not_found == ("client-test-missing",)
    with pytest.raises(NotFoundError):
        client.get(new.id)


# ---- deadlines and errors ----

def test_a_tiny_deadline_raises_deadline_exceeded_and_the_default_can_be_overridden(services):
    with RecsysClient(index=services.index.address, embedder=services.embedder.address,
                      timeout=0.0005) as hasty:
        hasty.wait_ready(timeout=30)  # connected: the deadline, not the connection, fails it
        with pytest.raises(DeadlineExceededError, match="deadline") as info:
            hasty.search("a query never asked before for the deadline test", k=5)
        assert services.index.address in str(info.value)
        with pytest.raises(DeadlineExceededError):
            hasty.embed(["deadline test " * 50] * 64)
        assert len(hasty.search("desk", k=2, timeout=30)) == 2


def test_not_found_and_invalid_argument_name_what_is_wrong(client, services):
    with pytest.raises(NotFoundError, match="no-such-id") as info:
        client.get("no-such-id")
    assert services.index.address in str(info.value) and "check the id" in str(info.value)
    with pytest.raises(NotFoundError, match="no-such-id"):
        client.similar("no-such-id", k=3)
    with pytest.raises(InvalidArgumentError, match="query"):
        client.search("   ", k=3)
    with pytest.raises(InvalidArgumentError, match="\\bk\\b"):
        client.search("desk", k=0)
    with pytest.raises(InvalidArgumentError, match="min_price"):
        client.search("desk", min_price=100, max_price=10)
    with pytest.raises(InvalidArgumentError, match="mode"):
        client.search("desk", mode="fuzzy")
    with pytest.raises(InvalidArgumentError, match="timeout"):
        client.search("desk", timeout=0)


def test_connection_refused_is_unavailable_naming_the_address():
    address = f"127.0.0.1:{free_port()}"
    with RecsysClient(index=address, embedder=address, timeout=5) as nobody:
        with pytest.raises(UnavailableError, match=f"cannot reach the index service at {address}"):
            nobody.stats()
        with pytest.raises(UnavailableError,
                           match=f"embedder service at {address}.*RECSYS_EMBEDDER"):
            nobody.embed("x")
        with pytest.raises(DeadlineExceededError, match="not ready after"):
            nobody.wait_ready(timeout=0.5)


# ---- the CLI ----

def test_cli_search_json_prints_k_hits(services):
    done = _cli(services, "search", "small folding computer desk", "-k", "5", "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert len(data["hits"]) == 5 and [h["rank"] for h in data["hits"]] == [1, 2, 3, 4, 5]
    assert all(h["product"]["title"] for h in data["hits"])


def test_cli_vector_index_options(services):
    plain = _cli(services, "search", "small folding computer desk", "-k", "5", "--json")
    exact = _cli(services, "similar", json.loads(plain.stdout)["hits"][0]["product"]["id"], "-k", "3",
                 "--exact", "--hnsw-ef", "64", "--json")
    assert exact.returncode == 0, exact.stderr
    assert len(json.loads(exact.stdout)["hits"]) == 3
    # the served index is flat (exact already): --exact gives the same ranking
    same = _cli(services, "search", "small folding computer desk", "-k", "5", "--exact", "--json")
    assert [h["product"]["id"] for h in json.loads(same.stdout)["hits"]] == \
        [h["product"]["id"] for h in json.loads(plain.stdout)["hits"]]
    bad = _cli(services, "search", "desk", "--hnsw-ef", "0")
    assert bad.returncode == 2 and "--hnsw-ef" in bad.stderr
    first, second = [h["product"]["id"] for h in json.loads(plain.stdout)["hits"][:2]]
    basket = _cli(services, "similar", first, second, "-k", "3")
    assert basket.returncode == 0, basket.stderr
    assert basket.stdout.startswith(f"3 hits for products like {first}, {second}")


def test_cli_table_fits_the_terminal(services):
    done = _cli(services, "search", "upholstered lounge arm chair", "-k", "4", "--category",
                "Furniture", columns=72)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("4 hits for 'upholstered lounge arm chair'")
    assert lines[1].split() == ["#", "title", "brand", "category", "price", "score"]
    assert len(lines) == 7 and all(len(line) <= 72 for line in lines[1:])
    product_id = json.loads(_cli(services, "search", "desk", "-k", "1", "--json").stdout
                            )["hits"][0]["product"]["id"]
    for args in (["similar", product_id, "-k", "3"], ["get", product_id], ["stats"],
                 ["embed", "a chair"], ["list", "--limit", "3"]):
        done = _cli(services, *args)
        assert done.returncode == 0 and done.stdout and not done.stderr, (args, done.stderr)


@pytest.mark.parametrize("args, fragment", [
    (["get", "no-such-id"], "no product"),
    (["search", "desk", "--min-price", "9", "--max-price", "1"], "min_price"),
    (["--index", "127.0.0.1:1", "stats"], "cannot reach the index service at 127.0.0.1:1"),
])
def test_cli_errors_are_one_line_on_stderr_and_exit_1(services, args, fragment):
    done = _cli(services, *args)
    assert done.returncode == 1 and not done.stdout
    assert done.stderr.startswith("recsys: error: ") and fragment in done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


# ---- last: replaces the module's embedder ----

def test_search_works_again_once_a_restarted_embedder_is_back(services, client):
    before = client.search("restart check: before", k=3)
    services.embedder.terminate()
    try:
        with pytest.raises(UnavailableError) as info:  # the index service says which embedder
            client.search("restart check: while the embedder is down", k=3, timeout=10)
        assert services.embedder.address in str(info.value)
        # What needs no embedder keeps working: reads, and a query whose vector is cached.
        assert client.get(before.ids[0]).id == before.ids[0]
        assert client.search("restart check: before", k=3).ids == before.ids
    finally:
        services.embedder = services.start_embedder()
    # Right away: any UNAVAILABLE while the index service reconnects is retried by the client.
    result = client.search("restart check: a query the cache has never seen", k=3)
    assert len(result) == 3
