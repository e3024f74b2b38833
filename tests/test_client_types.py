"""What a type checker sees of recsys_client (it ships py.typed, PEP 561): the package's names load
lazily at run time (client/__init__.py's _EXPORTS), so a static `__all__` and an `if
TYPE_CHECKING:` import block name them for mypy and pyright; all three must list the same names,
each from the module that defines it (source only, fast)."""
from __future__ import annotations

import ast

import client
from tests.procs import ROOT

INIT = ROOT / "client" / "__init__.py"


def type_checking_imports() -> dict[str, tuple[str, ...]]:
    tree = ast.parse(INIT.read_text(encoding="utf-8"))
    block = next(node for node in tree.body if isinstance(node, ast.If)
                 and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING")
    return {node.module: tuple(alias.name for alias in node.names)
            for node in block.body if isinstance(node, ast.ImportFrom)}


def test_all_lists_every_lazily_loaded_name_and_nothing_else():
    assert sorted(client.__all__) == sorted(client._MODULE_OF)
    assert len(client.__all__) == len(set(client.__all__))


def test_type_checkers_import_each_name_from_the_module_that_loads_it():
    assert type_checking_imports() == client._EXPORTS


def test_every_exported_name_resolves_to_what_its_module_defines():
    import importlib
    for name, module in client._MODULE_OF.items():
        assert getattr(client, name) is getattr(importlib.import_module(f"client.{module}"), name)


def test_the_package_says_it_is_typed():
    assert (ROOT / "client" / "py.typed").is_file()
