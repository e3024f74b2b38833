"""The token files docker-compose.yml mounts as secrets: create them, rotate them, retire old ones.

    python -m scripts.make_secrets                    # or `make secrets`: create what is missing
    python -m scripts.make_secrets --rotate index_read_token   # add a new token, keep the old
    python -m scripts.make_secrets --retire index_read_token   # keep only the newest token

Files (in --dir, default ./secrets, which git ignores):
  index_token       the index service's full-access (write) tokens: the catalog updater's
  index_read_token  the index service's read-only tokens: the storefront's (search, get, list)
  embedder_token    the embedder's token, which only the index service holds

Each token is `secrets.token_urlsafe(32)` (43 characters, 256 random bits), one per line; the
newest is the last line. Existing files are kept (running it again rotates nothing). Tokens are
never printed: a caller's copy is `tail -n 1 secrets/index_read_token > storefront.token`.

Permissions: the folder is 0700 (no other user of this host can reach the files) and each file
0644, because docker-compose (1.x) bind-mounts a secret file with its owner and mode as they are
on the host, and the services run as an unprivileged user (uid 10001) in the image: a 0600 file
owned by you could not be read there.

--rotate and --retire rewrite the file in place (same inode): a container sees a bind-mounted file
change only that way; the services pick the change up within their --token-reload-s (5 s) or at
once on SIGHUP (`docker-compose kill -s SIGHUP index`). Rotation, step by step: docs/operations.md.
"""
from __future__ import annotations

import argparse
import os
import secrets
import sys
from pathlib import Path

NAMES = ("index_token", "index_read_token", "embedder_token")
DIR_MODE, FILE_MODE = 0o700, 0o644


def new_token() -> str:
    return secrets.token_urlsafe(32)


def _token_lines(path: Path) -> list[str]:
    lines = [line.strip() for line in path.read_text(encoding="ascii").splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def _rewrite(path: Path, tokens: list[str]) -> None:
    """Replace the file's content in place (a bind mount keeps pointing at this inode): emptied
    first, so that a reader sees an empty file (refused, the old tokens stay) or whole lines."""
    with open(path, "r+", encoding="ascii") as f:
        f.truncate(0)
        f.write("".join(token + "\n" for token in tokens))
        f.flush()
        os.fsync(f.fileno())


def create(directory: Path) -> list[str]:
    """Create the folder and every missing file; returns what was done, one line each."""
    directory.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    os.chmod(directory, DIR_MODE)
    done = []
    for name in NAMES:
        path = directory / name
        if path.exists():
            done.append(f"kept    {path} ({len(_token_lines(path))} token(s))")
            continue
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(new_token() + "\n")
        os.chmod(path, FILE_MODE)  # whatever the umask
        done.append(f"created {path}")
    return done


def rotate(directory: Path, name: str) -> str:
    path = directory / name
    tokens = _token_lines(path)
    _rewrite(path, [*tokens, new_token()])
    return (f"added a token to {path} ({len(tokens) + 1} now; the new one is the last line): "
            f"give it to the callers, then --retire {name}")


def retire(directory: Path, name: str) -> str:
    path = directory / name
    tokens = _token_lines(path)
    if not tokens:
        raise OSError(f"{path} holds no token: nothing to keep (run --rotate {name} first)")
    _rewrite(path, tokens[-1:])
    return f"kept only the newest token of {path} (retired {max(len(tokens) - 1, 0)})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.make_secrets",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path("secrets"),
                        help="folder of the token files (default ./secrets)")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--rotate", choices=NAMES, help="append a new token to this file")
    action.add_argument("--retire", choices=NAMES, help="keep only this file's newest token")
    args = parser.parse_args(argv)
    try:
        if args.rotate or args.retire:
            print(rotate(args.dir, args.rotate) if args.rotate else retire(args.dir, args.retire))
        else:
            print("\n".join(create(args.dir)))
    except (OSError, UnicodeError) as exc:
        print(f"make_secrets: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
