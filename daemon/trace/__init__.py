"""Traces of waves: what nodes recorded (daemon/trace/recorder.py), written to files.

Every trace goes to a file through :func:`write`. The raw form is the trace model's
dict as JSON, suffix ``.etrace`` or ``.etrace.json``; other suffixes are the drawing
formats of daemon/trace/formats.py, when that module is there.
"""

from __future__ import annotations

import importlib.util
import json
import os

from daemon.errors import BadInput

RAW_SUFFIXES = (".etrace", ".etrace.json")


def _formats():
    """daemon/trace/formats.py, or None while it is not there."""
    if importlib.util.find_spec("daemon.trace.formats") is None:
        return None
    from daemon.trace import formats

    return formats


def check_path(path) -> None:
    """BadInput naming ``path`` unless :func:`write` can write a trace there (checked
    before a wave runs, so a bad name fails at once)."""
    path = os.fspath(path)
    if path.endswith(RAW_SUFFIXES) or _formats() is not None:
        return
    raise BadInput(f"{path}: a trace is written as {' or '.join(RAW_SUFFIXES)} (the raw trace, JSON); "
                   "this installation has no other trace format")


def write(trace: dict, path) -> None:
    """Write ``trace`` (the trace model's dict) to ``path``, in the format its suffix
    names. BadInput for a suffix no writer knows; OSError if the file cannot be written."""
    path = os.fspath(path)
    if not path.endswith(RAW_SUFFIXES):
        formats = _formats()
        if formats is None:
            check_path(path)
        formats.write(trace, path)
        return
    with open(path, "w", encoding="utf-8") as f:
        json.dump(trace, f, separators=(",", ":"))
        f.write("\n")
