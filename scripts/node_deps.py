"""Install a folder's pinned npm packages (`npm ci` from its package-lock.json), once per lockfile.

    node_modules = ensure(ROOT / "tools")      # the Buf CLI, for scripts/contract.py
    node_modules = ensure(ROOT / "examples" / "node")   # the Node example's gRPC packages (tests)

`npm ci` installs exactly the lockfile's versions (checked against its integrity hashes) into
FOLDER/node_modules (gitignored), without running install scripts (--ignore-scripts: none of our
packages needs one). A stamp holding the lockfile's sha256 skips the install while the lockfile is
unchanged, so only the first call (or a changed lockfile) costs seconds.
"""
from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

STAMP = ".recsys-npm-ci"


class NodeMissing(RuntimeError):
    """npm (Node.js) is not installed, or `npm ci` failed; the message says what to do."""


def ensure(folder: Path) -> Path:
    """FOLDER/node_modules with exactly FOLDER/package-lock.json's packages in it."""
    lock = folder / "package-lock.json"
    modules = folder / "node_modules"
    digest = hashlib.sha256(lock.read_bytes()).hexdigest()
    stamp = modules / STAMP
    if stamp.is_file() and stamp.read_text().strip() == digest:
        return modules
    npm = shutil.which("npm")
    if npm is None:
        raise NodeMissing(f"npm is not installed: install Node.js 18+ with npm to use {folder.name}/ "
                          "(e.g. apt-get install nodejs npm)")
    done = subprocess.run([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=folder,
                          capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise NodeMissing(f"`npm ci` in {folder} failed (exit {done.returncode}):\n"
                          f"{done.stdout}{done.stderr}")
    stamp.write_text(digest + "\n")
    return modules
