"""Who holds which token: a server's bearer tokens by role, loaded from files, reloaded live.

Two roles, ordered: READ (the read RPCs a service lists; servekit.auth) < FULL (everything).
`Credentials` holds the tokens of each role from token files (client.access.parse_tokens: one
token per line, blank lines and `#` comments ignored; each at least MIN_TOKEN_CHARS long), or one
fixed token (RECSYS_TOKEN).

- `role_of(token)`: the role a presented token grants, or None. Every token is compared (SHA-256
  of each side, so lengths are equal, then `hmac.compare_digest`, without stopping at the first
  match): the time taken does not depend on which token matched or how much of one did.
- `reload()`: reads every file again; a broken one (unreadable, empty, a bad line, a read token
  that is also a full one) keeps ALL the previous tokens and logs one error line naming the file
  and its flag (never a token): an operator's typo neither locks everyone out nor opens the door.
- `watch(interval_s)`: a daemon thread that reloads when a file's stat (inode, size, mtime,
  ctime) changes, checked every `interval_s` (a rename over the file, as editors and Kubernetes
  secret volumes do, counts). SIGHUP reloads at once (servekit.lifecycle calls `reload`).
Only counts are logged and counted (TOKEN_RELOADS); tokens are kept as digests.
"""
from __future__ import annotations

import enum
import hashlib
import hmac
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from client.access import TokenError, check_token, parse_tokens

from .metrics import TOKEN_RELOADS

log = logging.getLogger(__name__)

DEFAULT_RELOAD_S = 5.0
# A server refuses shorter tokens: guessable, and a half-written line is never a usable token.
MIN_TOKEN_CHARS = 16


class Role(enum.IntEnum):
    READ = 1
    FULL = 2


ROLE_NAMES = {Role.READ: "read-only", Role.FULL: "full-access"}


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("ascii", "replace")).digest()


@dataclass(frozen=True)
class _Table:
    """One consistent set of tokens (swapped whole on reload)."""
    full: tuple[bytes, ...]
    read: tuple[bytes, ...]
    first_full: str  # what the service sends where it is a client itself (client_token)


def read_tokens(path: str, source: str) -> list[str]:
    """The tokens of the token file at `path` (client.access.parse_tokens); TokenError naming
    `source` (e.g. "the token file (--token-file) /etc/token": the file and the flag it came
    from) when unreadable, empty or holding a bad line."""
    try:
        text = Path(path).read_text(encoding="ascii")
    except (OSError, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise TokenError(f"cannot read {source}: {reason}") from None
    return parse_tokens(text, source)


def _read(path: str, role: str, flag: str) -> list[str]:
    source = f"the {role} token file ({flag}) {path}"
    tokens = read_tokens(path, source)
    short = sum(len(token) < MIN_TOKEN_CHARS for token in tokens)
    if short:
        raise TokenError(f"{source} holds {short} token(s) shorter than "
                         f"{MIN_TOKEN_CHARS} characters: use long random tokens "
                         "(python -m scripts.make_secrets writes 43)")
    return tokens


def _fixed(token: str) -> str:
    token = check_token(token, "the token")
    if len(token) < MIN_TOKEN_CHARS:
        raise TokenError(f"the token is shorter than {MIN_TOKEN_CHARS} characters: use a long "
                         "random token")
    return token


class Credentials:
    """The tokens of each role. `full_file` / `read_file`: token files (reloadable); `fixed`: one
    full-access token given directly (not reloaded). `full_flag` / `read_flag`: where each file
    came from (a flag or environment variable), named in every error. Raises TokenError when the
    start-up load fails, with the message naming the file and its flag."""

    def __init__(self, full_file: str = "", read_file: str = "", fixed: str | None = None, *,
                 full_flag: str = "--token-file", read_flag: str = "--read-token-file"):
        if not full_file and fixed is None:
            raise TokenError("no full-access token: give --token-file (a read-only token needs "
                             "a full-access one: without it anyone could write)")
        self.full_file, self.read_file = str(full_file or ""), str(read_file or "")
        self.full_flag, self.read_flag = full_flag, read_flag
        self._fixed = _fixed(fixed) if fixed is not None else None
        self._lock = threading.Lock()  # one reload at a time (SIGHUP and the watcher)
        self._table = self._load()
        self._stats = self._stat_all()

    @property
    def has_read_role(self) -> bool:
        return bool(self.read_file)

    @property
    def reloadable(self) -> bool:
        return bool(self.full_file or self.read_file)

    @property
    def first_full_token(self) -> str:
        return self._table.first_full

    def counts(self) -> str:
        table = self._table
        text = f"{len(table.full)} full-access"
        return text + (f", {len(table.read)} read-only" if self.read_file else "") + " token(s)"

    def _load(self) -> _Table:
        full = (_read(self.full_file, "full-access", self.full_flag) if self.full_file
                else [self._fixed])
        read = _read(self.read_file, "read-only", self.read_flag) if self.read_file else []
        if set(full) & set(read):
            raise TokenError(f"the read-only token file ({self.read_flag}) {self.read_file} holds "
                             f"a token that is also in the full-access token file "
                             f"({self.full_flag}) {self.full_file}: a read-only token must "
                             "differ from every full-access one")
        return _Table(tuple(map(_digest, full)), tuple(map(_digest, read)), full[0])

    def role_of(self, token: str) -> Role | None:
        """The role `token` grants (FULL wins), or None; constant time over all tokens."""
        table, presented = self._table, _digest(token)
        full = read = False
        for known in table.full:
            full |= hmac.compare_digest(presented, known)
        for known in table.read:
            read |= hmac.compare_digest(presented, known)
        return Role.FULL if full else Role.READ if read else None

    # -- reloading ---------------------------------------------------------------------------

    def _stat_all(self) -> tuple:
        def stat(path):
            try:
                s = os.stat(path)
            except OSError:
                return None
            return (s.st_dev, s.st_ino, s.st_size, s.st_mtime_ns, s.st_ctime_ns)
        return tuple(stat(p) for p in (self.full_file, self.read_file) if p)

    def reload(self, reason: str = "SIGHUP") -> bool:
        """Read the files again; True when the new tokens are in use. On failure the previous
        tokens stay and one error line is logged."""
        if not self.reloadable:
            log.info("%s: no token file to reload", reason)
            return False
        with self._lock:
            self._stats = self._stat_all()
            try:
                table = self._load()
            except TokenError as exc:
                TOKEN_RELOADS.labels("error").inc()
                log.error("%s: token reload failed, keeping the previous tokens: %s", reason, exc)
                return False
            self._table = table
        TOKEN_RELOADS.labels("ok").inc()
        log.info("%s: tokens reloaded: %s", reason, self.counts())
        return True

    def changed(self) -> bool:
        return self._stat_all() != self._stats

    def watch(self, interval_s: float = DEFAULT_RELOAD_S) -> threading.Event | None:
        """Reload whenever a file changes, checked every `interval_s` (0: never; SIGHUP only).
        Returns the Event that stops the thread (None when nothing is watched)."""
        if interval_s <= 0 or not self.reloadable:
            return None
        stop = threading.Event()

        def loop():
            while not stop.wait(interval_s):
                if self.changed():
                    self.reload("token file changed")

        threading.Thread(target=loop, name="token-watch", daemon=True).start()
        return stop
