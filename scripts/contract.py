"""The contract checks of `make contract` (and `make test`): `buf lint` and `buf breaking` on protos/.

    python3 scripts/contract.py                 # lint, then breaking against protos/CONTRACT_BASE
    python3 scripts/contract.py --against main  # breaking against another commit, branch or tag

`buf lint` applies buf.yaml's rules (STANDARD, with our listed exceptions). `buf breaking` (FILE
category) compares protos/ with protos/ as it was at the commit named in protos/CONTRACT_BASE, the
last released contract: a removed or renumbered field, a changed type or a renamed RPC fails it;
new fields and RPCs pass. A committed base, not HEAD~1, because CI checks a push of several commits
at once: only a fixed base catches a break made in any of them. The base must be in the clone's
history: a shallow clone fails with a one-line error saying how to fetch it.

The Buf CLI is the npm package @bufbuild/buf pinned in tools/package-lock.json, installed into
tools/node_modules on first use (scripts/node_deps.py). Standard library only: no .venv needed.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import node_deps  # a sibling: run as a script, scripts/ is first on sys.path

ROOT = Path(__file__).resolve().parent.parent
BASE_FILE = ROOT / "protos" / "CONTRACT_BASE"


class ContractError(RuntimeError):
    """The check could not run (no base commit, no git, no npm): the message says what to do."""


def read_base(path: Path = BASE_FILE) -> str:
    """The commit (or tag) in CONTRACT_BASE: its first line that is neither blank nor a comment."""
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            return line.strip()
    raise ContractError(f"{path.relative_to(ROOT)} names no commit")


def buf() -> Path:
    try:
        return node_deps.ensure(ROOT / "tools") / ".bin" / "buf"
    except node_deps.NodeMissing as exc:
        raise ContractError(f"cannot install the Buf CLI: {exc}") from None


def check_history(ref: str, root: Path = ROOT) -> str:
    """The full commit id of `ref`; ContractError when this clone does not have it."""
    done = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
                          cwd=root, capture_output=True, text=True)
    if done.returncode == 0:
        return done.stdout.strip()
    inside = subprocess.run(["git", "rev-parse", "--is-shallow-repository"], cwd=root,
                            capture_output=True, text=True)
    if inside.returncode != 0:
        raise ContractError("not a git checkout: `buf breaking` needs the history of protos/; "
                            "run it in a clone of the repository")
    shallow = inside.stdout.strip() == "true"
    hint = ("this is a shallow clone: fetch the history (git fetch --unshallow) and run it again"
            if shallow else "fetch main (git fetch origin main) or fix protos/CONTRACT_BASE")
    raise ContractError(f"the contract base {ref} is not in this clone's history: {hint}")


def lint(buf_cli: Path, root: Path = ROOT) -> int:
    return subprocess.run([str(buf_cli), "lint"], cwd=root).returncode


def breaking(buf_cli: Path, against: str, root: Path = ROOT) -> int:
    """buf breaking on protos/ against protos/ at commit `against` of this clone's .git."""
    # buf clones .git itself; `.git` may be a file (a worktree) or a folder (a clone): both work.
    return subprocess.run([str(buf_cli), "breaking", "protos", "--against",
                           f".git#ref={against},subdir=protos"], cwd=root).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", metavar="REF",
                        help="commit, branch or tag to compare with (default: protos/CONTRACT_BASE)")
    args = parser.parse_args(argv)
    try:
        ref = args.against or read_base()
        commit = check_history(ref)
        buf_cli = buf()
    except ContractError as exc:
        print(f"contract: error: {exc}", file=sys.stderr)
        return 1
    if lint(buf_cli) != 0:
        print("contract: buf lint failed (rules and exceptions: buf.yaml)", file=sys.stderr)
        return 1
    if breaking(buf_cli, commit) != 0:
        print(f"contract: protos/ breaks the released contract at {ref} (buf breaking, FILE): "
              "keep old fields and RPCs, add new ones instead (docs/client.md#the-contract)",
              file=sys.stderr)
        return 1
    print(f"contract: buf lint passed; no breaking change against {ref}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
