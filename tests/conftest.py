"""Fixtures shared by the test modules (the process helpers themselves live in tests/procs.py)."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests import milvus_server
from tests.procs import EXACT_EMBEDDER_ARGS, ServiceProcess, free_port


@pytest.fixture(scope="session")
def shared_embedder() -> ServiceProcess:
    """One real embedder for every test that just needs an embedder: the default backend at fp32
    (EXACT_EMBEDDER_ARGS: its vectors equal torch fp32's to ~2e-7, so tests compare with
    in-process references exactly), with a metrics endpoint at `.metrics_port`. Started on first
    use, so a run without such tests (the fast subset) loads no model; SIGTERMed at the end of
    the session, where it must exit 0.

    Do not kill, restart or reconfigure it, and do not count on its metrics from before your test:
    a test that does any of that starts its own embedder (tests.test_index_support.start_embedder,
    or tests.procs.ServiceProcess)."""
    port, metrics_port = free_port(), free_port()
    proc = ServiceProcess("embedder_service", ["--port", str(port), "--metrics-port",
                                               str(metrics_port), *EXACT_EMBEDDER_ARGS], port)
    proc.metrics_port = metrics_port
    with proc.serving_until_clean_exit():
        yield proc


@pytest.fixture(scope="session")
def shared_milvus(tmp_path_factory) -> milvus_server.MilvusServer:
    """One real Milvus standalone server (2.3.5, from .venv-milvus) for every test that only needs
    a Milvus to put collections in (each test uses its own collection names): started on first
    use, stopped by pid at the end of the session. Tests that kill or restart Milvus start their
    own (tests.milvus_server.MilvusServer)."""
    if not milvus_server.available():
        pytest.skip("no .venv-milvus: `make test` installs the Milvus server")
    server = milvus_server.MilvusServer(tmp_path_factory.mktemp("shared-milvus")).start()
    yield server
    server.stop()


# Modules whose tests start a Milvus server (tests.milvus_server: ports resolved from Milvus's
# defaults up, and kept by a restart) or a milvus-lite one: under pytest-xdist they all run on one
# worker, one after another, as without xdist.
MILVUS_MODULES = {"test_milvus_store.py", "test_store_contract.py", "test_compose_env.py",
                  "test_bench.py", "test_milvus_faults.py",
                  "test_milvus_startup.py", "test_milvus_lease.py"}


def xdist_scope(nodeid: str) -> str:
    """The unit pytest-xdist hands to one worker: a test module (its module fixtures start
    once), or "milvus" for every Milvus module together."""
    module = nodeid.split("::", 1)[0]
    return "milvus" if Path(module).name in MILVUS_MODULES else module


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """`make test` runs pytest with `-n 2`: whole scopes (xdist_scope) go to the workers."""
    from xdist.scheduler import LoadScopeScheduling

    class ModuleScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return xdist_scope(nodeid)

    return ModuleScheduling(config, log)
