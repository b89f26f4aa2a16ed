"""The operator's requests to a running supervisor: a request file and a signal.

``ctl stop|start|restart NODE...`` asks the supervisor of the cluster to act on some of
its processes. The channel is the run directory, which is already private to the user
(daemon/rundir.py ``private_dir``: a real directory, owned by this user, writable by
nobody else), plus SIGUSR1, which only this user (or root) can send:

1. ``ctl`` writes ``RUN_DIR/control/ID.request`` atomically (a temporary file, then
   ``os.replace``): one JSON object ``{"action": "stop"|"start"|"restart", "nodes":
   [NODE, ...]}``, at most :data:`REQUEST_LIMIT` bytes.
2. It sends SIGUSR1 to the supervisor, by the pid daemon/rundir.py ``supervisor_pid``
   checks (start time and command line).
3. The supervisor's loop (daemon/cluster/supervisor.py) gets the signal as a byte on its
   signal pipe, like SIGCHLD, reads every ``*.request`` there — each opened without
   following a link, a regular file of this user no larger than the limit, else
   refused — removes it, validates it (:func:`parse_request`) and acts, then writes
   ``ID.reply`` atomically: ``{"ok": true, "nodes": {NODE: {"was", "now", "restarts"}}}``
   or ``{"ok": false, "error": SENTENCE}``.
4. ``ctl`` reads and removes the reply (:func:`ask`), then follows the nodes' states in
   ``cluster.json`` until each is where it asked (``restarts`` is the count the node's
   record shows once its new process runs).

Why not a socket: a Unix socket's path is limited to 107 bytes, which a run directory
under a deep ``$ECHOFINN_HOME`` (a test's temporary folder) exceeds; the request file
needs nothing the run directory does not already guarantee, and the signal is one more
byte on a pipe the loop already reads. Acting never waits: a stop sends SIGTERM and
sets a timer, a start forks; the waiting is ``ctl``'s.

No ZeroMQ here: ``ctl`` imports this module.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import stat
import time
from pathlib import Path

CONTROL_DIR = "control"
REQUEST_LIMIT = 65536  # bytes of one request: about 4,000 node names
ACTIONS = ("stop", "start", "restart")
REPLY_WAIT = 10.0  # seconds ctl waits for the supervisor's reply (it may be in a balancing round's write)


class BadRequest(ValueError):
    """A request the supervisor refuses: the sentence goes back to ``ctl`` as it is."""


def control_dir(run_dir: Path, create: bool = False) -> Path:
    """``RUN_DIR/control``, checked to be private (made 0700 with ``create``)."""
    from daemon.rundir import private_dir

    return private_dir(Path(run_dir) / CONTROL_DIR, create)


# -- ctl's half ----------------------------------------------------------------------------


def ask(run_dir: Path, supervisor: int, action: str, nodes: list[str], wait: float = REPLY_WAIT) -> dict:
    """Send one request to the supervisor (pid ``supervisor``, checked by the caller) and
    return its reply. Raises TimeoutError if it does not answer within ``wait`` seconds
    (the request is removed), ProcessLookupError if it is gone."""
    folder = control_dir(run_dir, create=True)
    ident = f"{os.getpid()}-{secrets.token_hex(4)}"
    request, reply = folder / f"{ident}.request", folder / f"{ident}.reply"
    _write_atomic(request, json.dumps({"action": action, "nodes": list(nodes)}))
    try:
        os.kill(supervisor, signal.SIGUSR1)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                text = reply.read_text()
            except FileNotFoundError:
                time.sleep(0.02)
                continue
            reply.unlink()
            return json.loads(text)
        raise TimeoutError(f"the supervisor (pid {supervisor}) did not answer within {wait:g} s")
    finally:
        try:
            request.unlink()  # read already, unless it did not answer
        except FileNotFoundError:
            pass


# -- the supervisor's half -----------------------------------------------------------------


def pending(run_dir: Path) -> list[tuple[Path, bytes | None, str | None]]:
    """Every request waiting in ``RUN_DIR/control``, removed as it is read: (the reply's
    path, the request's bytes, None) or (the reply's path, None, why it was refused)."""
    from daemon.errors import UserError

    try:
        folder = control_dir(run_dir)  # UserError: not private, so not read
        names = sorted(os.listdir(folder))
    except (OSError, UserError):
        return []
    found: list[tuple[Path, bytes | None, str | None]] = []
    for name in names:
        if not name.endswith(".request") or name.startswith("."):
            continue
        path = folder / name
        reply = path.with_suffix(".reply")
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError as exc:
            try:
                os.unlink(path)
            except OSError:
                pass
            found.append((reply, None, f"cannot read the request {path}: {exc.strerror}"))
            continue
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_uid != os.getuid():
                found.append((reply, None, f"{path}: not a regular file of uid {os.getuid()}: refused"))
            elif st.st_size > REQUEST_LIMIT:
                found.append((reply, None, f"{path}: {st.st_size} bytes, over the limit of {REQUEST_LIMIT}: refused"))
            else:
                found.append((reply, os.read(fd, REQUEST_LIMIT + 1), None))
        finally:
            os.close(fd)
            try:
                os.unlink(path)
            except OSError:
                pass
    return found


def parse_request(data: bytes) -> tuple[str, list[str]]:
    """(action, nodes) of a request's bytes; BadRequest naming what is wrong."""
    try:
        doc = json.loads(data)
    except ValueError as exc:
        raise BadRequest(f"the request is not JSON: {exc}") from None
    if type(doc) is not dict:
        raise BadRequest("the request must be a JSON object with an action and nodes")
    action, nodes = doc.get("action"), doc.get("nodes")
    if action not in ACTIONS:
        raise BadRequest(f"unknown action {action!r}: one of {', '.join(ACTIONS)}")
    if type(nodes) is not list or not nodes or any(type(n) is not str or not n for n in nodes):
        raise BadRequest("nodes must be a non-empty list of node names")
    return action, list(dict.fromkeys(nodes))


def send_reply(path: Path, reply: dict) -> None:
    """Write the reply for ``ctl`` to find (atomically); a folder gone is no error."""
    try:
        _write_atomic(path, json.dumps(reply))
    except OSError:
        pass


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
