"""The packages' import boundaries: the servers load the generated stubs (and the standard-library
reader of connect errors, and the per-address probe) without the friendly client; the client's CLI loads no server plumbing,
and the eval extra only to evaluate; the two import names of client/ can meet in one process (each
checked in a fresh interpreter)."""
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


def test_the_connect_failure_reader_the_index_service_shares_loads_only_the_standard_library():
    modules = loaded_after("import client.connect_failures")
    assert not [m for m in modules if m.split(".")[0] in ("grpc", "google", "numpy")]
    assert not modules & set(FRIENDLY_CLIENT), sorted(modules & set(FRIENDLY_CLIENT))


def test_the_address_probe_the_index_service_shares_loads_grpc_but_not_the_friendly_client():
    modules = loaded_after("import client.address_probe")
    assert {"grpc", "grpc_health.v1.health_pb2_grpc", "client.connect_failures"} <= modules
    assert not modules & set(FRIENDLY_CLIENT), sorted(modules & set(FRIENDLY_CLIENT))


def test_the_cli_loads_no_server_plumbing():
    modules = loaded_after("import client.cli")
    assert "client.recsys_client" in modules
    assert not [m for m in modules if m == "servekit" or m.startswith("servekit.")]
    assert not [m for m in modules if m.split(".")[0] in ("index_service", "embedder_service")]


def test_the_friendly_names_still_import_from_the_package():
    modules = loaded_after("from client import RecsysClient, Hit, UnavailableError")
    assert {"client.recsys_client", "client.types", "client.errors"} <= modules


def test_the_cli_loads_the_eval_extra_only_to_evaluate():
    modules = loaded_after("import client.cli; client.cli.build_parser()")
    assert not [m for m in modules if m.split(".")[0] in ("tqdm", "matplotlib", "numpy")]


def test_evaluate_without_the_eval_extra_says_what_to_install():
    # As in a venv with recsys-client but without its [eval] extra: tqdm cannot be imported.
    code = ("import sys; sys.modules['tqdm'] = None\n"
            "from client.cli import main\n"
            "sys.exit(main(['--index', '127.0.0.1:1', 'evaluate']))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 1 and not done.stdout
    assert done.stderr == ("recsys: error: recsys evaluate needs the eval extra: pip install "
                           "'recsys-client[eval]' (from a checkout: pip install './client[eval]'); "
                           "tqdm is missing\n")


def test_both_import_names_in_one_process_share_the_stubs_not_the_classes():
    """The project venv has the folder as `client` and (editable recsys-client) `recsys_client`.
    protobuf's default pool accepts the identical .proto registered twice and hands out the same
    message classes; the friendly client's classes are distinct per name, hence the rule: the
    repository's code imports `client`, users import `recsys_client`, never both in one program."""
    code = ("import json\n"
            "from client.generated.recsys.v1 import index_pb2 as a\n"
            "from recsys_client.generated.recsys.v1 import index_pb2 as b\n"
            "import client, recsys_client\n"
            "print(json.dumps([a.Product is b.Product, a.DESCRIPTOR is b.DESCRIPTOR,\n"
            "                  client.NotFoundError is recsys_client.NotFoundError,\n"
            "                  client.__version__ == recsys_client.__version__]))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [True, True, False, True]
