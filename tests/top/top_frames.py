"""Frames read back through pyte, and the shipped topologies as rosters: helpers for the
tests of ``ctl top`` (a module of its own name, so that it never collides with another
test directory's conftest)."""

from __future__ import annotations

import re
from pathlib import Path

import pyte

from ctl.top.paint import Painter
from ctl.top.view import roster_from_topology

ROOT = Path(__file__).resolve().parents[2]
SGR = re.compile(r"\x1b\[[0-9;]*m")


def visible(line: str) -> str:
    """A rendered line without its SGR sequences: what takes up columns."""
    return SGR.sub("", line)


def screen_of(lines: list[str], width: int, height: int) -> pyte.Screen:
    """The frame as a terminal shows it: painted (as the loop writes it) into pyte."""
    screen = pyte.Screen(width, height)
    pyte.Stream(screen).feed(Painter().paint(lines, width, height))
    return screen


def row_of(screen: pyte.Screen, name: str, start: int = 4) -> int:
    """The tree row of node ``name``: cursor column, guides, then the name itself."""
    own = re.compile(r"^[▶> ][│├└─╌|`\-. …~]*" + re.escape(name) + r"( |$)")
    for y, line in enumerate(screen.display):
        if y >= start and own.match(line):
            return y
    raise AssertionError(f"node {name!r} not on screen:\n" + "\n".join(screen.display))


def chars(screen: pyte.Screen, y: int, x: int, n: int):
    return [screen.buffer[y][x + i] for i in range(n)]


def roster(name: str):
    from daemon.topology import load

    return roster_from_topology(load(ROOT / "topologies" / name))
