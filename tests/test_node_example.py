"""The other-language example (examples/node/search.js: Node's @grpc/grpc-js with
@grpc/proto-loader, straight from protos/) against the real services, as docs/client.md shows it.
Its npm packages come from examples/node/package-lock.json (npm ci on first use)."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from client import RecsysClient
from tests.procs import ROOT, free_port, running_pair
from tests.test_index_support import write_tiny_csv

sys.path.insert(0, str(ROOT / "scripts"))
try:
    import node_deps
finally:
    sys.path.pop(0)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
EXAMPLE = ROOT / "examples" / "node"


@pytest.fixture(scope="module")
def node():
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("Node.js and npm are not installed (CI installs them: .ci/run)")
    node_deps.ensure(EXAMPLE)
    return shutil.which("node")


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    folder = tmp_path_factory.mktemp("node-example")
    with running_pair(write_tiny_csv(folder / "tiny.csv"), folder / "data") as (_, index):
        yield index.address


def search_js(node, *args):
    return subprocess.run([node, "examples/node/search.js", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def test_the_node_example_finds_what_recsys_client_finds(node, index):
    done = search_js(node, "--index", index, "oak writing desk", "3")
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    hits = answer["hits"]
    assert [h["rank"] for h in hits] == [1, 2, 3] and answer["total_us"] > 0
    assert (hits[0]["id"], hits[0]["title"], hits[0]["price"]) == ("t01", "Oak writing desk", 189.0)
    with RecsysClient(index=index, timeout=30) as client:
        expected = client.search("oak writing desk", k=3)
    assert [h["id"] for h in hits] == expected.ids
    assert [h["score"] for h in hits] == pytest.approx([h.score for h in expected], rel=1e-6)


def test_the_node_example_reports_failures(node, index):
    blank = search_js(node, "--index", index, "   ")
    assert blank.returncode == 1 and blank.stderr.startswith("search failed: INVALID_ARGUMENT")
    nobody = search_js(node, "--index", f"127.0.0.1:{free_port()}", "desk")
    assert nobody.returncode == 1 and "UNAVAILABLE" in nobody.stderr
    usage = search_js(node)
    assert usage.returncode == 2 and usage.stderr.startswith("usage:")
