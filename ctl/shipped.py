"""The shipped topologies: ``topologies/*.toml`` (and ``topologies/chaos/*.toml``),
installed with the package as ``ctl/topologies/`` (package data, setup.cfg), so that
``ctl start seed`` and ``ctl demo`` work from any folder, in a source tree and in an
installed wheel alike.

In the source tree ``ctl/topologies`` is a symbolic link to the top-level
``topologies/`` folder, which stays the one copy people edit (ARCHITECTURE.md, "The
shipped topologies", says why); a wheel holds real files there.

A command that takes a topology file also takes a shipped topology's name: a path that
exists is a file; otherwise ``seed`` (or ``seed.toml``, ``chaos/ring``) names the shipped
one. A name that is neither is refused naming both and listing the shipped names.
"""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path

SUFFIX = ".toml"


def folder() -> Path:
    """Where the shipped topologies are installed."""
    return Path(str(files("ctl") / "topologies"))


def shipped_names() -> list[str]:
    """Every shipped topology's name, ``seed`` and ``chaos/ring`` alike, sorted."""
    root = folder()
    return sorted(str(p.relative_to(root).with_suffix("")) for p in root.rglob("*" + SUFFIX))


def shipped_path(name: str) -> Path | None:
    """The shipped topology called ``name`` (with or without ``.toml``), or None."""
    if not name or name.startswith(("/", ".")) or ".." in Path(name).parts:
        return None
    candidate = folder() / (name if name.endswith(SUFFIX) else name + SUFFIX)
    return candidate if candidate.is_file() else None


def help_text(what: str = "a topology file") -> str:
    """The help of a TOPOLOGY argument: a file, or a shipped topology's name, each listed."""
    return f"{what}, or the name of a shipped topology: {', '.join(shipped_names())}"


def topology_path(text: str) -> str:
    """The file a command's TOPOLOGY argument means: ``text`` itself when such a path
    exists (or looks like a path: it has a folder in it), else the shipped topology of
    that name. Raises BadInput (exit 2) when it is neither, listing the shipped names."""
    from daemon.errors import BadInput

    if os.path.lexists(text) or (os.sep in text.rstrip(os.sep) and not shipped_path(text)):
        return text
    found = shipped_path(text)
    if found is not None:
        return str(found)
    raise BadInput(
        f"{text}: no such file, and no shipped topology of that name; the shipped ones: {', '.join(shipped_names())}"
    )
