"""How long ``mpiexec -n K python -m daemon.mpi`` takes to bring a cluster up and down.

    .venv/bin/python bench/mpi_launch.py [K ...]     (default: 3 16)

For each K, on a topology of max(15, 2K) nodes (the demo for K <= 7, else a generated
tree), best and median of 3 runs of:

- ``floor``: ``mpiexec -n K python -c "from mpi4py import MPI; MPI.COMM_WORLD.allgather(0)"``,
  start to exit: what any MPI program of K Python ranks costs here;
- ``ctl start``: the same nodes under one supervisor (``ctl start`` until it returns);
- ``mpi up``: daemon.mpi from the launch to the published topology (every node ready);
- ``mpi down``: SIGTERM to mpiexec until it exits (every rank and node stopped);
- ``idle CPU``: the most CPU time one rank used in :data:`IDLE_WINDOW` seconds while the
  cluster served nothing (first run only): MPI quiet, no spinning.

All on this machine (ranks on loopback). Prints numbers; asserts nothing.
"""

import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from daemon.topogen import generate  # noqa: E402
from daemon.topology import dumps, load  # noqa: E402

PYTHON = sys.executable
MPIEXEC = str(Path(PYTHON).parent / "mpiexec")
RUNS = 3
IDLE_WINDOW = 5.0


def topology_for(k: int, folder: Path) -> Path:
    if 2 * k <= 15:
        return ROOT / "topologies" / "demo.toml"
    path = folder / f"tree{2 * k}.toml"
    path.write_text(dumps(generate(2 * k, "tree", seed=1)))
    return path


def timed(command, env) -> float:
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def idle_cpu(mpiexec_pid: int) -> float:
    """The most CPU seconds one rank of this mpiexec uses in IDLE_WINDOW seconds."""
    ranks = [p for p in psutil.Process(mpiexec_pid).children(recursive=True)
             if "daemon.mpi" in p.cmdline()]
    before = [sum(p.cpu_times()[:2]) for p in ranks]
    time.sleep(IDLE_WINDOW)
    return max(sum(p.cpu_times()[:2]) - b for p, b in zip(ranks, before))


def mpi_up_down(k: int, topology: Path, env: dict, folder: Path, idle: list) -> tuple[float, float]:
    publish = folder / "live.toml"
    start = time.perf_counter()
    proc = subprocess.Popen([MPIEXEC, "-n", str(k), PYTHON, "-m", "daemon.mpi", str(topology), "--publish", str(publish)],
                            env=env, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    try:
        while not publish.exists():
            if proc.poll() is not None:
                raise SystemExit(f"mpiexec exited {proc.returncode} before publishing")
            time.sleep(0.01)
        up = time.perf_counter() - start
        if not idle:
            idle.append(idle_cpu(proc.pid))
        start = time.perf_counter()
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        return up, time.perf_counter() - start
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def show(label: str, times: list[float]) -> str:
    return f"{label} {min(times):6.2f} {statistics.median(times):6.2f}"


def main(ks: list[int]) -> None:
    print(f"{'ranks':>5} {'nodes':>5}  {'floor':>13}  {'ctl start':>13}  {'mpi up':>13}  {'mpi down':>13}"
          f"  {'idle CPU':>8}   (seconds: best median of 3; idle CPU in {IDLE_WINDOW:.0f} s)")
    for k in ks:
        with tempfile.TemporaryDirectory(prefix="echofinn-bench-mpi-") as tmp:
            folder = Path(tmp)
            env = dict(os.environ, ECHOFINN_HOME=str(folder / "home"),
                       PYTHONPATH=os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]))
            topology = topology_for(k, folder)
            n = len(load(topology))
            floor = [timed([MPIEXEC, "-n", str(k), PYTHON, "-c",
                            "from mpi4py import MPI; MPI.COMM_WORLD.allgather(0)"], env) for _ in range(RUNS)]
            single = []
            for _ in range(RUNS):
                single.append(timed([PYTHON, "-m", "ctl", "start", str(topology)], env))
                subprocess.run([PYTHON, "-m", "ctl", "stop", "-t", str(topology)], env=env, check=True,
                               stdout=subprocess.DEVNULL)
            idle: list[float] = []
            ups, downs = zip(*(mpi_up_down(k, topology, env, folder, idle) for _ in range(RUNS)))
            print(f"{k:>5} {n:>5}  {show('', floor)}  {show('', single)}  {show('', list(ups))}  {show('', list(downs))}"
                  f"  {idle[0]:8.3f}", flush=True)


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [3, 16])
