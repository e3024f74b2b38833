"""Token files and roles without a server (fast): the file format and servekit.tokens.Credentials
(roles, constant-time comparison of every token, reload that keeps the old tokens on a broken
file, the file watcher)."""
from __future__ import annotations

import logging
import os
import time

import pytest

from client.access import TokenError, load_token, parse_tokens
from servekit import tokens as tokens_module
from servekit.access import AccessError, server_access
from servekit.metrics import TOKEN_RELOADS
from servekit.tokens import Credentials, Role

FULL_A, FULL_B = "full-token-aaaaaaaaaaaaaaaa", "full-token-bbbbbbbbbbbbbbbb"
READ_A, READ_B = "read-token-aaaaaaaaaaaaaaaa", "read-token-bbbbbbbbbbbbbbbb"


def write(path, *lines: str):
    path.write_text("".join(line + "\n" for line in lines))
    return path


@pytest.fixture
def files(tmp_path):
    return write(tmp_path / "full", FULL_A), write(tmp_path / "read", READ_A)


# -- the file format ------------------------------------------------------------------------------

def test_one_token_per_line_comments_and_blank_lines_ignored():
    text = f"# catalog updater\n\n  {FULL_A}  \r\n# next one, from the 1st\n{FULL_B}\n{FULL_A}\n"
    assert parse_tokens(text, "f") == [FULL_A, FULL_B]  # in order, the repeat dropped


@pytest.mark.parametrize("text, says", [
    ("", "is empty"), ("# only a comment\n\n", "is empty"),
    ("good-token-1234567890\nsecret with-space\n", r"\(line 2\) must be printable ASCII"),
    ("secret\x01token\n", r"\(line 1\) must be printable ASCII")])
def test_a_bad_file_is_named_with_its_line_and_never_shows_a_token(text, says):
    with pytest.raises(TokenError, match=f"the file {says}") as caught:
        parse_tokens(text, "the file")
    assert "secret" not in str(caught.value) and "good-token" not in str(caught.value)


def test_a_client_sends_one_token_so_its_file_holds_one(tmp_path):
    assert load_token(write(tmp_path / "one", "# mine", FULL_A), env={}) == FULL_A
    with pytest.raises(TokenError, match="holds 2 tokens, and a caller sends one"):
        load_token(write(tmp_path / "two", FULL_A, FULL_B), env={})


# -- roles ----------------------------------------------------------------------------------------

def test_each_token_grants_its_role(files):
    credentials = Credentials(*map(str, files))
    assert credentials.role_of(FULL_A) is Role.FULL
    assert credentials.role_of(READ_A) is Role.READ
    assert credentials.role_of(READ_B) is None and credentials.role_of("") is None
    assert credentials.role_of(FULL_A + "x") is None and credentials.role_of(FULL_A[:-1]) is None
    assert credentials.first_full_token == FULL_A and credentials.has_read_role
    assert FULL_A not in credentials.counts() and "1 full-access, 1 read-only" in credentials.counts()


def test_every_token_is_compared_whichever_matches(tmp_path, monkeypatch):
    """No early exit: the same number of constant-time comparisons for the first token, the last
    one and an unknown one (so the time does not tell which token, or which role, matched)."""
    credentials = Credentials(str(write(tmp_path / "full", FULL_A, FULL_B)),
                              str(write(tmp_path / "read", READ_A, READ_B)))
    calls = []
    real = tokens_module.hmac.compare_digest
    monkeypatch.setattr(tokens_module.hmac, "compare_digest",
                        lambda a, b: calls.append(len(a) + len(b)) or real(a, b))
    for token in (FULL_A, FULL_B, READ_A, READ_B, "unknown-token-xxxxxxxx", "x" * 5000):
        calls.clear()
        credentials.role_of(token)
        assert calls == [64] * 4, token  # 4 tokens, each compared as a 32-byte digest


@pytest.mark.parametrize("full, read, says", [
    ([FULL_A], [FULL_A], "also in the full-access token file"),
    (["short"], [], "shorter than 16 characters"),
    ([FULL_A], ["short-read"], "read-only token file .* shorter than 16"),
])
def test_unusable_token_sets_are_refused_at_start(tmp_path, full, read, says):
    full_file = write(tmp_path / "full", *full)
    read_file = write(tmp_path / "read", *read) if read else ""
    with pytest.raises(AccessError, match=says) as caught:
        server_access(token_file=str(full_file), read_token_file=str(read_file), env={})
    assert "short" not in str(caught.value).replace("shorter", "") and FULL_A not in str(caught.value)


def test_a_read_token_file_needs_a_full_access_token(files):
    with pytest.raises(AccessError, match="--read-token-file .* needs a full-access token too"):
        server_access(read_token_file=str(files[1]), env={})


def test_server_access_describes_counts_only(files):
    access = server_access(token_file=str(files[0]), read_token_file=str(files[1]), env={})
    assert access.token == FULL_A and FULL_A not in access.describe()
    assert access.describe() == "plaintext, 1 full-access, 1 read-only token(s) required"
    assert server_access(env={}).tokens is None and server_access(env={}).reload() is False


@pytest.mark.parametrize("name", ["RECSYS_TOKEN_FILE", "RECSYS_TOKEN"])
def test_a_server_never_takes_the_clients_token_from_the_environment(files, name):
    """The CLI's token, often a read-only one, used to become the server's full-access token
    (every read token then wrote); a server without --token-file now refuses to start."""
    value = str(files[1]) if name.endswith("FILE") else FULL_B
    with pytest.raises(AccessError, match=f"{name} is set where this server starts.*"
                                          "--token-file"):
        server_access(env={name: value})
    with pytest.raises(AccessError, match=name):
        server_access(env={name: value}, read_token_file=str(files[1]))
    # With its own --token-file, the client's variable is none of the server's business.
    assert server_access(token_file=str(files[0]), env={name: value}).token == FULL_A


# -- reload ---------------------------------------------------------------------------------------

def test_reload_switches_to_the_new_tokens(files):
    credentials = Credentials(*map(str, files))
    ok = TOKEN_RELOADS.labels("ok")._value.get()
    write(files[0], FULL_A, FULL_B)          # rotation, step 1: old and new both valid
    write(files[1], READ_B)
    assert credentials.reload()
    assert credentials.role_of(FULL_B) is Role.FULL and credentials.role_of(FULL_A) is Role.FULL
    assert credentials.role_of(READ_B) is Role.READ and credentials.role_of(READ_A) is None
    write(files[0], FULL_B)                  # step 3: the old one removed
    assert credentials.reload() and credentials.role_of(FULL_A) is None
    assert TOKEN_RELOADS.labels("ok")._value.get() == ok + 2


@pytest.mark.parametrize("breakage", ["missing", "empty", "bad line", "short", "overlap"])
def test_a_broken_file_keeps_every_previous_token_and_logs_one_line(files, caplog, breakage):
    credentials = Credentials(*map(str, files))
    errors = TOKEN_RELOADS.labels("error")._value.get()
    write(files[0], FULL_B)  # a good change to one file is not applied while the other is broken
    broken = files[1]
    if breakage == "missing":
        broken.unlink()
    else:
        write(broken, *{"empty": [], "bad line": [READ_B, "hidden\tsecret"], "short": ["abc"],
                        "overlap": [FULL_B]}[breakage])
    with caplog.at_level(logging.INFO, logger="servekit.tokens"):
        assert credentials.reload() is False
    assert credentials.role_of(FULL_A) is Role.FULL and credentials.role_of(READ_A) is Role.READ
    assert credentials.role_of(FULL_B) is None and credentials.role_of(READ_B) is None
    lines = [r for r in caplog.records if r.name == "servekit.tokens"]
    assert len(lines) == 1 and lines[0].levelno == logging.ERROR
    assert "keeping the previous tokens" in lines[0].getMessage()
    assert str(broken) in lines[0].getMessage()
    for token in (FULL_A, FULL_B, READ_A, READ_B, "abc", "hidden"):
        assert token not in lines[0].getMessage().replace(str(broken), "")
    assert TOKEN_RELOADS.labels("error")._value.get() == errors + 1


def _eventually(condition, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def test_the_watcher_picks_up_edits_in_place_and_files_replaced(files, tmp_path, caplog):
    credentials = Credentials(*map(str, files))
    stop = credentials.watch(0.05)
    try:
        with open(files[0], "a") as f:           # appended in place: same inode
            f.write(FULL_B + "\n")
        assert _eventually(lambda: credentials.role_of(FULL_B) is Role.FULL)
        replacement = write(tmp_path / "new-read", READ_B)
        os.replace(replacement, files[1])        # renamed over: a new inode
        assert _eventually(lambda: credentials.role_of(READ_B) is Role.READ)
        assert credentials.role_of(READ_A) is None
        with caplog.at_level(logging.ERROR, logger="servekit.tokens"):
            write(files[1])                      # emptied: refused once, not every 50 ms
            time.sleep(0.5)
        assert len([r for r in caplog.records if r.name == "servekit.tokens"]) == 1
        assert credentials.role_of(READ_B) is Role.READ
    finally:
        stop.set()


def test_no_watcher_when_the_interval_is_zero_or_nothing_is_a_file(files):
    assert Credentials(*map(str, files)).watch(0) is None
    assert Credentials(fixed=FULL_A).watch(1.0) is None
    assert Credentials(fixed=FULL_A).reload() is False
