"""Faults injected into real node daemon processes, for tests/e2e/test_process_faults.py.

A test puts this folder first on ``PYTHONPATH`` and sets ``ECHOFINN_TEST_FAULT`` to
``NODE:FAULT``; Python imports this module at the start of every interpreter. In the one
process that runs ``python -m daemon ... --node NODE`` (read from /proc/self/cmdline,
so burners, ctl and the supervisor are left alone), before the daemon's code runs:

- ``hang``: never gets ready (sleeps, as a node stuck before binding would);
- ``hang-deaf``: the same, and ignores SIGTERM (only SIGKILL stops it);
- ``exit``: exits with status 3 before it is ready, without a word on its notify pipe;
- ``deaf``: starts normally but ignores SIGTERM: its own handler is never installed;
- ``clock+S`` / ``clock-S``: its wall clock (``time.time``, ``time.time_ns``) runs S
  seconds ahead of / behind the machine's, as a node on another host would.

Nothing of the daemon's internals is touched: the faults act on the process from the
outside, so they hold whatever the daemon's code becomes.
"""

import os
import signal
import time


def _fault():
    spec = os.environ.get("ECHOFINN_TEST_FAULT", "")
    if ":" not in spec:
        return None
    node, fault = spec.split(":", 1)
    try:
        with open("/proc/self/cmdline", "rb") as f:
            argv = f.read().decode(errors="replace").split("\0")
    except OSError:
        return None
    if "-m" in argv and argv[argv.index("-m") + 1:][:1] == ["daemon"] and ["--node", node] in (
            argv[i:i + 2] for i in range(len(argv))):
        return fault
    return None


_FAULT = _fault()
if _FAULT in ("hang", "hang-deaf"):
    if _FAULT == "hang-deaf":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    time.sleep(600)
    os._exit(9)
elif _FAULT == "exit":
    os._exit(3)
elif _FAULT == "deaf":
    _install = signal.signal

    def _deaf_signal(signum, handler):
        if signum == signal.SIGTERM:
            return _install(signum, signal.SIG_IGN)
        return _install(signum, handler)

    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal = _deaf_signal
elif _FAULT and _FAULT.startswith("clock"):
    _offset = float(_FAULT[len("clock"):])
    _time, _time_ns = time.time, time.time_ns
    time.time = lambda: _time() + _offset
    time.time_ns = lambda: _time_ns() + int(_offset * 1e9)
