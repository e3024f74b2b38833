"""The house rules, checked so that they cannot quietly regress (source only, no services: fast).

- No hand-written module over 300 lines and no function over 60 lines in the service and client
  packages, bench/, scripts/ and tests/ (the generated code under client/generated/ is not ours
  to size).
- Every package's map (its __init__.py docstring) names every module of the package.
- Every test that starts one of our services (or a bench/demo script that does) or loads the model
  in-process is marked `slow`, so that `pytest -m "not slow" tests` stays a one-minute run.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.procs import ROOT

PACKAGES = ("embedder_service", "index_service", "servekit", "client", "bench", "scripts", "tests")
GENERATED = ROOT / "client" / "generated"
MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 60
TESTS = ROOT / "tests"

# Names that start a real service process or load the model in this process.
STARTERS = {"ServiceProcess", "running_pair", "shared_embedder", "SentenceTransformer",
            "SentenceTransformerBackend", "OpenVINOBackend"}
# `python -m X` for these X starts a service (the client's commands call the services); so do the
# bench modules that start services (bench_modules_that_start_services()).
SERVICE_MODULES = {"embedder_service", "index_service", "client", "scripts.run_demo"}


def hand_written_modules() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py")
                  if not p.is_relative_to(GENERATED))


def test_the_packages_have_modules_to_check():
    assert len(hand_written_modules()) > 20


def test_no_module_over_300_lines():
    too_long = {str(p.relative_to(ROOT)): n for p in hand_written_modules()
                if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES}
    assert too_long == {}, f"split these modules (at most {MAX_MODULE_LINES} lines): {too_long}"


def test_no_function_over_60_lines():
    too_long = {}
    for path in hand_written_modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    too_long[f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"] = lines
    assert too_long == {}, f"split these functions (at most {MAX_FUNCTION_LINES} lines): {too_long}"


MAPPED_PACKAGES = ("embedder_service", "index_service", "index_service/vectors",
                   "index_service/milvus", "index_service/catalog_files", "servekit")


@pytest.mark.parametrize("package", MAPPED_PACKAGES)
def test_package_maps_name_every_module(package):
    folder = ROOT / package
    doc = ast.get_docstring(ast.parse((folder / "__init__.py").read_text(encoding="utf-8"))) or ""
    modules = sorted(p.stem for p in folder.glob("*.py") if p.stem not in ("__init__", "__main__"))
    missing = [m for m in modules if f"{m}.py" not in doc and f"{m} (" not in doc]
    assert missing == [], f"{package}/__init__.py does not name: {missing}"


# ---- every test that starts a service is marked slow ------------------------------------------

def _is_slow_mark(node: ast.AST) -> bool:
    """`pytest.mark.slow` (or `mark.slow`) somewhere in the expression."""
    return any(isinstance(n, ast.Attribute) and n.attr == "slow"
               and isinstance(n.value, ast.Attribute) and n.value.attr == "mark"
               for n in ast.walk(node))


def _imports_a_starter(tree: ast.Module) -> bool:
    return any(isinstance(node, ast.ImportFrom) and (
        (node.module == "tests.procs" and any(a.name in STARTERS for a in node.names))
        or node.module == "bench.services"
        or (node.module == "bench" and any(a.name == "services" for a in node.names)))
        for node in ast.walk(tree))


def bench_modules_that_start_services() -> set[str]:
    """bench.X whose code starts services: it uses tests.procs's starters or bench.services."""
    return {f"bench.{p.stem}" for p in (ROOT / "bench").glob("*.py")
            if _imports_a_starter(ast.parse(p.read_text(encoding="utf-8"), str(p)))}


def _python_m(node: ast.AST) -> ast.AST | None:
    """X of a literal argv `[sys.executable, "-m", X, ...]`, else None."""
    if isinstance(node, (ast.List, ast.Tuple)) and len(node.elts) >= 3:
        first, flag, module = node.elts[:3]
        if isinstance(first, ast.Attribute) and first.attr == "executable" \
                and isinstance(flag, ast.Constant) and flag.value == "-m":
            return module
    return None


@dataclass
class Module:
    """One tests/*.py file: its top-level functions and classes, what its imported names refer to,
    and its test functions (each with whether it is marked slow)."""
    name: str
    tree: ast.Module
    defs: dict[str, ast.AST] = field(default_factory=dict)
    imports: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (module, name)
    bench: dict[str, str] = field(default_factory=dict)  # name -> the bench module it comes from
    tests: dict[str, tuple[ast.AST, bool]] = field(default_factory=dict)

    @classmethod
    def parse(cls, name: str, source: str) -> "Module":
        module = cls(name, ast.parse(source, name))
        module_slow = False
        for node in module.tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                module.defs[node.name] = node
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tests."):
                for alias in node.names:
                    module.imports[alias.asname or alias.name] = (node.module[6:], alias.name)
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "bench":
                for alias in node.names:
                    module.bench[alias.asname or alias.name] = (
                        f"bench.{alias.name}" if node.module == "bench" else node.module)
            elif isinstance(node, ast.Assign) and any(
                    isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets):
                module_slow = _is_slow_mark(node.value)
        for node in module.tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) \
                    and node.name.startswith("test"):
                slow = module_slow or any(_is_slow_mark(d) for d in node.decorator_list)
                module.tests[node.name] = (node, slow)
            elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
                class_slow = module_slow or any(_is_slow_mark(d) for d in node.decorator_list)
                for item in node.body:
                    if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) \
                            and item.name.startswith("test"):
                        slow = class_slow or any(_is_slow_mark(d) for d in item.decorator_list)
                        module.tests[f"{node.name}.{item.name}"] = (item, slow)
        return module


class ServiceStarters:
    """Whether a test starts a service: it uses one of STARTERS, runs `python -m` of a service,
    uses a bench module that starts services, or uses (calls, refers to, or takes as a fixture
    argument) a function, fixture or class that does, followed through the tests/ modules it
    imports from and conftest.py's fixtures."""

    def __init__(self, modules: dict[str, Module], bench_starters: set[str]):
        self.modules, self.bench_starters = modules, bench_starters
        self.memo: dict[tuple[str, str], bool] = {}

    def resolve(self, module: Module, name: str, is_argument: bool = False) -> bool:
        if name in STARTERS:
            return True
        if name in module.defs:
            return self.starts(module, name)
        if name in module.imports:
            other, other_name = module.imports[name]
            return other in self.modules and self.resolve(self.modules[other], other_name)
        if name in module.bench:
            return module.bench[name] in self.bench_starters
        if is_argument and module.name != "conftest" and "conftest" in self.modules:
            return self.resolve(self.modules["conftest"], name)  # a fixture from conftest.py
        return False

    def starts(self, module: Module, name: str) -> bool:
        key = (module.name, name)
        if key not in self.memo:
            self.memo[key] = False  # recursion guard: a cycle starts nothing by itself
            self.memo[key] = self.node_starts(module, module.defs[name])
        return self.memo[key]

    def node_starts(self, module: Module, node: ast.AST) -> bool:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            arguments = [a.arg for a in node.args.args + node.args.kwonlyargs]
            if any(self.resolve(module, a, is_argument=True) for a in arguments):
                return True
        for inner in ast.walk(node):
            target = _python_m(inner)
            if target is not None and (not isinstance(target, ast.Constant)  # computed: counted
                                       or target.value in SERVICE_MODULES
                                       or target.value in self.bench_starters):
                return True
            if isinstance(inner, ast.Name) and self.resolve(module, inner.id):
                return True
            if isinstance(inner, ast.Attribute) and inner.attr in STARTERS:
                return True
        return False


def service_tests() -> dict[str, bool]:
    """'module::test' -> marked slow, for every test that starts a service or loads the model."""
    modules = {p.stem: Module.parse(p.stem, p.read_text(encoding="utf-8"))
               for p in sorted(TESTS.glob("*.py"))}
    starters = ServiceStarters(modules, bench_modules_that_start_services())
    return {f"{module.name}::{name}": slow
            for module in modules.values() if module.name.startswith("test_")
            for name, (node, slow) in module.tests.items() if starters.node_starts(module, node)}


def test_every_test_that_starts_a_service_is_marked_slow():
    found = service_tests()
    # The check must see the service tests we know of, or it would pass by seeing nothing.
    for known in ("test_client::test_search_answers_with_ranked_sensible_products",
                  "test_index_lifecycle::test_model_mismatch_is_refused",
                  "test_access::test_an_unusable_certificate_or_token_file_stops_the_service_"
                  "with_one_line",
                  "test_bench::test_scale_bench_tiny",
                  "test_crash_kill::test_sigkill_under_writes_loses_no_acknowledged_write",
                  "test_run_demo::test_demo_reports_a_dead_service_and_exits_non_zero",
                  "test_embedder_vectors::test_backend_tokenize_is_thread_safe",
                  "test_index_service::test_health_and_reflection"):
        assert known in found, f"the checker no longer sees {known} start a service"
    unmarked = sorted(name for name, slow in found.items() if not slow)
    assert unmarked == [], ("these tests start a service or load the model: mark them "
                            f"@pytest.mark.slow (or the module's pytestmark): {unmarked}")


@pytest.mark.parametrize("source, starts", [
    ("def test_x(tmp_path):\n    assert ['python', '-m', 'index_service']\n", False),
    ("from tests.procs import ServiceProcess\ndef test_x():\n"
     "    ServiceProcess('m', [], 1)\n", True),
    ("import subprocess, sys\ndef test_x():\n"
     "    subprocess.run([sys.executable, '-m', 'index_service', '--help'])\n", True),
    ("import subprocess, sys\ndef run(module):\n"
     "    subprocess.run([sys.executable, '-m', module])\n"
     "def test_x():\n    run('anything')\n", True),
    ("import subprocess, sys\ndef test_x():\n"
     "    subprocess.run([sys.executable, '-m', 'pip'])\n", False),
    ("from bench import scale\ndef test_x():\n    scale.main([])\n", True),
    ("from bench import synthetic\ndef test_x():\n    synthetic.parse_size('1k')\n", False),
    ("import pytest\n@pytest.fixture\ndef svc(shared_embedder):\n    return shared_embedder\n"
     "def test_x(svc):\n    assert svc\n", True),
])
def test_the_checker_follows_helpers_fixtures_and_argv(source, starts):
    module = Module.parse("test_fake", source)
    starters = ServiceStarters({"test_fake": module}, bench_modules_that_start_services())
    node, _ = module.tests["test_x"]
    assert starters.node_starts(module, node) == starts
