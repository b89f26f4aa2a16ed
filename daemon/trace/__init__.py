"""Traces of waves: what nodes record (:mod:`daemon.trace.recorder`), the model of a
trace (:mod:`daemon.trace.model`), the files it is written to
(:mod:`daemon.trace.formats`), the wave properties checked on it
(:mod:`daemon.trace.check`) and the critical path shown from it
(:mod:`daemon.trace.report`).

``write(trace, path)`` is the one entry point that writes a trace: ``trace`` is a
:class:`~daemon.trace.model.Trace` or the model's dict, and the suffix of ``path``
chooses the format (.json for Perfetto, .shiviz, .svg/.png, .etrace/.etrace.json);
``check_path(path)`` refuses an unknown suffix before anything runs. Both import the
formats only when called: a node daemon imports this package for its recorder alone.
"""

from __future__ import annotations


def check_path(path) -> None:
    """BadInput naming ``path`` and the suffixes known unless :func:`write` can write
    there (called before a wave runs, so that a bad name fails at once)."""
    from daemon.trace.formats import suffix_of

    suffix_of(path)


def write(trace, path) -> None:
    """Write ``trace`` (a Trace or the model's dict) to ``path`` in the format its suffix
    names; BadInput for an unknown suffix or a bad trace, UserError when the file cannot
    be written or drawing lacks matplotlib."""
    from daemon.trace.formats import write as write_file

    write_file(trace, path)
