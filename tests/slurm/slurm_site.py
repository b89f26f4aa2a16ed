"""A one-host Slurm of the tests' own: munged, slurmctld and slurmd started by pid in a
temporary folder, on ports of the tests' port blocks, stopped and removed afterwards.

What it configures (the whole of it is :meth:`SlurmSite.config`):

- munge: a key made with ``mungekey`` in a 0700 folder, ``munged -F`` with its socket in a
  folder every user can traverse (munged refuses a socket folder without execute
  permission for all, so the folder is made under /tmp, not under pytest's 0700 tree).
  ``AuthInfo=socket=...`` points slurmctld, slurmd, slurmstepd and the client commands at it.
- Slurm: ``slurmctld -D`` and ``slurmd -D -N efnode``, both as root, on two ports of an
  flock'd block (tests/e2e/conftest.py), state, spool, pid and log files in the folder;
  one node ``efnode`` at 127.0.0.1 in one partition. Nothing needs systemd or cgroups:
  ``ProctrackType=proctrack/linuxproc`` (processes tracked by parentage),
  ``TaskPlugin=task/none``, no accounting, no job completion log, no cgroup.conf.
  ``SlurmdParameters=config_overrides`` lets the node claim :data:`CPUS` CPUs on a
  2-core machine, so three ranks fit without ``--overcommit``.
- MPI: Debian's Slurm offers ``--mpi=pmi2`` and ``--mpi=pmix``; its pmix plugin cannot
  load without libpmix (not installed), and the mpich wheel has no PMIx client linked
  in. The wheel's MPICH speaks PMI-1 by default (``MPIR_CVAR_PMI_VERSION=1``), and
  Slurm's pmi2 plugin answers the PMI-1 wire protocol on the same ``PMI_FD``, so
  ``srun --mpi=pmi2`` is what works (README.md, "Several machines").

Safety: a Slurm or munge that this site did not start is never touched.
:func:`foreign_daemons` lists any running, and the fixture then fails instead of
starting beside it. Every process stopped here is one this site started (by its
``Popen``) or a slurmstepd carrying this site's ``SLURM_CONF`` in its environment.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psutil

import polling  # tests/polling.py: tests/ is on sys.path (tests/conftest.py)

PROGRAMS = ("munged", "mungekey", "slurmctld", "slurmd", "srun", "sbatch", "scancel", "sinfo", "squeue", "scontrol")
DAEMONS = ("munged", "slurmctld", "slurmd", "slurmstepd")
NODE, PARTITION = "efnode", "efpart"
CPUS = 8
START_TIMEOUT = 60.0  # seconds for munged's socket, then for the node to be idle (2 shared cores)
STOP_TIMEOUT = 30.0  # seconds for a daemon to leave after SIGTERM, then SIGKILL
JOBS_TIMEOUT = 60.0  # seconds for cancelled jobs to leave the queue (KillWait is 30 s)


SBIN = ("/usr/sbin", "/sbin")  # the daemons' folders, on root's PATH only


def which(program: str) -> str | None:
    return shutil.which(program, path=os.pathsep.join([os.environ.get("PATH", ""), *SBIN]))


def missing() -> str | None:
    """Why this machine cannot run the Slurm tests, or None."""
    for program in PROGRAMS:
        if which(program) is None:
            return (f"`{program}` is not on PATH: Slurm and munge are not installed "
                    f"(`make test-slurm` installs Debian's slurm-wlm and munge)")
    if os.geteuid() != 0:
        return "needs root: slurmd runs the jobs as their users, and munged and slurmd are started here"
    return None


def foreign_daemons() -> list[str]:
    """Slurm and munge daemons running now, none of them ours: ``NAME pid PID``. Zombies
    do not count: a finished slurmstepd is reparented to init, which may reap it late."""
    found = []
    for proc in psutil.process_iter(["name", "pid", "status"]):
        if proc.info["name"] in DAEMONS and proc.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(f"{proc.info['name']} pid {proc.info['pid']}")
    return found


class SlurmSite:
    """One host's Slurm under ``folder`` (see the module docstring). :meth:`open` starts it,
    :meth:`close` stops what it started and removes the folder, and is safe to call twice."""

    def __init__(self, ports: tuple[int, int]):
        self.folder = Path(tempfile.mkdtemp(prefix="echofinn-slurm-"))
        self.folder.chmod(0o755)  # munged's socket folder must be traversable by all
        self.ctld_port, self.slurmd_port = ports
        self.conf = self.folder / "slurm.conf"
        self.socket = self.folder / "munge" / "munge.socket"
        self.daemons: list[tuple[str, subprocess.Popen]] = []  # in start order

    # -- configuration --------------------------------------------------------------

    def config(self) -> str:
        f = self.folder
        return "\n".join([
            "ClusterName=echofinn-test",
            f"SlurmctldHost={socket.gethostname()}(127.0.0.1)",
            f"SlurmctldPort={self.ctld_port}",
            f"SlurmdPort={self.slurmd_port}",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={self.socket}",
            "SlurmUser=root",
            "SlurmdUser=root",
            f"StateSaveLocation={f / 'state'}",
            f"SlurmdSpoolDir={f / 'spool'}",
            f"SlurmctldPidFile={f / 'slurmctld.pid'}",
            f"SlurmdPidFile={f / 'slurmd.pid'}",
            f"SlurmctldLogFile={f / 'slurmctld.log'}",
            f"SlurmdLogFile={f / 'slurmd.log'}",
            "MailProg=/bin/true",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "JobCompType=jobcomp/none",
            "SwitchType=switch/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_CPU",
            "SlurmdParameters=config_overrides",
            "MpiDefault=none",
            "ReturnToService=2",
            f"NodeName={NODE} NodeAddr=127.0.0.1 NodeHostname={socket.gethostname()} CPUs={CPUS} State=UNKNOWN",
            f"PartitionName={PARTITION} Nodes={NODE} Default=YES MaxTime=INFINITE State=UP",
            "",
        ])

    def env(self, base: dict | None = None) -> dict:
        """``base`` (default: this process's environment) with this site's ``SLURM_CONF``."""
        env = dict(os.environ if base is None else base)
        env["SLURM_CONF"] = str(self.conf)
        return env

    # -- start ----------------------------------------------------------------------

    def open(self) -> "SlurmSite":
        for sub in ("munge", "state", "spool"):
            (self.folder / sub).mkdir()
        keys = self.folder / "keys"
        keys.mkdir(mode=0o700)
        self.socket.parent.chmod(0o755)
        key = keys / "munge.key"
        subprocess.run([which("mungekey"), "--create", f"--keyfile={key}"], check=True, capture_output=True, text=True)
        self.conf.write_text(self.config())
        m = self.folder / "munge"
        self._start("munged", ["munged", "-F", f"--socket={self.socket}", f"--key-file={key}",
                               f"--pid-file={m / 'munged.pid'}", f"--seed-file={m / 'munged.seed'}",
                               f"--log-file={m / 'munged.log'}"])
        self._wait("munged's socket", self.socket.exists)
        self._start("slurmctld", ["slurmctld", "-D", "-f", str(self.conf)])
        self._start("slurmd", ["slurmd", "-D", "-N", NODE, "-f", str(self.conf)])
        self._wait(f"node {NODE} idle in sinfo", lambda: self.node_state() == "idle")
        return self

    def _start(self, name: str, command: list[str]) -> None:
        with open(self.folder / f"{name}.out", "wb") as out:
            proc = subprocess.Popen([which(command[0]), *command[1:]], env=self.env(), stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, cwd=self.folder)
        self.daemons.append((name, proc))

    def _wait(self, what: str, test) -> None:
        def exited() -> str | None:
            return next((f"{name} exited {proc.returncode}" for name, proc in self.daemons if proc.poll() is not None),
                        None)

        polling.wait_until(test, START_TIMEOUT, what, every=0.2, unless=exited, detail=self.logs)

    def logs(self, lines: int = 15) -> str:
        """The last lines of every daemon's output, for failure messages."""
        said = []
        for path in sorted(self.folder.glob("*.out")) + sorted(self.folder.glob("*.log")):
            tail = path.read_text(errors="replace").splitlines()[-lines:]
            said.append(f"--- {path}\n" + "\n".join(tail))
        return "\n".join(said)

    # -- the client commands ---------------------------------------------------------

    def command(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(list(args), env=self.env(), stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=timeout)

    def node_state(self) -> str:
        done = self.command("sinfo", "-h", "-N", "-n", NODE, "-o", "%T")
        return done.stdout.strip() if done.returncode == 0 else f"(sinfo exited {done.returncode})"

    def jobs(self) -> list[str]:
        """Ids of the jobs in the queue (pending, running or completing)."""
        done = self.command("squeue", "-h", "-o", "%i")
        return done.stdout.split() if done.returncode == 0 else []

    def job_state(self, job: str) -> str:
        """JobState of ``job`` as scontrol shows it (CANCELLED, RUNNING, ...)."""
        done = self.command("scontrol", "show", "job", job)
        for word in done.stdout.split():
            if word.startswith("JobState="):
                return word.partition("=")[2]
        return f"(scontrol exited {done.returncode}: {done.stderr.strip()})"

    def cancel_all(self) -> list[str]:
        """scancel every job of this site's queue and wait for the queue to empty."""
        jobs = self.jobs()
        if jobs:
            self.command("scancel", *jobs)
        deadline = time.monotonic() + JOBS_TIMEOUT
        while self.jobs():
            if time.monotonic() > deadline:
                return [f"jobs still queued {JOBS_TIMEOUT:.0f} s after scancel: {self.jobs()}"]
            time.sleep(0.2)
        return []

    # -- stop -----------------------------------------------------------------------

    def stepds(self) -> list[psutil.Process]:
        """slurmstepd processes of this site: their environment names its slurm.conf."""
        found = []
        for proc in psutil.process_iter(["name"]):
            if proc.info["name"] != "slurmstepd":
                continue
            try:
                if proc.environ().get("SLURM_CONF") == str(self.conf):
                    found.append(proc)
            except psutil.Error:
                continue
        return found

    def close(self) -> list[str]:
        """Cancel the jobs, stop slurmd, slurmctld and munged (SIGTERM, then SIGKILL) by
        pid, and any slurmstepd of ours left; remove the folder. Returns what went wrong."""
        problems = self.cancel_all() if any(name == "slurmctld" for name, _ in self.daemons) else []
        for name, proc in reversed(self.daemons):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    problems.append(f"{name} pid {proc.pid} ignored SIGTERM for {STOP_TIMEOUT:.0f} s: killed")
                    proc.kill()
                    proc.wait()
        self.daemons = []
        for proc in self.stepds():
            problems.append(f"slurmstepd pid {proc.pid} outlived slurmd: killed")
            try:
                proc.send_signal(signal.SIGKILL)  # psutil checks the pid still names it
            except psutil.Error:
                pass
        if problems:
            problems.append(self.logs())
        shutil.rmtree(self.folder, ignore_errors=True)
        return problems
