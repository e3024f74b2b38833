"""The README's command-line examples, run as written against real services on data/products.csv
(the catalog `make run` serves): each exits 0 and, for searches and similar products, finds
something. An example that could never return a hit (a --min-score no RRF score reaches, an id
not in the sample catalog) fails here, not in a reader's terminal."""
from __future__ import annotations

import re
import shlex
import subprocess
import sys

import pytest

from tests.procs import ROOT, running_pair

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
README = ROOT / "README.md"
SECTION = "### Command line"


def cli_examples() -> list[list[str]]:
    """The `recsys ...` lines of the README's first sh block under SECTION (comments dropped)."""
    text = README.read_text(encoding="utf-8")
    block = re.search(r"```sh\n(.*?)```", text[text.index(SECTION):], re.S).group(1)
    return [shlex.split(line, comments=True)[1:] for line in block.splitlines()
            if line.startswith("recsys ")]


def test_the_readme_has_examples_of_every_read_command():
    commands = {argv[0] for argv in cli_examples()}
    assert {"search", "similar", "get", "list", "stats", "embed", "model-info"} <= commands


@pytest.fixture(scope="module")
def services(shared_embedder, tmp_path_factory):
    with running_pair(ROOT / "data" / "products.csv", tmp_path_factory.mktemp("readme"),
                      embedder=shared_embedder) as (embedder, index):
        yield embedder, index


@pytest.mark.parametrize("argv", [a for a in cli_examples() if a[0] != "evaluate"],
                         ids=lambda argv: " ".join(argv)[:60])
def test_a_readme_example_works_as_written(services, argv, tmp_path):
    embedder, index = services
    run = subprocess.run([sys.executable, "-m", "client", "--index", index.address,
                          "--embedder", embedder.address, *argv],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120,
                         env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "COLUMNS": "120"})
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() and not run.stdout.startswith("no hits"), run.stdout
