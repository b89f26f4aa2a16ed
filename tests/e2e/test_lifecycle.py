"""Process lifecycle with real processes: start, status, stop, failures, and what a SIGKILL
of the supervisor takes with it. Every check of "nothing is left" is made by pid."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
import time

import psutil
import pytest

from daemon.burner import Burner
from cluster_helpers import squat
from polling import wait_until

pytestmark = pytest.mark.e2e

SEED = ["root", "affixed", "haywagon", "tubularia", "preindemnifying", "subserviate", "pical", "outwhirled"]
DEATH_WAIT = 10.0  # bound on "dies within a few seconds": generous, the machine is shared


def test_start_status_stop_leaves_no_process(cluster_env):
    topo = cluster_env.topology("seed.toml", rebalance_interval=0)
    started = cluster_env.ctl("start", topo)
    assert started.returncode == 0, started.stderr
    assert "8/8 ready" in started.stderr
    assert str(cluster_env.home / "seed") in started.stdout

    status = cluster_env.ctl_json("status")  # no -t: the most recently started cluster
    assert status["cluster"] == "seed" and status["running"]
    assert [n["name"] for n in status["nodes"]] == SEED
    assert all(n["alive"] for n in status["nodes"]), status["nodes"]
    ports = cluster_env.ports(topo)
    assert [n["endpoint"] for n in status["nodes"]] == [f"tcp://127.0.0.1:{ports[n]}" for n in SEED]
    text = cluster_env.ctl("status")
    assert text.returncode == 0 and "8/8 nodes alive" in text.stdout, text.stdout

    record = cluster_env.record("seed")
    pids = [(record["supervisor"]["pid"], record["supervisor"]["create_time"])] + [
        (n["pid"], n["create_time"]) for n in record["nodes"].values()]
    assert status["supervisor"]["pid"] == pids[0][0]

    stopped = cluster_env.ctl("stop")
    assert stopped.returncode == 0, stopped.stderr
    assert "stopped cluster seed" in stopped.stdout
    left = [pid for pid, started_at in pids if not cluster_env.gone(pid, started_at)]
    assert not left, f"still there (or zombies) after ctl stop: {left}"
    assert not cluster_env.processes()
    assert not (cluster_env.home / "seed" / "supervisor.pid").exists()
    assert cluster_env.record("seed")["state"] == "stopped"

    after = cluster_env.ctl("status", "-t", topo)
    assert after.returncode == 1 and "cluster seed is stopped (since " in after.stderr
    again = cluster_env.ctl("stop", "-t", topo)
    assert again.returncode == 1 and "nothing to stop: cluster seed is stopped" in again.stderr


def test_start_twice_is_refused(cluster_env):
    topo = cluster_env.topology("seed.toml", rebalance_interval=0)
    first = cluster_env.ctl_json("start", topo)
    assert first["cluster"] == "seed" and first["run_dir"] == str(cluster_env.home / "seed")
    assert [n["name"] for n in first["nodes"]] == SEED
    second = cluster_env.ctl("start", topo)
    assert second.returncode == 1
    assert f"cluster seed is already running (supervisor pid {first['supervisor']})" in second.stderr
    assert "ctl stop -t" in second.stderr and "Traceback" not in second.stderr
    status = cluster_env.ctl_json("status", "-t", topo)
    assert status["supervisor"]["pid"] == first["supervisor"]
    assert [n["pid"] for n in status["nodes"]] == [n["pid"] for n in first["nodes"]]


def test_status_names_a_node_alive_but_not_answering(cluster_env):
    """A node whose process lives but does not answer a ping (SIGSTOPped here, as a stuck
    one) fails ``ctl status`` (exit 1) by name: never "8/8 nodes alive" and exit 0."""
    topo = cluster_env.start("seed.toml")
    pical = cluster_env.record("seed")["nodes"]["pical"]
    os.kill(pical["pid"], signal.SIGSTOP)
    try:
        text = cluster_env.ctl("status", "-t", topo, "--timeout", "5")
        as_json = cluster_env.ctl("status", "-t", topo, "--timeout", "5", "--json")
    finally:
        os.kill(pical["pid"], signal.SIGCONT)
    assert text.returncode == 1, text.stdout + text.stderr
    assert "8/8 nodes alive, 7/8 answering" in text.stdout, text.stdout
    assert "node pical is alive but not answering (no pong within 5 s: stopped or stuck?)" in text.stdout, text.stdout
    report = json.loads(as_json.stdout)
    assert as_json.returncode == 1 and report["ping_timeout"] == 5
    assert [n["name"] for n in report["nodes"] if n["alive"] and n["ping_ms"] is None] == ["pical"], report["nodes"]
    wait_until(lambda: cluster_env.ctl("status", "-t", topo, "--timeout", "5").returncode == 0, 60, "pical answering again")


def test_taken_port_fails_start_naming_node_and_port(cluster_env):
    topo = cluster_env.topology("seed.toml")
    port = cluster_env.ports(topo)["affixed"]
    with squat(port):
        result = cluster_env.ctl("start", topo)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"node affixed: port {port} (tcp://127.0.0.1:{port}) is already in use" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert not cluster_env.processes(), [p.cmdline() for p in cluster_env.processes()]
    assert not (cluster_env.home / "seed" / "supervisor.pid").exists()


def test_a_port_held_by_another_of_your_clusters_names_its_node_and_cluster(cluster_env):
    mine = cluster_env.start("seed.toml", name="mine")
    held = cluster_env.ports(mine)["pical"]
    mine_record = cluster_env.record("mine")
    other = cluster_env.topology("dag.toml", name="other", nodes={"issuance": {"port": held}})
    result = cluster_env.ctl("start", other)
    assert result.returncode == 1, result.stdout + result.stderr
    pid = mine_record["nodes"]["pical"]["pid"]
    assert (f"node issuance: port {held} (tcp://127.0.0.1:{held}) is already in use by node pical of your cluster "
            f"mine (its port, pid {pid}); stop that cluster (`ctl stop -t mine`)") in result.stderr, result.stderr
    assert not (cluster_env.home / "other" / "supervisor.pid").exists()


def test_node_that_cannot_bind_fails_the_supervisor(cluster_env):
    """The port is taken after ctl's check: the node's own error line reaches the
    supervisor's progress output, the other nodes are stopped, the exit is non-zero."""
    topo = cluster_env.topology("seed.toml")
    port = cluster_env.ports(topo)["pical"]
    run_dir = cluster_env.home / "seed"
    with squat(port):
        result = subprocess.run(
            [sys.executable, "-m", "daemon.supervisor", "--topology", str(topo), "--run-dir", str(run_dir)],
            env=cluster_env.env, capture_output=True, text=True, timeout=60,
        )
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"error node pical: port {port} (tcp://127.0.0.1:{port}) is already in use" in result.stdout
    assert result.stdout.splitlines()[-1].startswith("failed")
    record = cluster_env.record("seed")
    assert record["state"] == "failed" and record["nodes"]["pical"]["state"] == "FATAL"
    for name, node in record["nodes"].items():
        assert node["state"] in ("FATAL", "STOPPED"), (name, node)
        assert cluster_env.gone(node["pid"], node["create_time"]), name
    assert not cluster_env.processes()
    assert not (run_dir / "supervisor.pid").exists()


def test_sigkill_of_supervisor_takes_nodes_and_burners(cluster_env):
    busy = {"root": {"tasks": 2}, "pical": {"tasks": 1}}
    topo = cluster_env.topology("seed.toml", nodes=busy, rebalance_interval=0, task_time=300.0)
    assert cluster_env.ctl("start", topo).returncode == 0

    def burners():
        found = [p for p in cluster_env.processes() if "daemon.burner" in p.cmdline()]
        return found if len(found) == 2 else None

    wait_until(burners, DEATH_WAIT, "the burners of root and pical")
    family = [(p.pid, p.create_time()) for p in cluster_env.processes()]
    assert len(family) == 1 + 8 + 2  # supervisor, nodes, burners
    supervisor = psutil.Process(cluster_env.record("seed")["supervisor"]["pid"])
    supervisor.send_signal(signal.SIGKILL)

    wait_until(lambda: all(cluster_env.gone(pid, t) for pid, t in family), DEATH_WAIT,
               "the supervisor, every node and every burner to be gone and reaped")
    assert not cluster_env.processes()

    status = cluster_env.ctl("status", "-t", topo)
    assert status.returncode == 1 and "is gone" in status.stderr
    stop = cluster_env.ctl("stop", "-t", topo)
    assert stop.returncode == 0 and "not running" in stop.stdout
    assert not (cluster_env.home / "seed" / "supervisor.pid").exists()
    restarted = cluster_env.ctl("start", topo)
    assert restarted.returncode == 0, restarted.stderr
    assert all(n["alive"] for n in cluster_env.ctl_json("status", "-t", topo)["nodes"])


def test_bad_topology_exits_2_and_starts_nothing(cluster_env, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[cluster]\nname = "bad"\n\n[[node]]\nname = "root"\ncpus = 0\n')
    result = cluster_env.ctl("start", bad)
    assert result.returncode == 2
    assert str(bad) in result.stderr and "cpus" in result.stderr
    assert "Traceback" not in result.stderr
    assert not cluster_env.processes()
    assert not (cluster_env.home / "bad").exists()
    nothing = cluster_env.ctl("stop")  # nothing to stop: said, exit 1
    assert nothing.returncode == 1 and "no cluster was ever started on this host" in nothing.stderr


def test_foreground_start_stops_everything_on_sigterm(cluster_env):
    topo = cluster_env.topology("seed.toml", rebalance_interval=0)
    ctl = subprocess.Popen(
        [sys.executable, "-m", "ctl", "start", str(topo), "--foreground"], env=cluster_env.env,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 60
        said = ""
        while "is running" not in said:
            assert time.monotonic() < deadline, f"no 'is running' from ctl start --foreground: {said!r}"
            if select.select([ctl.stdout], [], [], 1.0)[0]:
                line = ctl.stdout.readline()
                assert line, f"ctl start --foreground ended early: {said!r} {ctl.stderr.read()!r}"
                said += line
        status = cluster_env.ctl_json("status", "-t", topo)
        assert status["supervisor"]["pid"] == ctl.pid
        assert all(n["alive"] for n in status["nodes"])
        nodes = [(n["pid"], n["create_time"]) for n in cluster_env.record("seed")["nodes"].values()]
        ctl.send_signal(signal.SIGTERM)
        out, err = ctl.communicate(timeout=30)
    finally:
        if ctl.poll() is None:
            ctl.kill()
            ctl.wait()
    assert ctl.returncode == 0, err
    assert "cluster seed stopped" in out
    assert all(cluster_env.gone(pid, t) for pid, t in nodes)
    assert not cluster_env.processes()


# --- the burner -----------------------------------------------------------------------


def test_burner_runs_busy_slots_as_sched_idle_threads_and_closes(cluster_env):
    burner = Burner("testnode")
    try:
        assert burner.pids() == []  # started lazily
        burner.set_busy(0)
        assert burner.pids() == []
        burner.set_busy(3)
        (pid,) = burner.pids()
        proc = psutil.Process(pid)
        # Popen returns once exec has begun; /proc shows the new command line a moment later.
        wait_until(lambda: proc.cmdline()[-2:] == ["--node", "testnode"], DEATH_WAIT, "the burner's command line")
        wait_until(lambda: proc.num_threads() == 4, DEATH_WAIT, "main thread + 3 burning threads")
        policies = {os.sched_getscheduler(t.id) for t in proc.threads()}
        assert policies == {os.SCHED_IDLE}
        wait_until(lambda: sum(proc.cpu_times()[:2]) > 0.05, DEATH_WAIT, "the burner to use CPU")
        burner.set_busy(1)
        burner.set_busy(0)
        assert burner.pids() == [pid]  # idle, not gone: the process is kept for the next task
    finally:
        burner.close()
    assert burner.pids() == []
    assert cluster_env.gone(pid)


def test_a_burner_killed_before_it_hears_its_slots_is_replaced(cluster_env):
    """A node starts its burner, then writes the busy slots to its stdin. A burner that
    dies in between (the write meets a closed pipe) is replaced on the node's next
    housekeeping call (``pids()``), as one that dies later is: its tasks must not burn
    nothing until their number of busy slots changes. The kill is placed in that gap by
    the test (a subclass kills the new process right after starting it), on a real
    process and a real pipe."""

    class KilledAtStart(Burner):
        first = None

        def _start(self):
            super()._start()
            if self.first is None:
                self.first = self._proc
                self._proc.kill()  # this test's own child, by pid
                # dead but not reaped: its end of the pipe is closed, the write will fail
                os.waitid(os.P_PID, self._proc.pid, os.WEXITED | os.WNOWAIT)

    burner = KilledAtStart("testnode")
    try:
        burner.set_busy(2)  # "burner pid N is gone"
        (pid,) = wait_until(lambda: burner.pids(), DEATH_WAIT, "a new burner")
        assert pid != burner.first.pid
        proc = psutil.Process(pid)
        wait_until(lambda: proc.num_threads() == 3, DEATH_WAIT, "main thread + 2 burning threads")
        assert burner.first.returncode == -signal.SIGKILL  # the dead one was reaped on the way
    finally:
        burner.close()
    assert cluster_env.gone(burner.first.pid) and cluster_env.gone(pid)


def test_burner_dies_with_its_node(cluster_env):
    """The burner's parent (a stand-in for a node) is SIGKILLed: the burner follows."""
    node = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\n"
         "from daemon.burner import Burner\n"
         "b = Burner('standin'); b.set_busy(1); print(b.pids()[0], flush=True); time.sleep(120)\n"],
        env=cluster_env.env, stdout=subprocess.PIPE, text=True,
    )
    try:
        burner_pid = int(node.stdout.readline())
        burner_start = psutil.Process(burner_pid).create_time()
    finally:
        node.kill()
        node.wait()
    wait_until(lambda: cluster_env.gone(burner_pid, burner_start), DEATH_WAIT, f"burner pid {burner_pid} to die")


def test_too_few_open_files_fails_the_start_saying_so_once(cluster_env):
    """A hard limit on open files below what the cluster needs (a notify pipe per starting
    node): the supervisor stops at the first node it cannot start instead of failing each
    of the others too, says which limit, and leaves nothing running."""
    import resource

    topo = cluster_env.topology("binary31.toml")
    result = subprocess.run(
        [sys.executable, "-m", "ctl", "start", str(topo)], env=cluster_env.env, cwd=cluster_env.tmp,
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (24, 24)),
    )
    cluster_env.processes()
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Too many open files (this process may open 24, at most 24" in result.stderr, result.stderr
    assert "`ulimit -n` raises the limit" in result.stderr
    # the first node that could not start, not each of the others after it
    assert len(set(re.findall(r"node (\S+): cannot start", result.stderr))) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert not cluster_env.processes(), [p.cmdline() for p in cluster_env.processes()]
