"""scripts/make_secrets.py, the one command that makes docker-compose's token files (fast): the
files and their modes, nothing printed, nothing changed by a second run, rotate and retire in
place (the inode a container's bind mount holds stays the same)."""
from __future__ import annotations

import re
import stat

from scripts import make_secrets
from servekit.tokens import Credentials


def write(path, *lines: str):
    path.write_text("".join(line + "\n" for line in lines))
    return path


def test_make_secrets_creates_the_three_files_once(tmp_path, capsys):
    directory = tmp_path / "secrets"
    assert make_secrets.main(["--dir", str(directory)]) == 0
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    contents = {}
    for name in make_secrets.NAMES:
        path = directory / name
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
        contents[name] = path.read_text()
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}\n", contents[name])
    assert len(set(contents.values())) == 3
    Credentials(str(directory / "index_token"), str(directory / "index_read_token"))  # usable
    assert make_secrets.main(["--dir", str(directory)]) == 0   # again: nothing changes
    assert {n: (directory / n).read_text() for n in make_secrets.NAMES} == contents
    printed = capsys.readouterr().out
    assert "created" in printed and "kept" in printed
    assert not any(token.strip() in printed for token in contents.values())


def test_make_secrets_rotates_and_retires_in_place(tmp_path, capsys):
    directory = tmp_path / "secrets"
    make_secrets.main(["--dir", str(directory)])
    path = directory / "index_read_token"
    old, inode = path.read_text().strip(), path.stat().st_ino
    assert make_secrets.main(["--dir", str(directory), "--rotate", "index_read_token"]) == 0
    lines = path.read_text().split()
    assert lines[0] == old and len(lines) == 2 and path.stat().st_ino == inode
    assert make_secrets.main(["--dir", str(directory), "--retire", "index_read_token"]) == 0
    assert path.read_text().split() == lines[1:] and path.stat().st_ino == inode
    assert old not in capsys.readouterr().out
    write(path)
    assert make_secrets.main(["--dir", str(directory), "--retire", "index_read_token"]) == 1
