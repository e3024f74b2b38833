"""`recsys` / `python -m client`: the command line over RecsysClient.

Subcommands come from command modules: each has `register(add)`, where
`add(name, help=..., run=fn)` returns the argparse parser to put the command's arguments on, and
`fn(args, client) -> int | None` does the work (None means exit code 0). The global options
(--index, --embedder, --timeout, --json, --token-file, --tls...) are accepted before or after the
subcommand. To add a command, add its module to COMMAND_MODULES.

A failure prints one line on stderr (`recsys: error: ...`) and exits 1 (2 for bad usage); an
expected error never shows a traceback.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Callable, Sequence

from . import CONTRACT, __version__
from .access import ClientTls, TlsError, TokenError, load_token
from .errors import RecsysError
from .recsys_client import DEFAULT_EMBEDDER, DEFAULT_INDEX, DEFAULT_TIMEOUT_S, RecsysClient

PROG = "recsys"
COMMAND_MODULES = (".commands", ".write_commands", ".evaluate")  # relative to this package

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

Run = Callable[[argparse.Namespace, RecsysClient], "int | None"]


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text}")
    return value


def _global_options(parser: argparse.ArgumentParser, *, with_defaults: bool) -> None:
    """The options every command takes. On subparsers their defaults are SUPPRESSed, so that a
    value given before the subcommand is not overwritten by the subparser's default."""
    env = os.environ

    def default(value):
        return value if with_defaults else argparse.SUPPRESS

    group = parser.add_argument_group("connection and output")
    group.add_argument("--index", metavar="HOST:PORT",
                       default=default(env.get("RECSYS_INDEX", DEFAULT_INDEX)),
                       help=f"index service (env RECSYS_INDEX, default {DEFAULT_INDEX})")
    group.add_argument("--embedder", metavar="HOST:PORT",
                       default=default(env.get("RECSYS_EMBEDDER", DEFAULT_EMBEDDER)),
                       help=f"embedder service (env RECSYS_EMBEDDER, default {DEFAULT_EMBEDDER})")
    group.add_argument("--timeout", metavar="SECONDS", type=_positive_float,
                       default=default(env.get("RECSYS_TIMEOUT", str(DEFAULT_TIMEOUT_S))),
                       help="deadline of each call in seconds "
                            f"(env RECSYS_TIMEOUT, default {DEFAULT_TIMEOUT_S:g})")
    group.add_argument("--json", action="store_true", default=default(False),
                       help="print machine-readable JSON")
    group.add_argument("--token-file", metavar="PATH", default=default(None),
                       help="file holding the one bearer token to send to servers that require "
                            "one: the index service's read-only token (search, similar, get, "
                            "list, stats) or its write token (env RECSYS_TOKEN_FILE, or the "
                            "token itself in RECSYS_TOKEN)")
    group.add_argument("--tls", action="store_true", default=default(False),
                       help="connect with TLS, trusting the system's CA certificates")
    group.add_argument("--tls-ca", metavar="PEM", default=default(None),
                       help="connect with TLS, trusting this CA certificate (env RECSYS_TLS_CA)")
    group.add_argument("--tls-client-cert", metavar="PEM", default=default(None),
                       help="client certificate for mutual TLS (env RECSYS_TLS_CLIENT_CERT)")
    group.add_argument("--tls-client-key", metavar="PEM", default=default(None),
                       help="its private key (env RECSYS_TLS_CLIENT_KEY)")


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line on stderr, pointing at --help, exit code 2."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser(command_modules: Sequence[str] = COMMAND_MODULES) -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG, description="Search the product catalog served by recsys (index service) and "
                               "embed texts (embedder service).")
    parser.add_argument("--version", action="version",
                        version=f"recsys-client {__version__} (contract {CONTRACT})")
    _global_options(parser, with_defaults=True)
    common = _Parser(add_help=False)
    _global_options(common, with_defaults=False)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, *, help: str, run: Run, **kwargs) -> argparse.ArgumentParser:
        sub = subparsers.add_parser(name, help=help, description=kwargs.pop("description", help),
                                    parents=[common], **kwargs)
        sub.set_defaults(run=run)
        return sub

    for module_name in command_modules:
        module = importlib.import_module(module_name, __package__)
        if hasattr(module, "register"):
            module.register(add)
    return parser


def tls_from_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> ClientTls | None:
    """The TLS settings of the flags (or RECSYS_TLS_*); a certificate without its key (or the
    reverse) is bad usage (exit 2), like any other flag error."""
    try:
        return ClientTls.from_flags(args.tls_ca, args.tls_client_cert, args.tls_client_key,
                                    enabled=args.tls)
    except TlsError as exc:
        parser.error(str(exc))


def client_from_args(args: argparse.Namespace, tls: ClientTls | None) -> RecsysClient:
    """The client the global options describe (the token read and checked here)."""
    return RecsysClient(index=args.index, embedder=args.embedder, timeout=args.timeout,
                        credentials=tls.credentials() if tls else None,
                        token=load_token(args.token_file))


def _one_line(message: str) -> str:
    return " ".join(str(message).split())


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # exits 2 on bad usage (a bad RECSYS_TIMEOUT included)
    tls = tls_from_args(args, parser)
    try:
        with client_from_args(args, tls) as client:
            code = args.run(args, client)
        sys.stdout.flush()
        return EXIT_OK if code is None else code
    except (RecsysError, TlsError, TokenError) as exc:
        print(f"{PROG}: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:  # e.g. an unreadable --tls-ca file
        if isinstance(exc, BrokenPipeError):  # `recsys search ... | head`: not an error
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return EXIT_OK
        print(f"{PROG}: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
