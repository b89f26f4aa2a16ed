"""Logs: what each node and the supervisor write in the run directory, and reading it back.

Where (daemon/rundir.py has the whole layout): ``RUN_DIR/NODE.log`` per node and
``RUN_DIR/supervisor.log``, each rotated by size (:class:`RotatingLog`): at ``[cluster]
log_max_bytes`` (default 4 MiB) the file becomes ``NAME.log.1``, the older ones move up
one, and ``log_backups`` of them are kept (default 2; daemon/topology.py checks both).
Every line is one record::

    2026-12-08 02:10:11.123 node root[4242] INFO move 1a2b-3: 4 tasks out to pical
    2026-12-08 02:10:15.007 supervisor[4100] ERROR node root (pid 4242) exited: killed by SIGKILL; restart in 0.1 s

(:data:`LINE` parses it; lines that do not match, a traceback's, belong to the record
above them). ``ctl logs`` (ctl/commands/logs.py) prints and follows them.

What a node says, at ``[cluster] log_level`` (default ``info``), all of it derived in the
driver (daemon/node.py) from what it has anyway, never inside the core, which stays pure
(tests/core/test_purity.py):

- its life: started or restarted (recovered from its journal, with what), serving at
  its endpoint, ready, stopped; refused keys and failed handshakes (daemon/node.py);
- moves, one line each way (:func:`move_lines`), read off the journal records of each
  ``Persist`` effect: ``Leave`` is a move out, ``Seen`` with the ``Put`` of the same step
  a move in, ``TakenBack`` a move whose destination stayed silent (warning), a refused
  transfer (warning); the rest (``Acked``, tasks queued) at debug;
- refused frames and other trouble, from the core's counters (``NodeCore.stats``),
  compared once a second (:class:`RateLimit`): at most one line per counter per
  :data:`REFUSED_EVERY` seconds, with the count since the previous line and the total,
  so a flood of ten thousand forged frames makes a line every 10 s, not ten thousand;
  ``internal`` (an exception the core contained) is an error, with the latest text;
- at ``debug`` also each wave the node took part in and its outcome here
  (:class:`WaveLog`): echoed to its father (and whom it gave up on), decided at the
  initiator, Finn decided with the tasks enqueued; with the messages it sent in the
  wave and how long it was in it.

Cost on the hot path: at ``info`` a message's step adds nothing (the move lines come
from ``Persist`` effects only, which write the journal anyway; the counters are read
once a second). At ``debug`` every step's effects pass through :meth:`WaveLog.step`.

The supervisor writes its own lines to ``supervisor.log`` and, through
:class:`NodeLines`, a copy of each line about a node into that node's log (started,
ready, exited and how, restarted in how long, FATAL), so ``ctl logs NODE`` tells a
node's whole story, its deaths included. A process that serves several nodes
(``[cluster] nodes_per_process``) writes what it prints outside the log (a traceback)
to its first node's log: the supervisor points its stdout and stderr there.

A rotation keeps a process's stdout and stderr on the current file: when they are the
file being rotated (a node's, or a detached supervisor's), :class:`RotatingLog` points
them at the new one (``dup2``).
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import re
import sys
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from functools import lru_cache
from pathlib import Path

from daemon import plugins
from daemon.core import journal as rec
from daemon.core import node as core
from daemon.core.messages import KIND, WaveDecided, WaveMessage
from daemon.core.wave import Wave

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
REFUSED_EVERY = 10.0  # seconds: at most one line per counter this often
WAVE_MEMORY = 60.0  # seconds a wave without an outcome here is remembered (daemon/core/node.py WAVE_TTL)
MAX_WAVES = 4096  # waves remembered at once, for the debug lines
MAX_MOVES = 10_000  # moves out remembered (to name the destination of a take-back)
FORMAT = "%(asctime)s {source}[%(process)d] %(levelname)s %(message)s"
# one record: time, source ("supervisor" or "node NAME"), pid, level, text
LINE = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) (supervisor|node \S+)\[(\d+)\] "
    r"(DEBUG|INFO|WARNING|ERROR|CRITICAL) (.*)$"
)

Line = tuple[int, str]  # (logging level, text)


# --- files --------------------------------------------------------------------------------


def node_log_file(run_dir, name: str) -> Path:
    """Where node ``name`` logs in the cluster's run directory."""
    return Path(run_dir) / f"{name}.log"


def rotated(path) -> list[Path]:
    """``path`` and its rotated files that exist, newest first (``path``, ``path.1``, ...)."""
    path = Path(path)
    found = [path] if path.exists() else []
    k = 1
    while (older := path.with_name(f"{path.name}.{k}")).exists():
        found.append(older)
        k += 1
    return found


def formatter(source: str) -> logging.Formatter:
    """The format of every line: time to the millisecond, ``source[pid]``, level, text."""
    fmt = logging.Formatter(FORMAT.format(source=source))
    fmt.default_msec_format = "%s.%03d"
    return fmt


def parse(line: str) -> dict:
    """One line as ``{"time", "source", "pid", "level", "text"}``; a line that is not a
    record (a traceback's) as ``{"text"}``."""
    m = LINE.match(line)
    if m is None:
        return {"text": line}
    return {"time": m[1], "source": m[2], "pid": int(m[3]), "level": m[4], "text": m[5]}


def _same_file(fd: int, path) -> bool:
    try:
        a, b = os.fstat(fd), os.stat(path)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


class RotatingLog(logging.handlers.RotatingFileHandler):
    """A log file rotated at ``max_bytes``, keeping ``backups`` older files (private to the
    user: 0600). The descriptors in ``stdio`` (default: stdout and stderr) that write to
    the same file when it is opened follow it to the new file at each rotation, so what
    the process prints outside the log (a traceback, a burner's death) stays beside it."""

    def __init__(self, path, max_bytes: int, backups: int, stdio: Iterable[int] = (1, 2)):
        super().__init__(path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8", errors="backslashreplace")
        self.stdio = [fd for fd in stdio if _same_file(fd, self.baseFilename)]

    def _open(self):
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        return open(fd, "a", encoding=self.encoding, errors=self.errors)

    def emit(self, record: logging.LogRecord) -> None:
        """Write one line, rotating first if it would pass ``max_bytes``. The file's size is
        asked of the kernel (others append to it too: stderr, the supervisor's copies);
        the line is formatted once (the standard handler formats it twice and stats the
        file twice a line)."""
        try:
            line = self.format(record) + self.terminator
            if self.stream is None:
                self.stream = self._open()
            if os.lseek(self.stream.fileno(), 0, os.SEEK_END) + len(line) > self.maxBytes > 0:
                self.doRollover()
            self.stream.write(line)
            self.stream.flush()
        except Exception:  # noqa: BLE001 — logging's rule: a failed line is reported, never raised
            self.handleError(record)

    def doRollover(self) -> None:
        super().doRollover()
        if self.stdio and self.stream is not None:
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except (AttributeError, OSError, ValueError):
                    pass
            for fd in self.stdio:
                os.dup2(self.stream.fileno(), fd)


def log_handler(path, cluster, source: str) -> logging.Handler:
    """The rotating handler of one log file, sized by ``cluster`` (the topology's
    ``[cluster]``), its lines marked ``source``."""
    handler = RotatingLog(path, cluster.log_max_bytes, cluster.log_backups)
    handler.setFormatter(formatter(source))
    return handler


def node_logger(name: str, run_dir, cluster) -> logging.Logger:
    """Set up node ``name``'s logger: to ``RUN_DIR/NAME.log`` (rotated), or to stderr
    without a run directory; at ``cluster.log_level``. Call it before the node's
    :class:`daemon.node.NodeDaemon` is made (it reads the level)."""
    logger = logging.getLogger(f"echofinn.node.{name}")
    for old in list(logger.handlers):
        logger.removeHandler(old)
        old.close()
    if run_dir is not None:
        # a node started by hand with a new --run-dir makes it, as its journal would
        Path(run_dir).mkdir(mode=0o700, parents=True, exist_ok=True)
        handler = log_handler(node_log_file(run_dir, name), cluster, f"node {name}")
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(formatter(f"node {name}"))
    logger.addHandler(handler)
    logger.setLevel(LEVELS[cluster.log_level])
    logger.propagate = False
    return logger


def supervisor_log(
    logger: logging.Logger, run_dir, cluster, members: Callable[[str], Iterable[str]]
) -> logging.Handler:
    """Point the supervisor's ``logger`` at ``RUN_DIR/supervisor.log`` (rotated) at
    ``cluster.log_level``, with a copy of each line about a node in that node's log
    (:class:`NodeLines`; ``members(name)``: the nodes of the process ``name`` names).
    Returns the file's handler (the supervisor replaces it if its folder is made anew)."""
    from daemon import rundir

    handler = log_handler(Path(run_dir) / rundir.SUPERVISOR_LOG, cluster, "supervisor")
    logger.addHandler(handler)
    if not any(isinstance(h, NodeLines) for h in logger.handlers):
        copies = NodeLines(run_dir, members)
        copies.setFormatter(formatter("supervisor"))
        logger.addHandler(copies)
    logger.setLevel(LEVELS[cluster.log_level])
    logger.propagate = False
    return handler


class NodeLines(logging.Handler):
    """Copies each supervisor line about nodes — it begins ``node NAME`` or ``node A B``
    (the nodes of one process), then ``:`` or `` (`` — into each of those nodes' logs,
    and those of the other nodes of their process (``members``). The supervisor writes
    rarely (starts, exits, restarts), so each copy opens the file, appends and closes:
    a node rotating its log meanwhile loses nothing."""

    def __init__(self, run_dir, members: Callable[[str], Iterable[str]]):
        super().__init__()
        self.run_dir = Path(run_dir)
        self.members = members

    def emit(self, record: logging.LogRecord) -> None:
        try:
            names = self.nodes_of(record.getMessage())
            if not names:
                return
            line = (self.format(record) + "\n").encode("utf-8", "backslashreplace")
            for name in names:
                fd = os.open(node_log_file(self.run_dir, name), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
                try:
                    os.write(fd, line)
                finally:
                    os.close(fd)
        except Exception:  # noqa: BLE001 — a log must never take the supervisor down
            self.handleError(record)

    def nodes_of(self, text: str) -> list[str]:
        """The nodes a line is about (with their process's other nodes), in order; none
        unless every word between ``node`` and ``:``/`` (`` is a node of this supervisor."""
        if not text.startswith("node "):
            return []
        head = re.split(r":| \(", text[5:], maxsplit=1)[0]
        names: dict[str, None] = {}
        for word in head.split():
            group = list(self.members(word))
            if not group:
                return []
            names.update(dict.fromkeys(group))
        return list(names)


# --- what a node says -------------------------------------------------------------------------


def _count(n: int, what: str) -> str:
    return f"{n} {what}" if n == 1 else f"{n} {what}s"


def move_lines(records: list, leaving: dict | None = None) -> list[Line]:
    """The lines of one ``Persist`` effect's journal records (daemon/core/journal.py):
    a move out (``Leave``), a move in (``Seen`` accepted, with its ``Put``), a refused
    transfer, a take-back; at debug, an acknowledged move and tasks queued. ``leaving``
    (move id -> (dest, tasks)) is kept across calls to name a take-back's destination."""
    if leaving is None:
        leaving = {}
    lines: list[Line] = []
    acked = {r.move_id for r in records if type(r) is rec.Acked}
    # a move in: its Seen and the Put of its tasks (no new work, not taken back) in one step
    accepted = [r for r in records if type(r) is rec.Seen and r.accepted]
    arrived = sum(len(r.tasks) for r in records if type(r) is rec.Put and not r.submitted and not r.front)
    for r in records:
        kind = type(r)
        if kind is rec.Done or kind is rec.Told or kind is rec.Confirmed:
            continue
        if kind is rec.Put:
            if r.submitted:
                label = r.tasks[0].label if r.tasks else ""
                lines.append((logging.DEBUG, f"{_count(len(r.tasks), 'task')} queued ({label})"))
        elif kind is rec.Leave:
            if r.move_id in acked:  # written again with its Acked: a late ACK after the take-back
                lines.append(
                    (
                        logging.INFO,
                        f"move {r.move_id}: {_count(len(r.tasks), 'task')} out to {r.dest} after all "
                        "(its late acknowledgement came after the take-back)",
                    )
                )
            else:
                lines.append((logging.INFO, f"move {r.move_id}: {_count(len(r.tasks), 'task')} out to {r.dest}"))
                if len(leaving) >= MAX_MOVES:
                    leaving.pop(next(iter(leaving)))
                leaving[r.move_id] = (r.dest, len(r.tasks))
        elif kind is rec.Acked:
            dest, n = leaving.pop(r.move_id, ("its destination", None))
            if n is not None:
                lines.append((logging.DEBUG, f"move {r.move_id}: {dest} acknowledged {_count(n, 'task')}"))
        elif kind is rec.TakenBack:
            dest, n = leaving.pop(r.move_id, (None, None))
            whose = f"{_count(n, 'task')} from {dest} " if dest is not None else ""
            lines.append((logging.WARNING, f"move {r.move_id}: took {whose}back: no acknowledgement by the deadline"))
        elif kind is rec.Seen:
            if r.accepted:
                tasks = _count(arrived, "task") if len(accepted) == 1 else "tasks"
                lines.append((logging.INFO, f"move {r.move_id}: {tasks} in from {r.source}"))
            else:
                lines.append(
                    (logging.WARNING, f"move {r.move_id}: refused the transfer from {r.source} (past its expiry)")
                )
        elif kind is rec.Dropped:
            lines.append((logging.DEBUG, f"move {r.move_id}: forgotten (its memory ran out)"))
    return lines


# counter of NodeCore.stats -> (level, what it counts); in the order said
REFUSALS: dict[str, tuple[int, str]] = {
    "internal": (logging.ERROR, "exceptions contained inside the node"),
    "garbage": (logging.WARNING, "frames that are no protocol message"),
    "unauthorized": (logging.WARNING, "frames refused: sender not allowed to say that there"),
    "refused": (logging.WARNING, "requests refused"),
    "wave_errors": (logging.WARNING, "wave messages refused (not a neighbour's, duplicate or malformed wave)"),
    "refused_transfers": (logging.WARNING, "transfers refused"),
    "dropped": (logging.WARNING, "sends dropped (the queue to a peer down a long time is full)"),
    "stale": (logging.INFO, "wave messages of waves older than this node's start"),
    "unroutable": (logging.INFO, "replies to operators that had gone"),
    "late": (logging.DEBUG, "wave messages after the wave had ended here"),
}


class RateLimit:
    """Lines for counters that grew, each at most once per ``every`` seconds: the first
    growth is said at once, later growth waits for the next line's turn and is said
    then, with the count since the previous line (pure: time and counters passed in)."""

    def __init__(self, now: float, every: float = REFUSED_EVERY, kinds: dict[str, tuple[int, str]] = REFUSALS):
        self.every = every
        self.kinds = kinds
        self.start = now
        self.seen: dict[str, int] = {}  # counter -> its value at the last line
        self.said: dict[str, float] = {}  # counter -> when its last line was said

    def lines(self, stats: dict, now: float, latest: str = "") -> list[Line]:
        out: list[Line] = []
        for counter, (level, what) in self.kinds.items():
            total = stats.get(counter, 0)
            grew = total - self.seen.get(counter, 0)
            if grew <= 0:
                continue
            said = self.said.get(counter)
            if said is not None and now - said < self.every:
                continue
            since = "since the start" if said is None else f"in the last {now - said:.0f} s"
            text = f"{counter}: {grew} {what} {since} ({total} in all)"
            if counter == "internal" and latest:
                text += f"; the latest: {latest}"
            out.append((level, text))
            self.seen[counter] = total
            self.said[counter] = now
        return out


# the message that ends a wave here -> what it says: a decision of any kind (reported to
# the operator), or echo's ECHO to the father (the kinds' message names: daemon/plugins.py)
OUTCOMES = {"echo": "echoed to {dest}", "wave.decided": "decided ({kind})"}


def _said(msg: object) -> str:
    """The message's name: its wire type, or for a wave's own message the kind's name for it."""
    if type(msg) is WaveMessage:
        return _body_names(plugins.version()).get(type(msg.body), "")
    return KIND.get(type(msg), "")


@lru_cache(maxsize=1)
def _body_names(version: int) -> dict[type, str]:
    kinds: list[type[Wave]] = list(plugins.wave_kinds().values())
    return {mt.cls: mt.name for kind in kinds for mt in kind.messages}


class WaveLog:
    """Debug lines: each wave a node took part in, once, when it ends here (module
    text). Fed each step's effects in order; a wave is known by its messages' ``wave``
    field, its end by the message that says its outcome (:data:`OUTCOMES`), and whom
    the node gave up on by the ``Reconnect`` effects that follow it in the same step."""

    def __init__(self):
        self.waves: OrderedDict[str, list] = OrderedDict()  # wave -> [first seen, messages sent]
        self.ended: OrderedDict[str, None] = OrderedDict()  # waves said, so late sends stay quiet

    def step(self, effects: list, now: float) -> list[Line]:
        lines: list[Line] = []  # waves forgotten to make room
        ended: list[tuple[str, str, list]] = []  # (wave, outcome, whom it gave up on), in order
        for effect in effects:
            kind = type(effect)
            if kind is core.Reconnect:  # follows the outcome of the wave that gave up on it
                if ended:
                    ended[-1][2].append(effect.peer)
                continue
            if kind is not core.Send and kind is not core.Reply:
                continue
            msg = effect.msg
            wave = getattr(msg, "wave", None)
            if type(wave) is not str or wave in self.ended:
                continue
            state = self.waves.get(wave)
            if state is None:
                if len(self.waves) >= MAX_WAVES:
                    lines.append(self._forget(*self.waves.popitem(last=False), now))
                state = self.waves[wave] = [now, 0]
            state[1] += 1
            said = _said(msg)
            outcome = OUTCOMES.get(said)
            if outcome is None:
                continue
            del self.waves[wave]
            self._end(wave)
            text = outcome.format(dest=getattr(effect, "dest", ""), kind=getattr(msg, "kind", ""))
            enqueued = msg.result.get("enqueued") if type(msg) is WaveDecided and type(msg.result) is dict else None
            if type(enqueued) is list:
                text += f", {_count(len(enqueued), 'task')} enqueued"
            ended.append((wave, f"{text}, {_count(state[1], 'message')} sent in {(now - state[0]) * 1000:.0f} ms", []))
        for wave, text, gave_up in ended:
            if gave_up:
                text += f"; gave up on {', '.join(gave_up)}"
            lines.append((logging.DEBUG, f"wave {wave}: {text}"))
        return lines

    def expire(self, now: float) -> list[Line]:
        """Lines for waves without an outcome here for :data:`WAVE_MEMORY` seconds."""
        lines = []
        while self.waves:
            wave, state = next(iter(self.waves.items()))
            if now - state[0] < WAVE_MEMORY:
                break
            del self.waves[wave]
            lines.append(self._forget(wave, state, now))
        return lines

    def _forget(self, wave: str, state: list, now: float) -> Line:
        self._end(wave)
        return (
            logging.DEBUG,
            f"wave {wave}: no outcome here after {now - state[0]:.0f} s, {_count(state[1], 'message')} sent",
        )

    def _end(self, wave: str) -> None:
        self.ended[wave] = None
        if len(self.ended) > MAX_WAVES:
            self.ended.popitem(last=False)


class NodeLog:
    """What one node's driver says, through its logger ``echofinn.node.NAME`` (set up by
    :func:`node_logger`; without it, warnings and errors reach stderr as Python's
    logging does). The driver calls :meth:`persisted` for each ``Persist`` effect,
    :meth:`step` for each step's effects (only where :attr:`debug`) and :meth:`turn`
    once a second."""

    def __init__(self, name: str, now: float | None = None):
        self.logger = logging.getLogger(f"echofinn.node.{name}")
        self.debug = self.logger.isEnabledFor(logging.DEBUG)
        self.refusals = RateLimit(time.time() if now is None else now)
        self.waves = WaveLog() if self.debug else None
        self.leaving: dict[str, tuple[str, int]] = {}
        self.failed = False

    def say(self, lines: list[Line]) -> None:
        logger = self.logger
        for level, text in lines:
            if logger.isEnabledFor(level):  # made directly: logger.log would walk the stack for its caller
                logger.handle(logger.makeRecord(logger.name, level, __file__, 0, text, (), None))

    def persisted(self, records: list) -> None:
        try:
            lines = move_lines(records, self.leaving)
        except Exception:  # noqa: BLE001 — a log line must never cost the node its life
            return self._broken()
        if lines:
            self.say(lines)

    def step(self, effects: list) -> None:
        if self.waves is None or not effects:
            return
        try:
            lines = self.waves.step(effects, time.monotonic())
        except Exception:  # noqa: BLE001
            return self._broken()
        if lines:
            self.say(lines)

    def turn(self, stats: dict, latest: str, now: float) -> None:
        try:
            lines = self.refusals.lines(stats, now, latest)
            if self.waves is not None:
                lines += self.waves.expire(time.monotonic())
        except Exception:  # noqa: BLE001
            return self._broken()
        if lines:
            self.say(lines)

    def _broken(self) -> None:
        """Say the first failure to make a line, with its traceback; then nothing more."""
        if not self.failed:
            self.failed = True
            self.logger.exception("a log line could not be made (no more such errors are said)")
