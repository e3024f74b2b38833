"""Regenerate the Python code for protos/ into client/generated/ (run as `make protos`).

The generated files are never edited by hand. protoc writes `from recsys.v1 import x_pb2` into
the *_grpc.py files; this script rewrites those to relative imports so the code lives inside the
`client.generated` package without touching sys.path. `--check` regenerates into a temporary
folder and exits 1 if the committed files differ (CI and tests/test_generated_code.py use it).
"""
from __future__ import annotations

import argparse
import filecmp
import re
import shutil
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
OUT = ROOT / "client" / "generated"
HEADER = '"""Generated from protos/ by `make protos` (scripts/gen_protos.py). Do not edit."""\n'
_ABS_IMPORT = re.compile(r"^from recsys\.v1 import (\w+_pb2)", re.MULTILINE)


def generate(out: Path) -> None:
    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in PROTO_ROOT.rglob("*.proto"))
    include = Path(protoc.__file__).parent / "_proto"
    out.mkdir(parents=True, exist_ok=True)
    rc = protoc.main([
        "grpc_tools.protoc", f"-I{PROTO_ROOT}", f"-I{include}",
        f"--python_out={out}", f"--pyi_out={out}", f"--grpc_python_out={out}", *protos,
    ])
    if rc != 0:
        raise SystemExit(f"protoc failed with exit code {rc}")
    for path in out.rglob("*_grpc.py"):
        path.write_text(_ABS_IMPORT.sub(r"from . import \1", path.read_text()))
    for folder in [out, *[p for p in out.rglob("*") if p.is_dir()]]:
        (folder / "__init__.py").write_text(HEADER)


def differences(a: Path, b: Path) -> list[str]:
    files_a = {p.relative_to(a) for p in a.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    files_b = {p.relative_to(b) for p in b.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    diffs = [f"only in one tree: {p}" for p in sorted(files_a ^ files_b)]
    diffs += [f"differs: {p}" for p in sorted(files_a & files_b) if not filecmp.cmp(a / p, b / p, shallow=False)]
    return diffs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if client/generated/ is stale")
    args = parser.parse_args()
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            fresh = Path(tmp) / "generated"
            generate(fresh)
            diffs = differences(fresh, OUT)
        if diffs:
            print("client/generated/ is stale against protos/; run `make protos`:", *diffs, sep="\n  ")
            return 1
        print("client/generated/ is up to date")
        return 0
    if OUT.exists():
        shutil.rmtree(OUT)
    generate(OUT)
    print(f"generated {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
