"""The hostile-input and catalog fuzz tests, longer: `python -m bench.fuzz --examples 500`.

Runs tests/test_hostile_input.py, tests/test_csv_fuzz.py and tests/test_catalog_formats.py with RECSYS_FUZZ_EXAMPLES=N (the
tests' own default is 25 per property, for `make test`) and prints their report: cases tried per
RPC and the statuses seen. Real services on loopback, started by the tests.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = ["tests/test_hostile_input.py", "tests/test_csv_fuzz.py", "tests/test_catalog_formats.py"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fuzz", description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=500, help="examples per property")
    args = parser.parse_args(argv)
    if args.examples < 1:
        parser.error("--examples must be at least 1")
    env = {**os.environ, "RECSYS_FUZZ_EXAMPLES": str(args.examples)}
    return subprocess.call([sys.executable, "-m", "pytest", "-q", "-s", *TESTS], cwd=ROOT, env=env)


if __name__ == "__main__":
    sys.exit(main())
