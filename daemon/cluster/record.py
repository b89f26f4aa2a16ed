"""``cluster.json``, the supervisor's record of its cluster: the schema, as dataclasses.

The supervisor writes the record (daemon/cluster/supervisor.py, through
daemon/rundir.py ``write_record``) and ``ctl`` reads it (``status``, ``stop``, ``start``,
``top``, daemon/rundir.py ``down_here``) through these classes only: each key of the
file is a field here, and nowhere else is a key of the file spelled. One document::

    {"cluster", "topology", "run_dir", "state", "restart_policy",
     "restart": {"policy", "first_backoff", "backoff_max", "max_crashes", "window"},
     "started_at", "stopped_at",
     "supervisor": {"pid", "create_time", "log"},
     "nodes": {NODE: {"pid", "create_time", "endpoint", "operator_endpoint", "log", "state",
                      "since", "restarts", "last_exit", "exit_status", "error"}, ...},
     "remote_nodes": [NODE, ...]}

in that order. ``state`` is the supervisor's (:class:`ClusterState`); a node's ``state``
is its process's (daemon/cluster/process.py ``ProcessState``: the nodes a process serves
share it). ``nodes`` is in file order.

Reading is lenient about what is missing and strict about what is there: a field that is
absent or null takes its default (a record written by hand, or by an older version, is
still read), while a field of the wrong type, a pid that is not a positive integer or a
state that is not one of the states raises :class:`DamagedRecord` naming the file and the
field, instead of handing half a record on. Unknown keys are ignored. The field types are
the schema: :func:`from_json` checks a document against the dataclasses' annotations.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from pathlib import Path

from daemon.cluster.process import ProcessState, SupervisedProcess
from daemon.errors import UserError


class ClusterState(StrEnum):
    """The supervisor's state, ``state`` at the top of the record."""

    STARTING = "starting"  # its nodes are starting
    RUNNING = "running"  # every node said ready; it reaps, restarts and balances
    STOPPING = "stopping"  # a stop signal arrived: its nodes are being stopped
    STOPPED = "stopped"  # every node stopped and reaped (or ``ctl stop`` cleaned up after it)
    FAILED = "failed"  # its start failed; its nodes are stopped

    @property
    def live(self) -> bool:
        """A state the supervisor leaves before it exits: seen on a record whose
        supervisor is gone, it died without a stop (SIGKILL)."""
        return self in (ClusterState.STARTING, ClusterState.RUNNING, ClusterState.STOPPING)


class DamagedRecord(UserError):
    """A ``cluster.json`` that cannot be read or is not shaped like a cluster record."""


def positive(default=None):
    """A field that, when present, must be an integer above 0 (a pid)."""
    return field(default=default, metadata={"positive": True})


@dataclass(frozen=True)
class SupervisorEntry:
    pid: int | None = positive()
    create_time: float | None = None  # psutil's start time: a reused pid is not believed
    log: str | None = None


@dataclass(frozen=True)
class RestartEntry:
    """The restart policy (daemon/cluster/process.py ``RestartPolicy``)."""

    policy: str | None = None
    first_backoff: float | None = None
    backoff_max: float | None = None
    max_crashes: int | None = None
    window: float | None = None


@dataclass(frozen=True)
class NodeEntry:
    """A node, and the process that serves it (several nodes may share one)."""

    pid: int | None = positive()
    create_time: float | None = None
    endpoint: str | None = None  # its inbox, as bound (the ready line's)
    operator_endpoint: str | None = None
    log: str | None = None
    state: ProcessState | None = None
    since: float | None = None  # unix time the state began
    restarts: int = 0
    last_exit: str | None = None
    exit_status: int | None = None
    error: str | None = None

    @classmethod
    def of(cls, process: SupervisedProcess, name: str) -> NodeEntry:
        """The entry of node ``name``, one ``process`` serves, as it is now."""
        return cls(
            pid=process.pid,
            create_time=process.create_time,
            endpoint=process.endpoints[name],
            operator_endpoint=process.operator_endpoints.get(name),
            log=str(process.log.with_name(f"{name}.log")),  # its own: daemon/logs.py
            state=process.state,
            since=process.since,
            restarts=process.restarts,
            last_exit=process.last_exit,
            exit_status=process.exit_status,
            error=process.error,
        )


@dataclass(frozen=True)
class ClusterRecord:
    cluster: str | None = None
    topology: str | None = None  # the topology file, absolute
    run_dir: str | None = None
    state: ClusterState | None = None
    restart_policy: str | None = None
    restart: RestartEntry | None = None
    started_at: float | None = None
    stopped_at: float | None = None
    supervisor: SupervisorEntry = SupervisorEntry()
    nodes: dict[str, NodeEntry] = field(default_factory=dict)
    remote_nodes: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        """The document, keys in the order above (states are StrEnums: JSON writes them
        as their strings)."""
        return dataclasses.asdict(self)


def to_text(record: ClusterRecord) -> str:
    """The file's text."""
    return json.dumps(record.to_json(), indent=2) + "\n"


def parse(text: str, path: str | Path) -> ClusterRecord:
    """The record in ``text``, read from ``path`` (named in every error)."""
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise DamagedRecord(f"{path}: cannot read the cluster record: {exc}") from None
    return from_json(doc, path)


def from_json(doc, path: str | Path) -> ClusterRecord:
    """The record a parsed ``cluster.json`` holds; DamagedRecord naming ``path`` and the field."""
    if type(doc) is not dict:
        raise DamagedRecord(f"{path}: not a cluster record: expected a JSON object, got {type(doc).__name__}")
    try:
        return _build(ClusterRecord, doc, None)
    except _Wrong as exc:
        raise DamagedRecord(f"{path}: not a cluster record: {exc}") from None


class _Wrong(ValueError):
    pass


def _build(cls, doc: dict, where: str | None):
    """An instance of dataclass ``cls`` from ``doc``; ``where`` is None at the top level."""
    hints = typing.get_type_hints(cls)
    values = {}
    for f in dataclasses.fields(cls):
        if doc.get(f.name) is None:
            continue  # absent or null: the default
        values[f.name] = _value(hints[f.name], doc[f.name], f, where)
    return cls(**values)


def _value(hint, value, f, where: str | None):
    kind = _drop_none(hint)
    origin = typing.get_origin(kind)
    if dataclasses.is_dataclass(kind):
        if type(value) is not dict:
            raise _Wrong(_must(f.name, where, "an object", value))
        return _build(kind, value, f.name)
    if origin is dict:  # the nodes: name -> NodeEntry
        if type(value) is not dict:
            raise _Wrong(_must(f.name, where, "an object", value))
        entry = typing.get_args(kind)[1]
        built = {}
        for name, item in value.items():
            if type(item) is not dict:
                raise _Wrong(f"node {name!r} must be an object, got {type(item).__name__}")
            built[name] = _build(entry, item, f"node {name!r}")
        return built
    if origin is list:
        if type(value) is not list or any(type(v) is not str for v in value):
            raise _Wrong(_must(f.name, where, "a list of strings", value))
        return list(value)
    if isinstance(kind, type) and issubclass(kind, Enum):
        try:
            return kind(value)
        except ValueError:
            raise _Wrong(_must(f.name, where, "one of " + ", ".join(m.value for m in kind), value)) from None
    if kind is str:
        if type(value) is not str:
            raise _Wrong(_must(f.name, where, "a string", value))
        return value
    if kind is int:
        if f.metadata.get("positive") and (type(value) is not int or value <= 0):
            raise _Wrong(_must(f.name, where, "a positive integer", value))
        if type(value) is not int:
            raise _Wrong(_must(f.name, where, "an integer", value))
        return value
    if kind is float:
        if type(value) not in (int, float):
            raise _Wrong(_must(f.name, where, "a number", value))
        return value
    raise TypeError(f"{f.name}: no reader for {hint!r}")  # a field added without one


def _drop_none(hint):
    """``X | None`` -> ``X``."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return hint


def _must(name: str, where: str | None, kind: str, value) -> str:
    if where is None:
        return f"field {name!r} must be {kind}, got {type(value).__name__}"
    return f"{where}: {name} must be {kind}, got {value!r}"
