"""The contract checks (`make contract`: buf lint, buf breaking against protos/CONTRACT_BASE): the
real protos pass; a breaking edit fails naming what broke, an addition passes; every lint exception
in buf.yaml is needed; the base commit is found in a fresh clone, and a shallow one says what to do.

Slow: the first run installs the pinned Buf CLI with npm ci (tools/package-lock.json).
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
import yaml

from tests.procs import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
try:
    import contract
finally:
    sys.path.pop(0)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
INDEX_PROTO = "protos/recsys/v1/index.proto"


@pytest.fixture(scope="module")
def buf():
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed (CI installs Node.js and npm: .ci/run)")
    return contract.buf()


def workspace(folder, config=None):
    """A copy of buf.yaml and protos/ in `folder` (buf.yaml replaced by `config` if given)."""
    shutil.copytree(ROOT / "protos", folder / "protos")
    if config is None:
        shutil.copy(ROOT / "buf.yaml", folder / "buf.yaml")
    else:
        (folder / "buf.yaml").write_text(yaml.safe_dump(config))
    return folder


def buf_json(buf, folder, *args) -> tuple[int, list[dict]]:
    done = subprocess.run([str(buf), *args, "--error-format", "json"], cwd=folder,
                          capture_output=True, text=True, timeout=120)
    return done.returncode, [json.loads(line) for line in done.stdout.splitlines() if line]


def test_the_contract_passes_lint_and_breaking_against_its_base():
    done = subprocess.run([sys.executable, "scripts/contract.py"], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"no breaking change against {contract.read_base()}" in done.stdout


EDITS = {  # name: (old, new, the rule buf must report, a fragment of its message)
    "renumbered field": ("  string query = 1;", "  string query = 10;", "FIELD_NO_DELETE",
                         'field "1" with name "query" on message "SearchRequest" was deleted'),
    "removed field": ("  string brand = 3;\n", "", "FIELD_NO_DELETE",
                      'field "3" with name "brand" on message "Product" was deleted'),
    "changed type": ("  float score = 2;", "  double score = 2;", "FIELD_SAME_TYPE",
                     'on message "Hit" changed type from "float" to "double"'),
    "renamed field": ("  string title = 2;", "  string name = 2;", "FIELD_SAME_NAME",
                      'changed name from "title" to "name"'),
    "renamed RPC": ("  rpc Search(SearchRequest)", "  rpc Find(SearchRequest)", "RPC_NO_DELETE",
                    'RPC "Search" on service "Index" was deleted'),
}


@pytest.mark.parametrize("name", EDITS)
def test_a_breaking_edit_fails_naming_what_broke(buf, tmp_path, name):
    old, new, rule, fragment = EDITS[name]
    base, edited = workspace(tmp_path / "base"), workspace(tmp_path / "edited")
    proto = edited / INDEX_PROTO
    text = proto.read_text()
    assert text.count(old) == 1, f"the edit {name!r} no longer matches {INDEX_PROTO}"
    proto.write_text(text.replace(old, new))
    code, problems = buf_json(buf, edited, "breaking", "protos", "--against", str(base / "protos"))
    assert code != 0
    assert any(p["type"] == rule and fragment in p["message"] for p in problems), problems


def test_adding_a_field_and_an_rpc_passes(buf, tmp_path):
    base, edited = workspace(tmp_path / "base"), workspace(tmp_path / "edited")
    proto = edited / INDEX_PROTO
    text = proto.read_text()
    text = text.replace("  string title = 2;", "  string title = 2;\n  string subtitle = 90;")
    text = text.replace("  rpc GetStats(GetStatsRequest) returns (Stats);",
                        "  rpc GetStats(GetStatsRequest) returns (Stats);\n"
                        "  rpc CountProducts(GetStatsRequest) returns (Stats);")
    proto.write_text(text)
    code, problems = buf_json(buf, edited, "breaking", "protos", "--against", str(base / "protos"))
    assert code == 0 and problems == []


def _lint_exceptions() -> list[str]:
    lint = yaml.safe_load((ROOT / "buf.yaml").read_text())["lint"]
    return [*lint.get("except", ()), *lint.get("ignore_only", {})]


@pytest.mark.parametrize("rule", _lint_exceptions())
def test_every_lint_exception_is_needed(buf, tmp_path, rule):
    config = yaml.safe_load((ROOT / "buf.yaml").read_text())
    lint = config["lint"]
    lint["except"] = [r for r in lint.get("except", ()) if r != rule]
    lint.get("ignore_only", {}).pop(rule, None)
    code, problems = buf_json(buf, workspace(tmp_path, config), "lint")
    assert code != 0 and rule in {p["type"] for p in problems}, problems


def _clone(tmp_path, name, *args):
    target = tmp_path / name
    subprocess.run(["git", "clone", "-q", "--no-local", *args, f"file://{ROOT}", str(target)],
                   check=True, capture_output=True, timeout=120)
    return target


def test_a_fresh_clone_has_the_base_and_passes(buf, tmp_path):
    clone = _clone(tmp_path, "full")
    commit = contract.check_history(contract.read_base(clone / "protos" / "CONTRACT_BASE"), clone)
    assert contract.breaking(buf, commit, root=clone) == 0


def test_a_shallow_clone_says_how_to_get_the_base(tmp_path):
    clone = _clone(tmp_path, "shallow", "--depth", "1")
    with pytest.raises(contract.ContractError, match="shallow clone.*git fetch --unshallow"):
        contract.check_history(contract.read_base(), clone)
    with pytest.raises(contract.ContractError, match="not a git checkout"):
        contract.check_history(contract.read_base(), tmp_path)
