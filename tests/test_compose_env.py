"""docker-compose.yml, without docker: its shape, `docker-compose config`, and both services run
as separate processes with exactly the environment, commands and healthchecks the file gives them.

What a container would change is translated, nothing else: each container port becomes a free
loopback port, the service host names and 0.0.0.0 become 127.0.0.1, the mounts become local
directories (./data as is, the named volume a tmp dir), the secrets (/run/secrets/NAME) the files
that `python -m scripts.make_secrets` (`make secrets`) writes into a tmp dir, and `python` is this
interpreter.

Safe by default: the index port is published on 127.0.0.1 only unless RECSYS_INDEX_PUBLISH_ADDRESS
says otherwise, the embedder is not published, and every call needs a token from the secrets: the
read token searches, the write token also writes, the embedder's token is the index service's only.
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from client import RecsysClient
from client.access import load_token
from client.errors import PermissionDeniedError, UnauthenticatedError
from client.types import Product
from tests import milvus_server
from tests.compose_translation import compose_world, healthcheck, prepare_cache_as_the_image_does
from tests.procs import ROOT, ServiceProcess

COMPOSE_FILE = ROOT / "docker-compose.yml"
pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load(COMPOSE_FILE.read_text())


def default_services(compose) -> dict:
    """The services `docker-compose up` starts (those in no profile)."""
    return {name: s for name, s in compose["services"].items() if not s.get("profiles")}


def test_compose_file_wires_the_two_services_as_required(compose):
    services = default_services(compose)
    assert set(services) == {"embedder", "index"}
    embedder, index = services["embedder"], services["index"]
    assert index["depends_on"] == {"embedder": {"condition": "service_healthy"}}
    assert "ports" not in embedder  # only the index port reaches the host, on loopback by default
    port = index["environment"]["INDEX_PORT"]
    assert index["ports"] == [f"${{{PUBLISH_VARIABLE}:-127.0.0.1}}:{port}:{port}"]
    volumes = [v.split(":") for v in index["volumes"]]
    assert ["./data", "/data", "ro"] in volumes
    named = [v for v in volumes if not v[0].startswith((".", "/"))]
    assert named and all(v[0] in compose["volumes"] for v in named)
    assert index["environment"]["INDEX_CATALOG"].startswith("/data/")
    assert any(index["environment"]["INDEX_DATA_DIR"].startswith(v[1]) for v in named)
    for name, service in services.items():
        test = service["healthcheck"]["test"]
        assert test[:3] == ["CMD", "python", "docker/healthcheck.py"], name
        port = service["environment"][f"{name.upper()}_PORT"]
        assert test[3] == f"127.0.0.1:{port}"
        assert service["command"][:3] == ["python", "-m", f"{name}_service"]


PUBLISH_VARIABLE = "RECSYS_INDEX_PUBLISH_ADDRESS"
TOKEN_VARIABLES = {"embedder": {"EMBEDDER_TOKEN_FILE": "embedder_token"},
                   "index": {"INDEX_TOKEN_FILE": "index_token",
                             "INDEX_READ_TOKEN_FILE": "index_read_token",
                             "INDEX_EMBEDDER_TOKEN_FILE": "embedder_token"}}


def test_every_token_comes_from_a_compose_secret_file(compose):
    """Tokens are files mounted as secrets (never values in the file or the environment), made by
    scripts/make_secrets.py into ./secrets, which git ignores."""
    from scripts.make_secrets import NAMES
    assert set(compose["secrets"]) == set(NAMES)
    for name, spec in compose["secrets"].items():
        assert spec == {"file": f"./secrets/{name}"}
    assert "/secrets/" in (ROOT / ".gitignore").read_text().split()
    for service, variables in TOKEN_VARIABLES.items():
        environment = compose["services"][service]["environment"]
        assert set(compose["services"][service]["secrets"]) == set(variables.values())
        for variable, secret in variables.items():
            assert environment[variable] == f"/run/secrets/{secret}"
        assert not [v for v in environment if v.endswith("_TOKEN") or "RECSYS_TOKEN" in v]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["embedder", "index"])
def test_every_compose_variable_is_one_the_service_reads(compose, name):
    """The services list their variables in --help ("env NAME"): a renamed one fails here."""
    done = subprocess.run([sys.executable, "-m", f"{name}_service", "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "1000"})
    known = set(re.findall(r"env ([A-Z][A-Z0-9_]*)", done.stdout))
    assert known, done.stdout + done.stderr
    prefix = f"{name.upper()}_"
    for service in compose["services"].values():
        read_here = {k for k in service.get("environment", {}) if k.startswith(prefix)}
        assert read_here <= known


MILVUS_PROFILE = {"milvus-etcd", "milvus-minio", "milvus", "index-milvus-1", "index-milvus-2"}


def test_the_milvus_profile_runs_two_index_replicas_over_milvus(compose):
    services = compose["services"]
    profiled = {name for name, s in services.items() if s.get("profiles") == ["milvus"]}
    assert profiled == MILVUS_PROFILE
    healthy = {"condition": "service_healthy"}
    assert services["milvus"]["depends_on"] == {"milvus-etcd": healthy, "milvus-minio": healthy}
    assert services["milvus"]["image"].startswith("milvusdb/milvus:v2.5")
    for name in ("index-milvus-1", "index-milvus-2"):
        replica = services[name]
        env = replica["environment"]
        assert env["INDEX_STORE"] == "milvus" and env["INDEX_MILVUS_URI"] == "http://milvus:19530"
        assert replica["depends_on"] == {"embedder": healthy, "milvus": healthy}
        assert replica["networks"]["default"]["aliases"] == ["index-milvus"]  # dns:/// balances
        assert replica["healthcheck"]["test"][:3] == ["CMD", "python", "docker/healthcheck.py"]
        assert "INDEX_DATA_DIR" not in env  # stateless: the catalog lives in Milvus
    assert services["index-milvus-1"]["ports"] == ["${RECSYS_INDEX_PUBLISH_ADDRESS:-127.0.0.1}:50053:50052"]
    assert services["index-milvus-2"]["ports"] == []
    for name in MILVUS_PROFILE - {"index-milvus-1", "index-milvus-2"}:
        assert "ports" not in services[name], name  # Milvus, etcd and MinIO stay internal


def _compose_config(**variables) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != PUBLISH_VARIABLE}
    return subprocess.run(["docker-compose", "-f", str(COMPOSE_FILE), "config"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, env={**env, **variables})


needs_compose = pytest.mark.skipif(shutil.which("docker-compose") is None,
                                   reason="docker-compose not installed")


@needs_compose
@pytest.mark.parametrize("profile", [[], ["--profile", "milvus"]])
def test_docker_compose_config_accepts_the_file(profile):
    done = subprocess.run(["docker-compose", "-f", str(COMPOSE_FILE), *profile, "config", "-q"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


@needs_compose
def test_docker_compose_publishes_the_index_on_loopback_only_unless_told_otherwise():
    """What docker-compose itself makes of the file (interpolated), with or without the secret
    files present (a fresh clone has none: CI validates the file before any exists)."""
    done = _compose_config()
    assert done.returncode == 0, done.stderr
    config = yaml.safe_load(done.stdout)
    assert config["services"]["index"]["ports"] == ["127.0.0.1:50052:50052/tcp"]
    assert "ports" not in config["services"]["embedder"]
    for name, spec in config["secrets"].items():
        assert spec["file"] == str(ROOT / "secrets" / name)
    wide = yaml.safe_load(_compose_config(**{PUBLISH_VARIABLE: "0.0.0.0"}).stdout)
    assert wide["services"]["index"]["ports"] == ["0.0.0.0:50052:50052/tcp"]


@pytest.mark.slow
def test_services_serve_with_exactly_the_compose_environment(compose, tmp_path, monkeypatch):
    translation, secrets_dir = compose_world(compose, tmp_path, monkeypatch)
    for local in translation.paths.values():
        if not local.is_relative_to(secrets_dir):
            local.mkdir(parents=True, exist_ok=True)
    data_before = sorted(p.name for p in (ROOT / "data").iterdir())
    started = []
    try:
        for name in ("embedder", "index"):  # depends_on order
            service = compose["services"][name]
            env = {k: translation.value(name, str(v)) for k, v in service["environment"].items()}
            if name == "embedder":  # the new volume holds the image's prepared cache
                prepare_cache_as_the_image_does(translation, env)
            argv = translation.command(name, service["command"])
            assert argv[:2] == [sys.executable, "-m"]
            port = int(env[f"{name.upper()}_PORT"])
            process = ServiceProcess(argv[2], argv[3:], port, env=env)
            started.append(process)
            process.wait_serving(600)
            check = healthcheck(translation, name, service)
            assert check.returncode == 0 and "SERVING" in check.stdout, check.stdout + check.stderr

        index_env = compose["services"]["index"]["environment"]
        index_address = f"127.0.0.1:{started[1].port}"
        read, write = (load_token(secrets_dir / name) for name in ("index_read_token", "index_token"))
        with RecsysClient(index=index_address, timeout=60, token=read) as client:  # the storefront
            result = client.search("small folding computer desk", k=5)
            assert len(result) == 5 and "Desk" in result[0].product.title
            stats = client.stats()
            assert stats.embedder_target == translation.value("index", index_env["INDEX_EMBEDDER"])
            assert stats.index_type == index_env["INDEX_TYPE"]
            with pytest.raises(PermissionDeniedError, match="needs the service's full-access"):
                client.upsert([Product(id="compose-probe", title="Compose probe stool")])
        _check_tokens(index_address, f"127.0.0.1:{started[0].port}", write)
        assert "tokenizer from the cache: torch not loaded" in started[0].output()
        for process in started:  # SIGHUP re-reads the secrets and stops nothing
            process.proc.send_signal(signal.SIGHUP)
            _wait_for(lambda: "tokens reloaded" in process.output())
            assert process.proc.poll() is None
        data_dir = Path(translation.value("index", index_env["INDEX_DATA_DIR"]))
        assert data_dir.is_relative_to(tmp_path / "volumes") and any(data_dir.iterdir())
        assert sorted(p.name for p in (ROOT / "data").iterdir()) == data_before  # read-only mount

        started[0].terminate()  # the embedder's healthcheck now fails, with exit code 1
        down = healthcheck(translation, "embedder", compose["services"]["embedder"])
        assert down.returncode == 1 and "UNAVAILABLE" in down.stdout
    finally:
        for process in reversed(started):
            process.terminate()


def _check_tokens(index_address: str, embedder_address: str, write: str) -> None:
    """The catalog updater writes with the write token; nobody calls without a token, and the
    embedder answers only the index service (which holds its token)."""
    with RecsysClient(index=index_address, timeout=60, token=write) as client:
        assert client.upsert([Product(id="compose-probe", title="Compose probe stool")]).upserted
        assert client.delete(["compose-probe"]).deleted == 1
    with RecsysClient(index=index_address, embedder=embedder_address, timeout=60) as client:
        with pytest.raises(UnauthenticatedError):
            client.stats()
        with pytest.raises(UnauthenticatedError):
            client.embed(["a chair"])
    with RecsysClient(embedder=embedder_address, timeout=60, token=write) as client:
        with pytest.raises(UnauthenticatedError, match="wrong token"):
            client.model_info()


def _wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "not within the time"
        time.sleep(0.05)


def test_healthcheck_script_exits_1_until_the_server_is_serving():
    from grpc_health.v1 import health_pb2

    from tests.test_client_retry import ScriptedIndex, serve
    server, checker, address = serve(ScriptedIndex())
    try:
        def probe():
            return subprocess.run([sys.executable, "docker/healthcheck.py", address], cwd=ROOT,
                                  capture_output=True, text=True, timeout=30)
        checker.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
        down = probe()
        assert down.returncode == 1 and "NOT_SERVING" in down.stdout
        checker.set("", health_pb2.HealthCheckResponse.SERVING)
        up = probe()
        assert up.returncode == 0 and "SERVING" in up.stdout
    finally:
        server.stop(None)


@pytest.mark.slow
@pytest.mark.skipif(not milvus_server.available(), reason="no .venv-milvus (make test installs it)")
def test_the_milvus_profile_serves_with_exactly_its_environment(compose, tmp_path, monkeypatch):
    """The profile's embedder and both index replicas, with exactly the compose environment, over
    a real Milvus (the pip-installable 2.3.5 standing in for the milvusdb/milvus image)."""
    translation, secrets_dir = compose_world(compose, tmp_path, monkeypatch)
    milvus = milvus_server.MilvusServer(tmp_path / "milvus").start()
    translation.ports[("milvus", "19530")] = int(milvus.uri.rsplit(":", 1)[1])
    started = []
    try:
        for name in ("embedder", "index-milvus-1", "index-milvus-2"):  # depends_on order
            service = compose["services"][name]
            env = {k: translation.value(name, str(v)) for k, v in service["environment"].items()}
            argv = translation.command(name, service["command"])
            port = int(env["EMBEDDER_PORT" if name == "embedder" else "INDEX_PORT"])
            started.append(ServiceProcess(argv[2], argv[3:], port, env=env).wait_serving(600))
            check = healthcheck(translation, name, service)
            assert check.returncode == 0 and "SERVING" in check.stdout, check.stdout + check.stderr
        read = load_token(secrets_dir / "index_read_token")  # the replicas share the secrets
        one, two = (RecsysClient(index=f"127.0.0.1:{p.port}", timeout=60, token=read)
                    for p in started[1:])
        with one, two:
            query = "small folding computer desk"
            assert [h.product.id for h in one.search(query, k=5)] == \
                   [h.product.id for h in two.search(query, k=5)]
            assert one.stats().store == two.stats().store == "milvus"
    finally:
        for process in reversed(started):
            process.terminate()
        milvus.stop()
