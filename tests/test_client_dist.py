"""The recsys-client distribution (client/pyproject.toml) as a user gets it.

Fast: the wheel built from client/ holds the `recsys_client` package and nothing else, and its
dependency floors follow the generated code. Slow: `pip install ./client` into a fresh, empty venv
(from the package index), which then has none of the servers' heavy packages, and whose `recsys`
command and `recsys_client.RecsysClient` work against the real services; `recsys evaluate` says
what to install until the `eval` extra is installed, and then works.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

import client
from tests.procs import ROOT, running_pair
from tests.test_index_support import write_tiny_csv

CLIENT = ROOT / "client"
HEAVY = ("torch", "transformers", "faiss-cpu", "pandas", "scikit-learn", "sentence-transformers",
         "numpy", "tqdm", "matplotlib")
PYPROJECT = tomllib.loads((CLIENT / "pyproject.toml").read_text())


def copy_of_client(folder: Path) -> Path:
    """client/ as a fresh checkout has it (a build in place leaves build/ and *.egg-info)."""
    folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copytree(CLIENT, folder / "client", ignore=shutil.ignore_patterns(
        "__pycache__", "build", "*.egg-info")))


def run(*args, cwd, timeout=600) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


# ---- the wheel (fast: built offline with the project venv's setuptools) ----

def test_the_wheel_holds_the_client_and_nothing_else(tmp_path):
    built = run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                "--no-index", "-w", tmp_path / "wheels", copy_of_client(tmp_path), cwd=tmp_path)
    assert built.returncode == 0, built.stdout + built.stderr
    wheel = zipfile.ZipFile(next((tmp_path / "wheels").glob("recsys_client-*.whl")))
    names = set(wheel.namelist())
    dist_info = f"recsys_client-{client.__version__}.dist-info/"
    sources = {f"recsys_client/{p.relative_to(CLIENT).as_posix()}" for p in CLIENT.rglob("*.py*")
               if p.suffix in (".py", ".pyi") and "__pycache__" not in p.parts
               and "build" not in p.relative_to(CLIENT).parts}
    # py.typed: a user's type checker reads the annotations (PEP 561).
    assert {n for n in names if not n.startswith(dist_info)} == sources | {"recsys_client/py.typed"}
    assert "recsys_client/generated/recsys/v1/index_pb2_grpc.py" in sources
    assert wheel.read(dist_info + "top_level.txt").decode().split() == ["recsys_client"]
    assert "recsys = recsys_client.cli:main" in wheel.read(dist_info + "entry_points.txt").decode()
    metadata = wheel.read(dist_info + "METADATA").decode()
    requires = sorted(line.split(": ", 1)[1] for line in metadata.splitlines()
                      if line.startswith("Requires-Dist: "))
    assert sorted(Requirement(r).name for r in requires if "extra ==" not in r) == \
        ["grpcio", "grpcio-health-checking", "protobuf"]
    assert {Requirement(r).name for r in requires if 'extra == "eval"' in r} == \
        {"tqdm", "matplotlib"}


def _generated_floors() -> tuple[str, str]:
    v1 = CLIENT / "generated" / "recsys" / "v1"
    grpc_versions = {re.search(r"GRPC_GENERATED_VERSION = '([\d.]+)'", p.read_text()).group(1)
                     for p in v1.glob("*_pb2_grpc.py")}
    protobuf_versions = {re.search(r"Protobuf Python Version: ([\d.]+)", p.read_text()).group(1)
                         for p in v1.glob("*_pb2.py")}
    assert len(grpc_versions) == len(protobuf_versions) == 1
    return grpc_versions.pop(), protobuf_versions.pop()


def test_dependency_floors_follow_the_generated_code_and_admit_our_pins():
    grpc_floor, protobuf_floor = _generated_floors()
    major = int(protobuf_floor.split(".")[0])
    requirements = {Requirement(r).name: Requirement(r) for r in PYPROJECT["project"]["dependencies"]}
    assert str(requirements["grpcio"].specifier) == f"<2,>={grpc_floor}"
    assert str(requirements["grpcio-health-checking"].specifier) == f"<2,>={grpc_floor}"
    assert str(requirements["protobuf"].specifier) == f"<{major + 1},>={protobuf_floor}"
    pins = dict(line.split("==") for line in (ROOT / "requirements.txt").read_text().splitlines()
                if "==" in line and not line.startswith("#"))
    for name, requirement in requirements.items():
        assert requirement.specifier.contains(pins[name]), (name, pins[name])


def test_the_major_version_is_the_contracts():
    assert client.CONTRACT == "recsys.v1" and (CLIENT / "generated" / "recsys" / "v1").is_dir()
    assert client.__version__.split(".")[0] == client.CONTRACT.rsplit(".v", 1)[1]


# ---- a fresh venv, as a user installs it (slow: the package index, then the real services) ----

@pytest.fixture(scope="module")
def user(tmp_path_factory):
    """A fresh venv with `pip install ./client` from the package index, and the user's own folder
    (outside the repository, away from the copy of client/) to run it in."""
    base = tmp_path_factory.mktemp("client-user")
    source = copy_of_client(base / "checkout")
    venv, folder = base / "venv", base / "app"
    folder.mkdir()
    made = run(sys.executable, "-m", "venv", venv, cwd=folder)
    assert made.returncode == 0, made.stderr
    installed = run(venv / "bin" / "python", "-m", "pip", "install", "--disable-pip-version-check",
                    "-q", source, cwd=folder)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return folder, venv, source


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    folder = tmp_path_factory.mktemp("client-dist-services")
    with running_pair(write_tiny_csv(folder / "tiny.csv"), folder / "data") as (_, index):
        yield index.address


def installed(venv: Path, cwd: Path) -> set[str]:
    done = run(venv / "bin" / "python", "-c", "import importlib.metadata as m, json; "
               "print(json.dumps([d.metadata['Name'].lower() for d in m.distributions()]))", cwd=cwd)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout))


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_fresh_venv_gets_the_client_without_the_heavy_packages(user, index):
    folder, venv, _ = user
    names = installed(venv, folder)
    assert {"recsys-client", "grpcio", "protobuf", "grpcio-health-checking"} <= names
    assert not names & set(HEAVY), sorted(names & set(HEAVY))
    assert run(venv / "bin" / "python", "-c", "import client", cwd=folder).returncode != 0

    done = run(venv / "bin" / "recsys", "--index", index, "search", "oak writing desk", "-k", "3",
               "--json", cwd=folder, timeout=120)
    assert done.returncode == 0, done.stderr
    hits = json.loads(done.stdout)["hits"]
    assert [h["rank"] for h in hits] == [1, 2, 3] and hits[0]["product"]["id"] == "t01"

    snippet = (
        "import json, sys\n"
        "from recsys_client import RecsysClient, NotFoundError, __version__\n"
        "with RecsysClient(index=sys.argv[1], timeout=30) as c:\n"
        "    c.wait_ready(timeout=60, embedder=False)\n"
        "    result = c.search('warm light bedside lamp', k=2)\n"
        "    try:\n"
        "        c.get('no-such-id')\n"
        "    except NotFoundError:\n"
        "        missing = True\n"
        "    print(json.dumps({'ids': result.ids, 'count': c.stats().product_count,\n"
        "                      'version': __version__, 'missing': missing}))\n")
    done = run(venv / "bin" / "python", "-c", snippet, index, cwd=folder, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"ids": ["t05", "t06"], "count": 10,
                                       "version": client.__version__, "missing": True}


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_evaluate_needs_the_eval_extra_and_works_with_it(user, index):
    folder, venv, source = user
    without = run(venv / "bin" / "recsys", "--index", index, "evaluate", cwd=folder, timeout=120)
    assert without.returncode == 1 and not without.stdout
    assert without.stderr.count("\n") == 1 and "Traceback" not in without.stderr
    assert "needs the eval extra: pip install 'recsys-client[eval]'" in without.stderr

    extra = run(venv / "bin" / "python", "-m", "pip", "install", "--disable-pip-version-check",
                "-q", f"{source}[eval]", cwd=folder)
    assert extra.returncode == 0, extra.stdout + extra.stderr
    assert {"tqdm", "matplotlib"} <= installed(venv, folder)
    assert not installed(venv, folder) & {"torch", "transformers", "faiss-cpu", "pandas"}
    done = run(venv / "bin" / "recsys", "--index", index, "evaluate", "--k", "1,3",
               "--out", folder / "eval", "--json", cwd=folder, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["products"] == 10
    assert sorted(p.name for p in (folder / "eval").iterdir()) == \
        ["metrics.json", "metrics.png", "report.md"]
