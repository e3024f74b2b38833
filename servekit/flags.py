"""One frozen config dataclass per service, filled from flags with environment fallbacks.

    config = config_from_args(MyConfig, prog="python -m my_service", description="...",
                              env_name=lambda field: "MY_" + field.upper(), help={...})

Every dataclass field becomes `--field-name` (type and default from the field); an environment
variable named by `env_name(field)` replaces the default; the flag wins over both. A config class
may define `problem() -> str | None`; a problem stops argument parsing with that message: one
line on stderr (`<prog>: error: <message>`, no usage block; `--help` lists the flags), exit 2.

`common_problem(config)` holds the checks every service's `problem()` starts with: every float
flag finite (seconds at most threading.TIMEOUT_MAX, past which a wait raises OverflowError), a
`log_level` that logging knows, and a `metrics_port` other than the `port`.
"""
from __future__ import annotations

import argparse
import logging
import math
import os
import threading
from dataclasses import fields
from typing import Callable, Mapping, NoReturn, TypeVar

T = TypeVar("T")

# What --log-level accepts (any case): logging's level names (WARN and FATAL too, as ever).
LOG_LEVELS = tuple(logging.getLevelNamesMapping())
LOG_LEVELS_SHOWN = "DEBUG, INFO, WARNING, ERROR or CRITICAL"


class _OneLineParser(argparse.ArgumentParser):
    """An error is one line, `<prog>: error: <message>`, exit 2 (no usage block: dozens of flags
    would bury the one line that matters)."""

    def error(self, message: str) -> NoReturn:
        one_line = " ".join(message.splitlines())
        self.exit(2, f"{self.prog}: error: {one_line}\n")


def flag_name(field_name: str) -> str:
    return "--" + field_name.replace("_", "-")


def config_from_args(cls: type[T], *, prog: str, description: str, env_name: Callable[[str], str],
                     help: Mapping[str, str] | None = None, argv: list[str] | None = None,
                     environ: Mapping[str, str] | None = None) -> T:
    env = os.environ if environ is None else environ
    defaults = cls()
    parser = _OneLineParser(prog=prog, description=description)
    for f in fields(cls):
        name = env_name(f.name)
        default = getattr(defaults, f.name)
        kind = type(default)
        raw = env.get(name)
        if raw:
            try:
                default = kind(raw)
            except ValueError:
                parser.error(f"environment variable {name}={raw!r} is not a valid {kind.__name__}")
        text = (help or {}).get(f.name, "")
        parser.add_argument(flag_name(f.name), dest=f.name, type=kind, default=default,
                            help=f"{text} (env {name}, default {getattr(defaults, f.name)!r})".lstrip())
    config = cls(**vars(parser.parse_args(argv)))
    problem = config.problem() if hasattr(config, "problem") else None
    if problem:
        parser.error(problem)
    return config


def common_problem(config) -> str | None:
    """The checks every service shares (see the module's doc), or None."""
    for f in fields(config):
        value = getattr(config, f.name)
        if isinstance(value, float):
            found = _float_problem(f.name, value)
            if found:
                return found
    level = getattr(config, "log_level", "INFO")
    if level.upper() not in LOG_LEVELS:
        return f"--log-level must be one of {LOG_LEVELS_SHOWN} (any case), got {level!r}"
    metrics, port = getattr(config, "metrics_port", 0), getattr(config, "port", 0)
    if metrics and metrics == port:
        return (f"--metrics-port {metrics} is also --port: give /metrics a port of its own "
                "(or 0: no metrics endpoint)")
    return None


def _float_problem(name: str, value: float) -> str | None:
    scale = 1000 if name.endswith("_ms") else 1 if name.endswith("_s") else None
    if not math.isfinite(value):
        unit = {1000: " of milliseconds", 1: " of seconds"}.get(scale, "")
        return f"{flag_name(name)} must be a finite number{unit}, got {value}"
    if scale and value > threading.TIMEOUT_MAX * scale:
        return (f"{flag_name(name)} must be at most {int(threading.TIMEOUT_MAX * scale)} "
                f"(the longest wait Python allows), got {value:g}")
    return None
