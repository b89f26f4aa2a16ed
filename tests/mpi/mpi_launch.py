"""Helpers for the MPI launcher's tests: a cluster started by a real ``mpiexec`` (the
MPICH wheel of the ``[mpi]`` extra), isolated and proven gone afterwards.

``mpi_env`` is ``tests/e2e``'s ``cluster_env`` (private ECHOFINN_HOME, flock'd ports,
teardown that fails the test if any process carrying the home is left) plus
``launch(ranks, topology, *args)``, which starts ``mpiexec -n RANKS python -m daemon.mpi
TOPOLOGY --publish FILE`` and returns an :class:`MpiRun`. Every launch is stopped by pid
at teardown (SIGTERM to mpiexec, then SIGKILL to every process of its tree seen alive).
"""

from __future__ import annotations

import importlib.util
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

import polling  # tests/polling.py: tests/ is on sys.path (tests/conftest.py)

ROOT = Path(__file__).resolve().parents[2]
MPIEXEC = Path(sys.executable).parent / "mpiexec"
SHM = Path("/dev/shm")
PUBLISH_TIMEOUT = 120.0  # seconds for a launch to publish its topology (2 shared cores)
EXIT_TIMEOUT = 60.0

# tests/e2e/conftest.py's ClusterEnv, loaded under its own name (both files are "conftest").
_spec = importlib.util.spec_from_file_location("e2e_cluster_env", ROOT / "tests" / "e2e" / "conftest.py")
_e2e = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_e2e)
ClusterEnv = _e2e.ClusterEnv


def mpi_missing() -> str | None:
    """Why the MPI tests cannot run here, or None."""
    if importlib.util.find_spec("mpi4py") is None:
        return "mpi4py is not installed: the [mpi] extra (pip install -e '.[mpi]'; `make test` installs it)"
    if not MPIEXEC.exists():
        return f"no mpiexec beside {sys.executable}: the [mpi] extra installs the mpich wheel"
    return None


def shm_files() -> set[str]:
    return {p.name for p in SHM.iterdir()} if SHM.is_dir() else set()


class MpiRun:
    """One launch: the mpiexec process, its output, the published file, its process tree."""

    RANK_LINE = re.compile(r"^# rank (\d+) on (\S+) \(pid (\d+), ([^)]+)\): (.*)$", re.M)

    def __init__(self, env: ClusterEnv, command: list[str], publish: Path, cwd: Path = ROOT):
        self.env = env
        self.publish = publish
        name = Path(command[0]).name
        self.out = env.tmp / f"{name}-{len(list(env.tmp.glob(f'{name}-*.out')))}.out"
        self.command = command
        with open(self.out, "wb") as out:
            self.proc = subprocess.Popen(command, env=env.env, cwd=cwd, stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=subprocess.STDOUT)
        self.seen: dict[tuple[int, float], psutil.Process] = {}
        self.watch()

    def output(self) -> str:
        return self.out.read_text(errors="replace")

    def watch(self) -> list[psutil.Process]:
        """mpiexec and every descendant alive now (hydra's proxies, ranks, nodes, burners),
        remembered for the checks and the teardown."""
        try:
            root = psutil.Process(self.proc.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            procs = []
        for proc in procs:
            try:
                self.seen.setdefault((proc.pid, proc.create_time()), proc)
            except psutil.Error:
                pass
        return procs

    def wait_published(self, timeout: float = PUBLISH_TIMEOUT) -> str:
        polling.wait_until(self.publish.exists, timeout, f"{self.publish} to be published", every=0.1,
                           unless=lambda: self.proc.poll() is not None
                           and f"{Path(self.command[0]).name} exited {self.proc.returncode}",
                           detail=self.output)
        self.watch()
        return self.publish.read_text()

    def ranks(self) -> dict[int, dict]:
        """From the published file's header: rank -> host, pid, address, nodes."""
        text = self.publish.read_text()
        return {int(m[1]): {"host": m[2], "pid": int(m[3]), "address": m[4], "nodes": m[5].split(", ")}
                for m in self.RANK_LINE.finditer(text)}

    def alive(self) -> list[psutil.Process]:
        """Every process of the launch seen so far that still exists (zombies included)."""
        self.watch()
        left = []
        for proc in self.seen.values():
            try:
                if proc.is_running():
                    left.append(proc)
            except psutil.Error:
                pass
        return left

    def wait_gone(self, timeout: float = EXIT_TIMEOUT) -> float:
        """Poll until mpiexec is reaped and every process seen is gone; returns the seconds
        it took. Fails naming what is left after ``timeout``."""
        start = time.monotonic()

        def left() -> str:
            names = [f"{p.pid} {' '.join(p.cmdline()) if p.is_running() else ''}" for p in self.alive()]
            return f"still there: {names}\n{self.output()}"

        polling.wait_until(lambda: self.proc.poll() is not None and not self.alive(), timeout,
                           "mpiexec and every process of the launch to be gone", detail=left)
        return time.monotonic() - start

    def stop(self) -> None:
        """SIGTERM to mpiexec (by pid), as a user's Ctrl-C or kill would."""
        self.watch()
        self.proc.send_signal(signal.SIGTERM)

    def kill_all(self) -> list[str]:
        """Teardown: whatever is left is SIGTERMed, then SIGKILLed, by pid. Returns what was left."""
        left = []
        if self.proc.poll() is None:
            self.stop()
            try:
                self.proc.wait(EXIT_TIMEOUT)
            except subprocess.TimeoutExpired:
                left.append(f"mpiexec pid {self.proc.pid} ignored SIGTERM")
        for proc in self.alive():
            left.append(f"pid {proc.pid}")
            try:
                proc.send_signal(signal.SIGKILL)  # psutil checks the pid still names it
            except psutil.Error:
                pass
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        return left


class MpiEnv(ClusterEnv):
    def __init__(self, tmp_path: Path):
        super().__init__(tmp_path)
        self.runs: list[MpiRun] = []

    def launch(self, ranks: int, topology: Path, *args: str, launcher: list[str] = (), wrap=None) -> MpiRun:
        """``mpiexec LAUNCHER -n RANKS python -m daemon.mpi TOPOLOGY --publish FILE ARGS``;
        ``wrap(command)`` may return the command to run instead (one entering a namespace)."""
        publish = self.tmp / "live.toml"
        command = [str(MPIEXEC), *launcher, "-n", str(ranks), *self.ranks_command(topology, publish, *args)]
        return self.run_launcher(wrap(command) if wrap else command, publish)

    @staticmethod
    def ranks_command(topology: Path, publish: Path, *args: str) -> list[str]:
        """What every rank runs: ``python -m daemon.mpi TOPOLOGY --publish FILE ARGS``."""
        return [sys.executable, "-m", "daemon.mpi", str(topology), "--publish", str(publish), *args]

    def run_launcher(self, command: list[str], publish: Path) -> MpiRun:
        """Any launcher's ``command`` (srun, sbatch --wait: tests/slurm), stopped at teardown."""
        run = MpiRun(self, command, publish)
        self.runs.append(run)
        return run

    def teardown(self) -> list[str]:
        problems = []
        for run in self.runs:
            problems += [f"left by {' '.join(run.command[:3])}...: {what}" for what in run.kill_all()]
        return problems + super().teardown()
