"""One frozen config dataclass per service, filled from flags with environment fallbacks.

    config = config_from_args(MyConfig, prog="python -m my_service", description="...",
                              env_name=lambda field: "MY_" + field.upper(), help={...})

Every dataclass field becomes `--field-name` (type and default from the field); an environment
variable named by `env_name(field)` replaces the default; the flag wins over both. A config class
may define `problem() -> str | None`; a problem stops argument parsing with that message.
"""
from __future__ import annotations

import argparse
import os
from dataclasses import fields
from typing import Callable, Mapping, TypeVar

T = TypeVar("T")


def config_from_args(cls: type[T], *, prog: str, description: str, env_name: Callable[[str], str],
                     help: Mapping[str, str] | None = None, argv: list[str] | None = None,
                     environ: Mapping[str, str] | None = None) -> T:
    env = os.environ if environ is None else environ
    defaults = cls()
    parser = argparse.ArgumentParser(prog=prog, description=description)
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
        parser.add_argument("--" + f.name.replace("_", "-"), dest=f.name, type=kind, default=default,
                            help=f"{text} (env {name}, default {getattr(defaults, f.name)!r})".lstrip())
    config = cls(**vars(parser.parse_args(argv)))
    problem = config.problem() if hasattr(config, "problem") else None
    if problem:
        parser.error(problem)
    return config
