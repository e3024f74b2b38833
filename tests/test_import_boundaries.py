"""The packages' import boundaries: the servers load the generated stubs without the friendly
client, and the client's CLI loads no server plumbing (each checked in a fresh interpreter)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.procs import ROOT

FRIENDLY_CLIENT = ("client.recsys_client", "client.cli", "client.channels", "client.convert",
                   "client.errors", "client.types", "client.commands", "client.evaluate")


def loaded_after(statement: str) -> set[str]:
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout.splitlines()[-1]))


@pytest.mark.parametrize("server", ["index_service.server", "embedder_service.server"])
def test_a_server_loads_the_stubs_but_not_the_friendly_client(server):
    modules = loaded_after(f"import {server}")
    assert "client.generated.recsys.v1.index_pb2" in modules or \
        "client.generated.recsys.v1.embedder_pb2" in modules
    assert not modules & set(FRIENDLY_CLIENT), sorted(modules & set(FRIENDLY_CLIENT))


def test_the_cli_loads_no_server_plumbing():
    modules = loaded_after("import client.cli")
    assert "client.recsys_client" in modules
    assert not [m for m in modules if m == "servekit" or m.startswith("servekit.")]
    assert not [m for m in modules if m.split(".")[0] in ("index_service", "embedder_service")]


def test_the_friendly_names_still_import_from_the_package():
    modules = loaded_after("from client import RecsysClient, Hit, UnavailableError")
    assert {"client.recsys_client", "client.types", "client.errors"} <= modules
