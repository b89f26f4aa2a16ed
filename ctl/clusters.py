"""This user's clusters on this host, as their run directories record them.

Every folder of the run directory's base (``$ECHOFINN_HOME``, else
``${XDG_RUNTIME_DIR:-/tmp}/echofinn-UID``) that holds a ``cluster.json`` is a cluster
(an MPI launch's ranks each have one: ``NAME.rank-R``). Records are read through
``daemon.rundir`` (its checks of the folders and of the record's shape); a folder that is
not a private directory of this user, or whose record is damaged, is listed with the
problem rather than dropped, and never trusted for anything else.

What reads them: ``ctl list`` (every cluster: name, state, nodes, run directory), the
choice of the cluster a bare command acts on (ctl/common.py), and ``ctl start``'s words
for a taken port (:func:`port_holder`: which node of which of your clusters holds it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from daemon.cluster.record import ClusterRecord, NodeEntry


@dataclass
class Cluster:
    """One run directory: the record's cluster name (else the folder's), whether its
    supervisor runs, its nodes as recorded, and what is wrong with it, if anything."""

    name: str
    folder: Path
    running: bool
    state: str
    record: ClusterRecord | None = None
    problem: str | None = None
    nodes: dict[str, NodeEntry] = field(default_factory=dict)

    def alive_nodes(self) -> list[str]:
        """The recorded nodes whose process is alive and is that node's (pid, start time,
        command line)."""
        from daemon.lifecycle import is_alive

        return [name for name, entry in self.nodes.items() if is_alive(entry.pid, entry.create_time, ("--node", name))]


def clusters() -> list[Cluster]:
    """Every run directory of this user on this host that holds a cluster record (or a
    live supervisor pid file), sorted by folder name. Never raises for one bad folder."""
    from daemon import rundir
    from daemon.errors import UserError

    base = rundir.checked_base()
    try:
        folders = sorted(p for p in base.iterdir() if p.is_dir() and not p.is_symlink())
    except FileNotFoundError:
        return []
    found = []
    for folder in folders:
        if not (folder / rundir.CLUSTER_FILE).exists() and not (folder / rundir.PID_FILE).exists():
            continue  # not a run directory (keys made ahead of time, say)
        try:
            rundir.private_dir(folder)
            record = rundir.read_record(folder)
            running = rundir.folder_supervisor_pid(folder) is not None
        except UserError as exc:
            found.append(Cluster(folder.name, folder, False, "damaged", problem=str(exc)))
            continue
        record = record or ClusterRecord()
        name = record.cluster or folder.name
        state = str(record.state) if record.state is not None else "unrecorded"
        if not running and record.state is not None and record.state.live:
            state = "dead"  # its supervisor is gone without a stop
        found.append(Cluster(name, folder, running, state, record=record, nodes=dict(record.nodes)))
    return found


def running() -> list[Cluster]:
    """The clusters whose supervisor runs (MPI ranks above 0 are counted with rank 0)."""
    return [c for c in clusters() if c.running and ".rank-" not in c.folder.name]


def _address(host: str) -> str:
    import socket

    try:
        return socket.gethostbyname(host)
    except OSError:
        return host


def port_holder(host: str, port: int) -> tuple[str, str] | None:
    """Which node of which of this user's clusters holds ``host:port`` (its inbox or its
    operator port): (words, the cluster's name), as ("node bottom of your cluster mine
    (its operator port, pid 123)", "mine"); None when no live node of a recorded cluster
    has it."""
    from urllib.parse import urlsplit

    address = _address(host)
    for cluster in clusters():
        alive = None
        for name, entry in cluster.nodes.items():
            for endpoint, what in ((entry.endpoint, "its port"), (entry.operator_endpoint, "its operator port")):
                if type(endpoint) is not str:
                    continue
                try:
                    parts = urlsplit(endpoint)
                    held = parts.port
                except ValueError:
                    continue
                if held != port or _address(parts.hostname or "") != address:
                    continue
                if alive is None:
                    alive = set(cluster.alive_nodes())
                if name in alive:
                    return f"node {name} of your cluster {cluster.name} ({what}, pid {entry.pid})", cluster.name
    return None
