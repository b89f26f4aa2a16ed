"""A node's recording: everything its core took, so that the run can be replayed.

Theory of operation (ARCHITECTURE.md, "Recording and replay"): the node core
(daemon/core/node.py) is a pure function of its inputs — the state it started with, then
one ``(sender, epoch, message, now)`` per message handled and one ``now`` per tick. A
daemon whose topology says ``[cluster] record = true`` writes exactly that, per
incarnation, to ``RUN_DIR/recording/NODE.EPOCH.rec``, with a digest of the effects the
core returned at each step; ``ctl sim replay`` (daemon/sim/replay.py) builds the core
again from the header, feeds it the same inputs and compares the digests. Each node
replays alone: no global order is needed, since a node's inputs are all it depends on.

The file is a stream of msgpack values (daemon/wire.py ``pack_value``), appended:

    ["header", VERSION, NAME, EPOCH, NOW, JOURNALED, CONFIG, TOPOLOGY, TOPOLOGY_DIGEST, STATE]
    ["h", NOW, SENDER, SENDER_EPOCH, FRAME, DIGEST]   a message handled (FRAME: the raw bytes)
    ["t", NOW, DIGEST]                                a tick
    ["q", NOW, N, COST, LABEL, DIGEST]                the topology's initial tasks (enqueue)
    ["c", STAT]                                       the driver counted (a garbage frame, a
                                                      dropped send: the counts reach a PONG)
    ["u", CPU_PERCENT]                                psutil's reading, which samples carry
    ["k", [[WHO, WHOSE], ...]]                        the refused handshakes the driver read
                                                      (daemon/node.py), which pongs and samples carry
    ["full", STEPS]                                   the size limit: nothing follows

CONFIG is NodeConfig's fields (the node set sorted), STATE the JournalState the node
recovered (None: a fresh node), DIGEST :func:`effects_digest`. Records are buffered and
written at each of the driver's once-a-second turns and at exit; a SIGKILL may cut the
last one short, and :func:`read` stops at the last complete record. A file stops growing
at :data:`MAX_BYTES` with a ``full`` record.

The digest is BLAKE2b over a stable encoding of the effects: a message as the exact
frame the daemon sends (daemon/wire.py ``pack``, which sorts Finn's sets), anything else
as msgpack of its fields with sets sorted — never Python's ``hash``, which is salted per
process.
"""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass, field

from daemon import wire
from daemon.core import node as core
from daemon.core.journal import JournalState
from daemon.core.tasks import Task

VERSION = 1
MAX_BYTES = 256 * 1024 * 1024  # a recording stops growing here (a "full" record says so)
DIGEST_SIZE = 16
SUFFIX = ".rec"
STEP_KINDS = ("h", "t", "q", "c", "u", "k")


class RecordingError(ValueError):
    """A recording that cannot be read (the text names the file and what is wrong)."""


def recording_dir(run_dir) -> str:
    return os.path.join(run_dir, "recording")


def recording_file(run_dir, name: str, epoch: int) -> str:
    """Where incarnation ``epoch`` of node ``name`` writes its recording."""
    return os.path.join(recording_dir(run_dir), f"{name}.{epoch}{SUFFIX}")


# --- the stable encoding ------------------------------------------------------------


def plain(value):
    """``value`` as msgpack's atoms, lists and maps, the same in every process: a named
    tuple as [type name, fields...], a task as ["Task", id, label, cost], a set sorted."""
    t = type(value)
    if t is str or t is int or t is float or t is bool or t is bytes or value is None:
        return value
    if t is Task:
        return ["Task", value.id, value.label, value.cost]
    if t is list:
        return [plain(v) for v in value]
    if t is dict:
        return {k: plain(v) for k, v in value.items()}
    if t is set or t is frozenset:
        return sorted(plain(v) for v in value)
    if isinstance(value, tuple):
        fields = [plain(v) for v in value]
        return [t.__name__, *fields] if hasattr(value, "_fields") else fields
    return repr(value)


def new_digest():
    return hashlib.blake2b(digest_size=DIGEST_SIZE)


def add_effect(digest, effect, frame: bytes | None) -> None:
    """Add one effect to a step's digest; ``frame``: a Send's or Reply's message as the
    daemon packed it (daemon/node.py ``execute`` passes the frame it sends, so that a
    recording node packs each message once)."""
    kind = type(effect)
    if kind is core.Send:
        digest.update(wire.pack_value(["Send", effect.dest]))
        digest.update(frame)
    elif kind is core.Reply:
        digest.update(wire.pack_value(["Reply", effect.to]))
        digest.update(frame)
    else:
        digest.update(wire.pack_value(plain(effect)))


def effects_digest(effects: list, epoch: int) -> bytes:
    """The digest of one step's effects (see the module text), packing each message as
    incarnation ``epoch`` sends it."""
    digest = new_digest()
    for effect in effects:
        kind = type(effect)
        add_effect(digest, effect, wire.pack(effect.msg, epoch) if kind is core.Send or kind is core.Reply else None)
    return digest.digest()


def state_of(recovered: JournalState | None):
    """A recovered journal state as a recording's header holds it: every field of
    JournalState (tests/sim/test_replay.py fails when one is added and not here)."""
    if recovered is None:
        return None
    return {
        "queue": [[t.id, t.label, t.cost] for t in recovered.queue],
        "submitted": recovered.submitted,
        "done": recovered.done,
        "leaving": {move: [dest, expires, [[t.id, t.label, t.cost] for t in tasks]]
                    for move, (dest, expires, tasks) in recovered.leaving.items()},
        "seen": {move: list(entry) for move, entry in recovered.seen.items()},
        "told": {key: list(fact) for key, fact in recovered.told.items()},
    }


def journal_state(raw) -> JournalState | None:
    """The inverse of :func:`state_of`; ValueError/TypeError/KeyError on a bad shape."""
    if raw is None:
        return None
    return JournalState(
        queue=[Task(*t) for t in raw["queue"]],
        submitted=raw["submitted"],
        done=raw["done"],
        leaving={move: (dest, expires, tuple(Task(*t) for t in tasks))
                 for move, (dest, expires, tasks) in raw["leaving"].items()},
        seen={move: (source, accepted, unconfirmed, after)
              for move, (source, accepted, unconfirmed, after) in raw["seen"].items()},
        told={key: tuple(fact) for key, fact in raw["told"].items()},
    )


def config_of(config: core.NodeConfig) -> list:
    return [config.name, config.cpus, list(config.parents), list(config.children), sorted(config.nodes), config.pid]


def node_config(raw) -> core.NodeConfig:
    name, cpus, parents, children, nodes, pid = raw
    return core.NodeConfig(name, cpus, tuple(parents), tuple(children), frozenset(nodes), pid)


# --- writing --------------------------------------------------------------------------


class RecordingWriter:
    """Appends one incarnation's recording to ``path`` (created; it must not exist).

    A step that returns effects is recorded in two halves: :meth:`begin` before the
    driver executes them gives the digest to add each effect to (:func:`add_effect`), and
    :meth:`end` after writes the step (its kind and inputs: the module text); a count the
    driver makes while executing (a dropped send) is written after the step, as the core
    saw it. Records are kept in memory until :meth:`flush`. Past ``limit`` bytes a
    ``full`` record is written and every later step is left out."""

    def __init__(self, path: str, name: str, epoch: int, now: float, journaled: bool, config: core.NodeConfig,
                 recovered: JournalState | None, topology_path: str = "", limit: int = MAX_BYTES):
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        self.path = path
        self.epoch = epoch
        self.limit = limit
        self.steps = 0
        self.full = False
        self._buffer: list[bytes] = []
        self._later: list | None = None  # counts made while a step's effects run
        self._size = 0
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        digest = ""
        if topology_path:
            try:
                with open(topology_path, "rb") as f:
                    digest = hashlib.blake2b(f.read(), digest_size=DIGEST_SIZE).hexdigest()
            except OSError:
                pass
        self._add(wire.pack_value(["header", VERSION, name, epoch, now, journaled, config_of(config),
                                   str(topology_path), digest, state_of(recovered)]))

    def begin(self):
        """A step's effects are about to be executed: the digest to add them to."""
        self._later = []
        return new_digest()

    def end(self, step: tuple, digest) -> None:
        """Write a step begun by :meth:`begin`: ``("h", now, sender, epoch, frame)``,
        ``("t", now)`` or ``("q", now, n, cost, label)``, then the counts made meanwhile."""
        later, self._later = self._later or (), None
        self._step([*step, digest.digest()])
        for record in later:
            self._step(record)

    def count(self, stat: str) -> None:
        if self._later is not None:
            self._later.append(["c", stat])
        else:
            self._step(["c", stat])

    def cpu(self, percent: float | None) -> None:
        self._step(["u", percent])

    def refused(self, pairs) -> None:
        self._step(["k", [list(pair) for pair in pairs]])

    def _step(self, record: list) -> None:
        if not self.full:
            self.steps += 1
            self._add(wire.pack_value(record))

    def _add(self, data: bytes) -> None:
        if self._size + len(data) > self.limit:
            self.full = True
            data = wire.pack_value(["full", self.steps - 1])
        self._size += len(data)
        self._buffer.append(data)

    def flush(self) -> None:
        """Write what is buffered (a signal's exception midway writes no byte twice).
        A write that fails (a full disk) ends the recording, said once on stderr: the
        node serves on, and the file replays up to its last complete record."""
        if self._fd is None or not self._buffer:
            return
        data = b"".join(self._buffer)
        self._buffer = [data]
        try:
            while data:
                written = os.write(self._fd, data)
                data = data[written:]
                self._buffer = [data] if data else []
        except OSError as exc:
            print(f"{self.path}: recording stopped: {exc.strerror}", file=sys.stderr, flush=True)
            self.full = True
            self._buffer = []
            os.close(self._fd)
            self._fd = None

    def close(self) -> None:
        if self._fd is None:
            return
        try:
            self.flush()
        finally:
            os.close(self._fd)
            self._fd = None


# --- reading --------------------------------------------------------------------------


@dataclass
class Recording:
    """One incarnation's recording as read back."""

    path: str
    name: str
    epoch: int
    now: float
    journaled: bool
    config: core.NodeConfig
    recovered: JournalState | None
    topology: str
    steps: list = field(default_factory=list)
    cut: int = 0  # bytes of a last record cut short (a SIGKILL while writing)
    full: bool = False  # the size limit was reached


def read(path) -> Recording:
    """The recording in ``path``, up to its last complete record. RecordingError naming
    the file for anything that is not a recording."""
    path = str(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise RecordingError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        values, end = wire.unpack_stream(data)
    except wire.WireError as exc:
        raise RecordingError(f"{path}: not a recording: {exc}") from None
    if not values:
        raise RecordingError(f"{path}: not a recording: no complete header")
    head = values[0]
    if type(head) is not list or len(head) != 10 or head[0] != "header":
        raise RecordingError(f"{path}: not a recording: the first record is not a header")
    if head[1] != VERSION:
        raise RecordingError(f"{path}: recording version {head[1]!r}, this program reads {VERSION}")
    _, _, name, epoch, now, journaled, config, topology, _digest, state = head
    try:
        if type(name) is not str or type(epoch) is not int or type(now) not in (float, int) or type(journaled) is not bool:
            raise TypeError("name, epoch, now or journaled")
        config = node_config(config)
        if config.name != name:
            raise ValueError(f"the config names {config.name!r}")
        recovered = journal_state(state)
    except (TypeError, ValueError, KeyError) as exc:
        raise RecordingError(f"{path}: bad header: {exc}") from None
    rec = Recording(path, name, epoch, now, journaled, config, recovered, str(topology), cut=len(data) - end)
    for i, value in enumerate(values[1:], 1):
        if type(value) is list and value and value[0] == "full" and i == len(values) - 1:
            rec.full = True
            break
        if not _well_formed(value):
            raise RecordingError(f"{path}: record {i} is not a step: {_short(repr(value))}")
        rec.steps.append(value)
    return rec


_SHAPES = {
    "h": ((float, int), (bytes,), (int,), (bytes,), (bytes,)),
    "t": ((float, int), (bytes,)),
    "q": ((float, int), (int,), (float, int), (str,), (bytes,)),
    "c": ((str,),),
    "u": ((float, int, type(None)),),
    "k": ((list,),),
}


def _well_formed(value) -> bool:
    if type(value) is not list or not value:
        return False
    shape = _SHAPES.get(value[0]) if type(value[0]) is str else None
    return (shape is not None and len(value) == len(shape) + 1
            and all(type(v) in types for v, types in zip(value[1:], shape)))


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
