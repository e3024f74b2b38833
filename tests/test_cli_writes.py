"""`recsys upsert` and `recsys delete` against a real index service (on the shared embedder):
what `recsys list --json` exports loads back, JSON Lines load in batches, every line is checked
before anything is sent, and a batch the service refuses is named by its lines."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from client import RecsysClient
from tests.procs import ROOT, running_pair

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def services(shared_embedder, tmp_path_factory):
    with running_pair(ROOT / "data" / "products.csv", tmp_path_factory.mktemp("cli-writes"),
                      embedder=shared_embedder) as (_, index):
        yield index


@pytest.fixture
def client(services):
    with RecsysClient(index=services.address, timeout=30) as c:
        yield c


def _cli(services, *args):
    env = {**os.environ, "RECSYS_INDEX": services.address}
    return subprocess.run([sys.executable, "-m", "client", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_cli_upsert_loads_what_list_json_exports_and_delete_removes(services, client, tmp_path):
    """`recsys list --json` output and JSON Lines both load; batches go one after the other."""
    before = client.stats().product_count
    exported = _cli(services, "list", "--limit", "3", "--json")
    assert exported.returncode == 0, exported.stderr
    (tmp_path / "three.json").write_text(exported.stdout)
    again = _cli(services, "upsert", str(tmp_path / "three.json"))
    assert again.returncode == 0 and "upserted 3 products" in again.stdout, again.stderr
    assert client.stats().product_count == before  # the same ids: replaced, not added
    lines = [json.dumps({"id": f"cli-{i}", "title": f"Cedar planter box {i}", "price": 30.0 + i,
                         "categories": ["Garden", "Planters"], "attributes": {"size": "M"}})
             for i in range(5)]
    (tmp_path / "new.jsonl").write_text("\n".join(lines) + "\n")
    done = _cli(services, "upsert", str(tmp_path / "new.jsonl"), "--batch-size", "2", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["upserted"] == 5
    assert client.get("cli-3").attributes == {"size": "M"}
    assert client.stats().product_count == before + 5
    gone = _cli(services, "delete", "cli-0", "cli-1", "cli-2", "cli-3", "cli-4", "nope")
    assert gone.returncode == 0, gone.stderr
    assert "deleted 5 products; not found: nope" in gone.stdout
    assert client.stats().product_count == before


def test_cli_upsert_checks_every_line_first_and_names_a_refused_batch(services, client, tmp_path):
    before = client.stats().product_count
    (tmp_path / "bad.jsonl").write_text('{"id": "cli-a", "title": "Oak stool"}\n{"id": "cli-b"\n')
    broken = _cli(services, "upsert", str(tmp_path / "bad.jsonl"))
    assert broken.returncode == 1 and "line 2: not valid JSON" in broken.stderr
    assert client.stats().product_count == before  # nothing sent
    rows = [{"id": "cli-a", "title": "Oak stool"}, {"id": "cli-b", "title": "Ash stool"},
            {"id": "cli-c", "title": "   "}, {"id": "cli-d", "title": "Elm stool"}]
    (tmp_path / "refused.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    refused = _cli(services, "upsert", str(tmp_path / "refused.jsonl"), "--batch-size", "2")
    assert refused.returncode == 1 and len(refused.stderr.strip().splitlines()) == 1
    assert "title is empty" in refused.stderr and "lines 3 to 4" in refused.stderr
    assert "2 products were upserted before it" in refused.stderr
    assert client.stats().product_count == before + 2
    client.delete(["cli-a", "cli-b"])
