"""The run directory: where a running cluster leaves what other processes need to find it.

Layout::

    <base>/                     $ECHOFINN_HOME, else ${XDG_RUNTIME_DIR:-/tmp}/echofinn-<uid>
        current                 the name of the most recently started cluster
        <cluster>/
            cluster.json        supervisor and nodes: pids, start times, endpoints, logs, states
                                (its schema: daemon/cluster/record.py)
            supervisor.pid      the supervisor's pid while it runs
            supervisor.log      what the supervisor did (start, balancing rounds, exits, stop)
            <node>.log          the node's log (daemon/logs.py) and its process's stdout and stderr
                                (a process serving several nodes: its first node's); each log
                                rotated by size to <name>.log.1, .2, ...
            keys/               the cluster's CURVE keys and their keyring (daemon/security.py)
            journal/            each node's journal (daemon/journal.py)
            control/            the operator's requests and the supervisor's replies while
                                they are in flight (daemon/cluster/control.py)
            topology.toml       an MPI launch's resolved topology (daemon/mpi.py)
        <cluster>.rank-<r>/     the same, of rank r > 0 of an MPI launch

The supervisor owns its cluster's folder and is the only writer of ``cluster.json``
(``ctl stop`` writes it only after the supervisor is gone). Every write is atomic — a
temporary file in the same folder, then ``os.replace`` — so a reader sees the old
document or the new one, never half of one.

The base and each cluster's folder must be real directories (not symbolic links, which
are never followed), owned by this user and writable by nobody else: anything else is
refused with an error naming the path (:func:`private_dir`). Nobody else can then plant
a file or a link inside them.

A pid file outlives a SIGKILLed supervisor and pids get reused, so :func:`is_running`
believes a pid only if that process is alive, not a zombie, started when
``cluster.json`` says the supervisor started, and runs the supervisor (its command line).
A missing or garbage pid file falls back on the supervisor pid ``cluster.json``
records, checked the same way. :func:`folder_supervisor_pid` asks the same of any run
directory (an MPI rank's too): every launcher asks it before it writes in one.

The folder is authoritative but may be damaged by hand: :func:`read_cluster` reads the
record into its typed form (``ClusterRecord``, whose dataclasses are the file's schema:
daemon/cluster/record.py) and raises ``DamagedRecord`` (a UserError naming the file and
the field) instead of handing half a record on. Without a usable record, ``ctl status``
and ``ctl stop -t FILE`` find the cluster's processes by the topology's ports
(:mod:`daemon.orphans`); the supervisor itself writes its record and pid file again
within a second when they go missing (daemon/cluster/runfolder.py).

Whether a cluster is *down* (:func:`down_here`) is a claim about this host only, and it is
made only when this host's folder proves it: the supervisor is not running and either the
record names every node of the topology at the topology's endpoint with none of their
processes alive (stopped: since ``stopped_at``, which the supervisor and ``ctl stop``
write, else the record's last change), or there is no record at all and every node of
the topology is this host's (never started). A topology with nodes elsewhere (an MPI
launch's published file, a cluster spread over hosts) is never declared down by a folder
that does not record those nodes: only their silence can tell. ``ctl`` says so at once,
instead of waiting out a wave's timeout or failing on missing keys (ctl/common.py).
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from daemon.cluster.record import ClusterRecord, ClusterState, DamagedRecord, parse, to_text
from daemon.errors import UserError
from daemon.lifecycle import is_alive

HOME_ENV = "ECHOFINN_HOME"
CLUSTER_FILE = "cluster.json"
PID_FILE = "supervisor.pid"
SUPERVISOR_LOG = "supervisor.log"
CURRENT_FILE = "current"


def base_dir() -> Path:
    """``$ECHOFINN_HOME``, else ``${XDG_RUNTIME_DIR:-/tmp}/echofinn-<uid>`` (not created)."""
    home = os.environ.get(HOME_ENV)
    if home:
        return Path(home).absolute()
    return Path(os.environ.get("XDG_RUNTIME_DIR") or "/tmp") / f"echofinn-{os.getuid()}"


def private_dir(path: Path, create: bool = False) -> Path:
    """``path``, checked: a directory (opened without following a symbolic link), owned by
    this user, not writable by group or others. With ``create`` it is made (0700) if
    missing; without, a missing one is fine. Raises UserError naming the path."""
    if create:
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass
        except OSError as exc:
            raise UserError(f"{path}: cannot create the folder: {exc.strerror}") from None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except FileNotFoundError:
        if create:
            raise UserError(f"{path}: vanished while being created") from None
        return path
    except OSError as exc:
        if os.path.islink(path):
            raise UserError(f"{path}: is a symbolic link; echofinn does not follow links here "
                            f"(remove it, or set {HOME_ENV} to a folder of your own)") from None
        raise UserError(f"{path}: cannot open the folder: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
    finally:
        os.close(fd)
    if st.st_uid != os.getuid():
        raise UserError(f"{path}: belongs to uid {st.st_uid}, not to you (uid {os.getuid()}); "
                        f"someone else may have made it: set {HOME_ENV} to a folder of your own")
    if st.st_mode & 0o022:
        raise UserError(f"{path}: other users may write in it (mode {stat.S_IMODE(st.st_mode):04o}); "
                        f"`chmod go-w {path}` or set {HOME_ENV} to a private folder")
    return path


def checked_base(create: bool = False) -> Path:
    """:func:`base_dir`, checked by :func:`private_dir` (and created with ``create``)."""
    base = base_dir()
    if create:
        base.parent.mkdir(parents=True, exist_ok=True)
    return private_dir(base, create)


def cluster_dir(name: str, create: bool = False) -> Path:
    """The folder of cluster ``name``, checked by :func:`private_dir`; with ``create``,
    made (private to this user) if missing."""
    return private_dir(checked_base(create) / name, create)


def write_json_atomic(path: str | os.PathLike, obj) -> None:
    """Write ``obj`` as JSON to ``path`` so that readers see all of it or none of it."""
    _write_atomic(Path(path), json.dumps(obj, indent=2) + "\n")


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def read_cluster(name: str) -> ClusterRecord | None:
    """The cluster's ``cluster.json``, or None if it has none. Raises DamagedRecord if it
    cannot be read or has the wrong shape."""
    return read_record(cluster_dir(name))


def read_record(folder: Path) -> ClusterRecord | None:
    """:func:`read_cluster` of the run directory ``folder`` (an MPI rank's, say)."""
    path = folder / CLUSTER_FILE
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise DamagedRecord(f"{path}: cannot read the cluster record: {exc}") from None
    return parse(text, path)


def write_record(folder: Path, cluster: ClusterRecord) -> None:
    """Write ``cluster.json`` in the run directory ``folder``, atomically."""
    _write_atomic(folder / CLUSTER_FILE, to_text(cluster))


def usable_record(name: str) -> tuple[ClusterRecord | None, str | None]:
    """(record, None), or (None, why not): the record is missing or damaged."""
    try:
        record = read_cluster(name)
    except DamagedRecord as exc:
        return None, str(exc)
    if record is None:
        return None, f"{cluster_dir(name) / CLUSTER_FILE} is missing"
    return record, None


def set_current(name: str, base: Path | None = None) -> None:
    """Record ``name`` as the most recently started cluster (in ``base``, default :func:`base_dir`)."""
    base = checked_base(create=True) if base is None else private_dir(base, create=True)
    _write_atomic(base / CURRENT_FILE, name + "\n")


def current_cluster() -> str | None:
    """The most recently started cluster's name (running or not), or None."""
    try:
        name = (checked_base() / CURRENT_FILE).read_text().strip()
    except FileNotFoundError:
        return None
    return name or None


def write_pid(folder: Path, pid: int) -> None:
    """Write ``supervisor.pid`` in a cluster's folder."""
    _write_atomic(folder / PID_FILE, f"{pid}\n")


def read_pid(folder: Path) -> int | None:
    """The pid in a cluster folder's ``supervisor.pid``, or None if there is none (or garbage)."""
    try:
        pid = int((folder / PID_FILE).read_text(errors="replace").strip())
    except (OSError, ValueError):
        return None
    return pid if pid > 0 else None


def remove_pid(folder: Path) -> None:
    try:
        os.unlink(folder / PID_FILE)
    except FileNotFoundError:
        pass


def supervisor_pid(name: str) -> int | None:
    """The pid of cluster ``name``'s live supervisor, or None (see :func:`is_running`)."""
    return folder_supervisor_pid(cluster_dir(name))


def folder_supervisor_pid(folder: Path) -> int | None:
    """The pid of the live supervisor that owns the run directory ``folder`` (a cluster's,
    or an MPI rank's ``<cluster>.rank-<r>``), or None: what a launch checks before it
    writes anything there."""
    try:
        found = read_record(folder)
    except DamagedRecord:
        found = None
    recorded = (found or ClusterRecord()).supervisor
    # The pid file first; if it is missing or garbage, the pid the record names.
    for pid in dict.fromkeys(p for p in (read_pid(folder), recorded.pid) if p):
        # A record from an earlier run of the cluster says nothing about this pid's start time.
        started = recorded.create_time if recorded.pid == pid else None
        # The supervisor runs as ``python -m daemon.supervisor ... --run-dir FOLDER``, inside
        # ``ctl start ... --foreground`` or as rank 0 of ``python -m daemon.mpi``: a reused
        # pid would have to be one of those and have started at the recorded instant.
        for marker in (("--run-dir", str(folder)), ("--foreground",), ("-m", "daemon.mpi")):
            if is_alive(pid, started, marker):
                return pid
    return None


def is_running(name: str) -> bool:
    """True if cluster ``name``'s supervisor is alive, not a zombie, and really ours."""
    return supervisor_pid(name) is not None


@dataclass(frozen=True)
class Down:
    """This host's proof that a cluster is not running: ``kind`` is "stopped" or
    "never-started"; ``text`` says so, and how to start it."""

    kind: str
    text: str


def down_here(topology, local_nodes: Callable[[], list[str]]) -> Down | None:
    """The proof, from this host's run directory, that ``topology``'s cluster is not
    running; None when the folder proves nothing of the kind (it runs, its record is
    damaged, or some of its nodes are not this host's to know about: see the module
    text). ``local_nodes`` gives the topology's nodes on this host (asked only when no
    record exists). Never waits on the network."""
    name = topology.cluster.name
    if supervisor_pid(name) is not None:
        return None
    try:
        found = read_cluster(name)
    except DamagedRecord:
        return None  # ctl status and ctl stop say what is wrong with it
    start = f"start it with `ctl start {topology.path}`"
    if found is None:
        if set(local_nodes()) != set(topology.names):
            return None  # nodes on other hosts: this folder cannot know about them
        return Down("never-started", f"cluster {name} was never started on this host "
                                     f"(no {CLUSTER_FILE} in {base_dir() / name}); {start}")
    for node in topology.names:
        entry = found.nodes.get(node)
        if entry is None or entry.endpoint != topology.endpoint(node):
            return None  # a record of another layout (another host's share, other ports)
        if is_alive(entry.pid, entry.create_time, ("--node", node)):
            return None  # outlived its supervisor: it may still answer
    since = stopped_since(name, found)
    if found.state is not None and found.state.live:
        pid = found.supervisor.pid
        return Down("stopped", f"cluster {name} is stopped: its supervisor pid {pid} is gone without a stop "
                               f"(record last written {since}); `ctl stop -t {topology.path}` cleans up, then {start}")
    if found.state == ClusterState.FAILED:
        return Down("stopped", f"cluster {name} is stopped: its start failed at {since} "
                               f"(see {base_dir() / name / SUPERVISOR_LOG}); {start}")
    return Down("stopped", f"cluster {name} is stopped (since {since}); {start}")


def stopped_since(name: str, cluster: ClusterRecord) -> str:
    """When a cluster that is not running stopped, as local time: the record's
    ``stopped_at``, else when the record was last written."""
    at = cluster.stopped_at
    if at is None:
        try:
            at = (cluster_dir(name) / CLUSTER_FILE).stat().st_mtime
        except OSError:
            return "an unknown time"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))
