"""The docs keep up with the code (source only, no services: fast).

- Every relative link in the README and docs/ points at a file that exists, and every `#anchor`
  at a heading of that page (GitHub's heading ids).
- Every flag of both services (their config dataclasses) and of every `recsys` command is named
  somewhere in the README or docs/, so a new flag cannot ship undocumented.
"""
from __future__ import annotations

import argparse
import re
from dataclasses import fields
from pathlib import Path

import pytest

from client.cli import build_parser
from embedder_service.config import EmbedderConfig
from index_service.config import IndexConfig
from tests.procs import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")
FENCE = re.compile(r"^(```|~~~)")


def _outside_fences(text: str) -> list[str]:
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def heading_id(heading: str) -> str:
    """GitHub's id for a heading: link targets dropped, lower case, punctuation gone, '-' for ' '."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip()).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    for line in _outside_fences(page.read_text(encoding="utf-8")):
        match = re.match(r"#{1,6}\s+(.*)", line)
        if match:
            base = heading_id(match.group(1))
            count = seen.get(base, 0)
            seen[base] = count + 1
    return {base if n == 0 else f"{base}-{n}" for base, total in seen.items() for n in range(total)}


def broken_links(page: Path) -> list[str]:
    problems = []
    for line in _outside_fences(page.read_text(encoding="utf-8")):
        for target in LINK.findall(line):
            if re.match(r"[a-z]+:", target):
                continue  # http(s), mailto: not checked offline
            path, _, fragment = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            if not linked.exists():
                problems.append(f"{target}: no such file")
            elif fragment and linked.suffix == ".md" and fragment not in anchors(linked):
                problems.append(f"{target}: no heading with that id in {linked.name}")
    return problems


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_and_anchor_resolves(page):
    assert broken_links(page) == []


@pytest.mark.parametrize("heading, expected", [
    ("## Five-minute tour", "five-minute-tour"),
    ("### `make run`", "make-run"),
    ("## How it fits together", "how-it-fits-together"),
    ("### Backends side by side (bf16, fp32)", "backends-side-by-side-bf16-fp32"),
    ("## The [client](client.md) for your service", "the-client-for-your-service"),
    ("### embedder_service flags", "embedder_service-flags"),
])
def test_heading_ids_follow_github(heading, expected):
    assert heading_id(heading.lstrip("# ")) == expected


def test_a_broken_anchor_is_reported(tmp_path):
    (tmp_path / "other.md").write_text("# Other\n\n## Flags\n\n```\n## not a heading\n```\n")
    page = tmp_path / "page.md"
    page.write_text("[ok](other.md#flags) [gone](other.md#not-a-heading) [none](missing.md)\n")
    assert broken_links(page) == ["other.md#not-a-heading: no heading with that id in other.md",
                                  "missing.md: no such file"]


def _documentation() -> str:
    return "\n".join(page.read_text(encoding="utf-8") for page in PAGES)


def service_flags() -> list[str]:
    return ["--" + f.name.replace("_", "-") for config in (EmbedderConfig, IndexConfig)
            for f in fields(config)]


def cli_flags() -> list[str]:
    parser = build_parser()
    parsers = [parser] + [sub for action in parser._actions
                          if isinstance(action, argparse._SubParsersAction)
                          for sub in action.choices.values()]
    return sorted({option for p in parsers for action in p._actions
                   for option in action.option_strings
                   if option.startswith("--") and option not in ("--help", "--version")})


def test_the_flag_lists_are_read():
    assert "--hybrid-alpha" in service_flags() and "--cache-dir" in service_flags()
    assert "--sweep-fusion" in cli_flags() and "--max-price" in cli_flags()


def test_every_service_and_cli_flag_is_documented():
    docs = _documentation()
    missing = [flag for flag in service_flags() + cli_flags()
               if not re.search(re.escape(flag) + r"(?![\w-])", docs)]
    assert missing == [], f"flags named nowhere in README.md or docs/: {missing}"
