"""The supervisor's hold on its run directory: claimed, recorded, kept, logged to.

The run directory (its layout: daemon/rundir.py) is how ``ctl`` finds the cluster, so the
supervisor (daemon/cluster/supervisor.py) keeps it as it should be while it runs:

- It refuses a run directory whose supervisor still runs, then writes its pid file and
  its record (``cluster.json``, daemon/cluster/record.py) there.
- Once a second it checks that the record and the pid file are there and its own, and
  writes them again if not; a folder moved or removed under it is made anew, with a
  fresh ``supervisor.log``.
- It takes the keys it finds only once daemon/security.py ``ensure_keys`` has checked
  them to be this cluster's (ARCHITECTURE.md, "Launch state is fresh or verified"), keeps
  them in memory and writes them back if they are removed or replaced while it runs
  (checked before every restart, and once a second by the keyring's presence): its nodes
  hold them.
- Its log, ``supervisor.log``, is rotated by size as the nodes' logs are, and each line
  about a node is copied into that node's log (daemon/logs.py ``supervisor_log``), so
  ``ctl logs NODE`` shows the node's exits and restarts.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path

from daemon import logs, rundir, security
from daemon.cluster.record import ClusterRecord, ClusterState
from daemon.errors import UserError
from daemon.topology import Cluster


class RunFolder:
    """One supervisor's run directory. ``record`` gives the record to write as it is now;
    ``stopping`` says whether the supervisor is stopping (then no pid file is written)."""

    def __init__(
        self,
        path: Path,
        cluster: str,
        log: logging.Logger,
        record: Callable[[], ClusterRecord],
        stopping: Callable[[], bool],
        settings: Cluster | None = None,
        members: Callable[[str], Iterable[str]] = lambda name: (),
    ):
        """``settings``: the topology's ``[cluster]`` (the log's level and rotation);
        ``members(name)``: the nodes of the process that serves node ``name``, whose logs
        get a copy of each line about it."""
        self.path = Path(path)
        self.cluster = cluster
        self.log = log
        self._record = record
        self._stopping = stopping
        self.key_files: dict[str, bytes] = {}  # the cluster's keys, to write again if the folder goes
        self._log_handler: logging.Handler | None = None
        self.settings = settings if settings is not None else Cluster(cluster)
        self.members = members

    def open(self) -> None:
        """Make the folder (private to this user) if missing, and log to its supervisor.log."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        rundir.private_dir(self.path, create=True)
        self._open_log()

    def claim(self, topology_path: str | None) -> None:
        """Refuse to start over a live supervisor of this run directory; else take the folder.
        (Its own, not the cluster's: an MPI rank r > 0 has a folder of its own, and its
        launch's rank 0 runs the cluster's.)"""
        other = rundir.folder_supervisor_pid(self.path)
        if other is not None and other != os.getpid():
            raise UserError(
                f"cluster {self.cluster} is already running (supervisor pid {other}); "
                f"stop it with `ctl stop -t {topology_path}`"
            )
        rundir.write_pid(self.path, os.getpid())
        self.write()

    def release(self) -> None:
        rundir.remove_pid(self.path)

    def write(self) -> None:
        """Write ``cluster.json``. A run directory moved or removed under us is made again
        (with the pid file and a fresh log): the record is how ``ctl`` finds us."""
        path = self.path / rundir.CLUSTER_FILE
        try:
            rundir.write_record(self.path, self._record())
            return
        except FileNotFoundError:
            pass
        except OSError as exc:
            self.log.error("cannot write %s: %s", path, exc)
            return
        if self.ensure():
            try:
                rundir.write_record(self.path, self._record())
            except OSError as exc:
                self.log.error("cannot write %s: %s", path, exc)

    def ensure(self) -> bool:
        """Make the run directory again if it is gone; False if that fails."""
        if self.path.is_dir():
            return True
        try:
            self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not self._stopping():
                rundir.write_pid(self.path, os.getpid())
        except OSError as exc:
            self.log.error("run directory %s is gone and cannot be made again: %s", self.path, exc)
            return False
        self._reopen_log()
        self.restore_keys()  # nodes restarted from now on, and ctl, need them
        self.log.warning(
            "run directory %s was gone (moved or removed): made it again; "
            "logs of the nodes started before stay where they went, and a node "
            "restarted from now on finds no journal (an empty queue)",
            self.path,
        )
        if self._record().state == ClusterState.RUNNING:
            try:
                rundir.set_current(self.cluster, self.path.parent)
            except OSError:
                pass
        return True

    def restore_keys(self) -> None:
        """Put the keys the cluster runs with back into the run directory if they are not
        there as they were at the start (removed, or replaced while it ran): its nodes hold
        them, and a node restarted with other keys, or ``ctl`` using them, could not
        complete a handshake with the others."""
        if not self.key_files:
            return
        try:
            if security.read_files(self.path) == self.key_files:
                return
            security.write_files(self.path, self.key_files)
        except (OSError, security.KeyProblem) as exc:
            self.log.error("cannot write the keys of cluster %s again into %s: %s", self.cluster, self.path, exc)
            return
        self.log.warning(
            "%s did not hold the keys cluster %s runs with (removed or replaced while it ran): written back",
            security.keys_dir(self.path),
            self.cluster,
        )

    def check(self) -> None:
        """Once a second: the record and the pid file are where ``ctl`` looks, and ours;
        the keys folder still has its keyring (a cheap sign that it is still there)."""
        if not (self.path / rundir.CLUSTER_FILE).is_file():
            self.write()
        if self.key_files and not (security.keys_dir(self.path) / security.KEYRING).is_file():
            self.restore_keys()
        if rundir.read_pid(self.path) != os.getpid():
            try:
                rundir.write_pid(self.path, os.getpid())
                self.log.warning("pid file %s was missing or damaged: written again", self.path / rundir.PID_FILE)
            except OSError as exc:
                self.log.error("cannot write %s: %s", self.path / rundir.PID_FILE, exc)

    # -- supervisor.log ---------------------------------------------------------------

    def _open_log(self) -> None:
        # rotated by size, each line about a node copied into that node's log (daemon/logs.py)
        self._log_handler = logs.supervisor_log(self.log, self.path, self.settings, self.members)

    def _reopen_log(self) -> None:
        """Log to the run directory's supervisor.log again (after the directory was made anew)."""
        old = self._log_handler
        try:
            self._open_log()
        except OSError:
            return
        if old is not None:
            self.log.removeHandler(old)
            old.close()

    def close_log(self) -> None:
        for handler in list(self.log.handlers):
            self.log.removeHandler(handler)
            handler.close()
