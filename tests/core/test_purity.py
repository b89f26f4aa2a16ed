"""The core is pure (ARCHITECTURE.md, "The node core"): no module under daemon/core imports a socket, clock,
random generator, event loop, OS access or wire codec. Checked by parsing the source
with ``ast``, so a lazy import inside a function is caught too."""

from __future__ import annotations

import ast
import pathlib

import pytest

import daemon.core

FORBIDDEN = {
    "socket", "zmq", "time", "random", "asyncio", "selectors", "threading", "datetime",
    "os", "msgpack",
}
CORE = pathlib.Path(daemon.core.__file__).parent
MODULES = sorted(CORE.rglob("*.py"))


def imported_roots(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, top-level package) of every import in ``tree``; relative imports stay
    inside the core and are not listed."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name.split(".")[0]) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id == "__import__" and node.args
              and isinstance(node.args[0], ast.Constant)):
            found.append((node.lineno, str(node.args[0].value).split(".")[0]))
    return found


def test_the_core_has_modules():
    names = {m.name for m in MODULES}
    assert {"echo.py", "finn.py", "waves.py"} <= names


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(CORE)))
def test_core_module_is_pure(path):
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    bad = [f"{path.name}:{line} imports {name}" for line, name in imported_roots(tree) if name in FORBIDDEN]
    assert bad == []


def test_the_checker_catches_each_form_of_import():
    source = "import os.path\nfrom time import monotonic\ndef f():\n    import zmq\n    __import__('random')\n"
    assert sorted(name for _, name in imported_roots(ast.parse(source))) == ["os", "random", "time", "zmq"]
