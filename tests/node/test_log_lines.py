"""The logs (daemon/logs.py) and reading them (ctl logs): rotation by size with the
process's stderr following the file, the rate limit of refused frames, the lines a
node's steps make — waves and moves between real node cores of the seed tree, every
message framed and parsed by daemon/wire.py as between daemons — the supervisor's lines
copied into nodes' logs, and ``ctl logs`` on a run directory left behind (no process)."""

from __future__ import annotations

import json
import logging
import os

import pytest

from ctl.cli import main
from ctl.commands import logs as ctl_logs
from daemon import logs, wire
from daemon.core import journal as rec
from daemon.core import messages as m
from daemon.core.node import NodeConfig, NodeCore, Persist, Reconnect, Reply, Send
from daemon.core.tasks import Task
from daemon.core.waves import new_wave_id
from daemon.topology import dumps
from tests import wavemsgs as W
from tests.node.hostile import EPOCH, NOW, SEED
from tests.wavemsgs import echo_start_fields, finn_start_fields

OP = b"op-1"


# --- rotation -----------------------------------------------------------------------------


def records(n: int, width: int = 60) -> list[logging.LogRecord]:
    return [
        logging.LogRecord("t", logging.INFO, __file__, 1, f"line {k:05d} " + "x" * width, None, None) for k in range(n)
    ]


def test_a_log_is_rotated_at_its_size_keeping_its_backups(tmp_path):
    path = tmp_path / "root.log"
    handler = logs.RotatingLog(path, 4096, 2, stdio=())
    handler.setFormatter(logs.formatter("node root"))
    for r in records(300):  # about 30 kB: rotated several times
        handler.emit(r)
    handler.close()
    files = logs.rotated(path)
    assert [f.name for f in files] == ["root.log", "root.log.1", "root.log.2"]
    assert not (tmp_path / "root.log.3").exists()
    assert all(f.stat().st_size <= 4096 for f in files), [f.stat().st_size for f in files]
    assert all(f.stat().st_mode & 0o777 == 0o600 for f in files)
    # newest last, each file a run of consecutive lines
    numbers = [int(line.split("line ")[1][:5]) for f in reversed(files) for line in f.read_text().splitlines()]
    assert numbers == list(range(numbers[0], 300)) and numbers[0] > 0
    assert all(logs.parse(line)["source"] == "node root" for line in path.read_text().splitlines())


def test_a_rotation_takes_the_processs_stderr_to_the_new_file(tmp_path):
    """What the process prints outside the log (a traceback) stays beside its lines: an
    fd writing to the log file is pointed at the new file at each rotation (the test's
    own fd stands for stderr)."""
    path = tmp_path / "root.log"
    stderr = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    other = os.open(tmp_path / "elsewhere", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        handler = logs.RotatingLog(path, 4096, 1, stdio=(stderr, other))
        assert handler.stdio == [stderr]  # only the fd that writes to the log follows it
        handler.setFormatter(logs.formatter("node root"))
        for r in records(100):
            handler.emit(r)
        handler.close()
        os.write(stderr, b"Traceback (most recent call last):\n")
        assert path.read_text().endswith("Traceback (most recent call last):\n")
        assert "Traceback" not in (tmp_path / "root.log.1").read_text()
        assert (tmp_path / "elsewhere").read_text() == ""
    finally:
        os.close(stderr)
        os.close(other)


# --- refused frames, rate-limited -----------------------------------------------------------


def test_refused_frames_make_one_line_per_kind_per_ten_seconds_with_the_counts():
    limit = logs.RateLimit(now=0.0)
    stats = {"garbage": 0, "unauthorized": 0}
    assert limit.lines(stats, 1.0) == []
    stats["garbage"] = 3
    (first,) = limit.lines(stats, 2.0)  # the first is said at once
    assert first == (logging.WARNING, "garbage: 3 frames that are no protocol message since the start (3 in all)")
    for t in range(3, 12):  # 10,000 more within the next 10 s: not a word
        stats["garbage"] += 1000
        stats["unauthorized"] += 1 if t == 5 else 0
        said = limit.lines(stats, float(t))
        assert all(not text.startswith("garbage") for _, text in said), said
    # the other kind keeps its own turn: said at once, at t = 5
    (line,) = limit.lines(stats, 12.0)
    assert line[1] == "garbage: 9000 frames that are no protocol message in the last 10 s (9003 in all)"
    assert limit.lines(stats, 40.0) == []  # no growth, no line
    stats["garbage"] += 1
    assert limit.lines(stats, 40.5)[0][1].startswith("garbage: 1 frames that are no protocol message in the last 28 s")


def test_the_unauthorized_count_was_said_once_at_its_first_growth():
    limit = logs.RateLimit(now=0.0)
    said = limit.lines({"unauthorized": 1}, 5.0)
    assert said == [
        (
            logging.WARNING,
            "unauthorized: 1 frames refused: sender not allowed to say that there since the start (1 in all)",
        )
    ]


def test_a_contained_exception_is_an_error_with_its_text():
    limit = logs.RateLimit(now=0.0)
    (line,) = limit.lines({"internal": 2}, 1.0, "KeyError: 'x'")
    assert line[0] == logging.ERROR and line[1].endswith("(2 in all); the latest: KeyError: 'x'")


# --- what real steps say ---------------------------------------------------------------------


class Cluster:
    """Every node of the seed tree, a core and its log lines each, a FIFO network; each
    step's effects go to the node's WaveLog (as at log level debug) and its Persist
    effects to move_lines, as daemon/node.py hands them over."""

    def __init__(self):
        self.cores = {n: NodeCore(NodeConfig.of(SEED, n), EPOCH + k, NOW) for k, n in enumerate(SEED.names)}
        self.waves = {n: logs.WaveLog() for n in SEED.names}
        self.leaving: dict[str, dict] = {n: {} for n in SEED.names}
        self.lines: dict[str, list] = {n: [] for n in SEED.names}
        self.queue: list = []
        self.t = NOW
        self.lost: set[str] = set()  # nodes whose messages are dropped

    def take(self, node: str, effects: list) -> None:
        self.lines[node] += self.waves[node].step(effects, self.t)
        for e in effects:
            if type(e) is Persist:
                self.lines[node] += logs.move_lines(e.records, self.leaving[node])
            elif type(e) is Send and e.dest not in self.lost and node not in self.lost:
                self.queue.append((e.dest, node.encode(), wire.pack(e.msg, self.cores[node].epoch)))

    def step(self, node: str, sender: bytes, frame: bytes) -> None:
        epoch, msg = wire.parse(frame)
        self.t += 0.001
        self.take(node, self.cores[node].handle(sender, epoch, msg, self.t))

    def run(self, node: str, type_: str, **fields) -> None:
        self.step(node, OP, wire.encode(type_, EPOCH, **fields))
        while self.queue:
            self.step(*self.queue.pop(0))

    def tick(self, dt: float) -> None:
        self.t += dt
        for n, core in self.cores.items():
            self.take(n, core.tick(self.t))
        while self.queue:
            self.step(*self.queue.pop(0))

    def said(self, node: str, level: int | None = None) -> list[str]:
        return [text for lv, text in self.lines[node] if level is None or lv == level]


def wave(kind: str, k: int = 0) -> str:
    return new_wave_id(kind, int(NOW * 1e9) + k, f"r{k}")


def test_an_echo_says_each_nodes_outcome_once():
    c = Cluster()
    w = wave("e")
    c.run("root", "wave.start", **echo_start_fields(w, False, 5.0))
    assert c.said("root") == [f"wave {w}: decided (echo), 3 messages sent in 14 ms"]  # 14 steps of 1 ms after its own
    for node in SEED.names[1:]:
        (line,) = c.said(node)
        assert line.startswith(f"wave {w}: echoed to {SEED.parents(node)[0]}, "), line
    # a leaf: one message, at once
    assert c.said("outwhirled") == [f"wave {w}: echoed to root, 1 message sent in 0 ms"]
    assert all(lv == logging.DEBUG for lines in c.lines.values() for lv, _ in lines)


def test_an_echo_that_gives_up_names_whom_it_gave_up_on():
    c = Cluster()
    c.lost = {"pical"}  # its messages never arrive, nor do those to it
    w = wave("e")
    c.run("root", "wave.start", **echo_start_fields(w, False, 1.0))
    assert c.said("root") == []  # waiting
    c.tick(2.0)  # past every deadline
    father = SEED.parents("pical")[0]
    (line,) = c.said(father)
    assert line.startswith(f"wave {w}: echoed to {SEED.parents(father)[0]}, ") and line.endswith(
        "; gave up on pical"
    ), line
    (line,) = c.said("root")
    assert line.startswith(f"wave {w}: decided (echo), "), line


def test_a_finn_wave_says_each_decision_with_its_tasks():
    c = Cluster()
    w = wave("f")
    c.run("root", "wave.start", **finn_start_fields(w, 2, 1.0))
    for node in SEED.names:
        decided = [t for t in c.said(node) if t.startswith(f"wave {w}: decided")]
        assert len(decided) == 1 and ", 2 tasks enqueued, " in decided[0], c.said(node)
        assert f"2 tasks queued (finn {w})" in c.said(node)


def test_a_move_is_one_line_out_at_the_donor_and_one_in_at_the_destination():
    c = Cluster()
    c.run("root", "submit", id=1, tasks=6, cost=30.0, label="work")
    assert c.said("root", logging.INFO) == []
    assert "6 tasks queued (work)" in c.said("root", logging.DEBUG)
    c.run("root", "move", id=1, move_id="r1-0", dest="pical", tasks=[], count=2)
    assert c.said("root", logging.INFO) == ["move r1-0: 2 tasks out to pical"]
    assert c.said("pical", logging.INFO) == ["move r1-0: 2 tasks in from root"]
    assert "move r1-0: pical acknowledged 2 tasks" in c.said("root", logging.DEBUG)


def test_a_move_whose_destination_is_silent_is_taken_back_with_a_warning():
    c = Cluster()
    c.run("root", "submit", id=1, tasks=6, cost=30.0, label="work")
    c.lost = {"pical"}
    c.run("root", "move", id=1, move_id="r1-0", dest="pical", tasks=[], count=2)
    for _ in range(20):
        c.tick(0.5)
    assert c.said("root", logging.WARNING) == [
        "move r1-0: took 2 tasks from pical back: no acknowledgement by the deadline"
    ]


def test_a_late_ack_and_a_refused_transfer_are_said():
    task = Task("root:1:1", "work", 1.0)
    late = logs.move_lines([rec.Leave("r1-0", "pical", 9.0, (task,)), rec.Acked("r1-0")])
    assert late == [
        (logging.INFO, "move r1-0: 1 task out to pical after all (its late acknowledgement came after the take-back)")
    ]
    refused = logs.move_lines([rec.Seen("r1-0", "root", False, 99.0)])
    assert refused == [(logging.WARNING, "move r1-0: refused the transfer from root (past its expiry)")]


def test_waves_without_an_outcome_are_said_once_forgotten():
    log = logs.WaveLog()
    w = wave("e")
    assert log.step([Send("affixed", W.Explore(w, False, 1.0))], 0.0) == []
    assert log.expire(30.0) == []
    assert log.expire(61.0) == [(logging.DEBUG, f"wave {w}: no outcome here after 61 s, 1 message sent")]
    assert log.step([Send("affixed", W.Explore(w, False, 1.0))], 62.0) == []  # said: quiet from now on
    assert log.step([Reply(OP, m.Pong(1, "root", 1, {}, [])), Reconnect("x")], 63.0) == []


# --- the supervisor's lines in the nodes' logs ------------------------------------------------


def test_supervisor_lines_about_a_node_are_copied_into_its_log_and_its_process_mates(tmp_path):
    groups = {"root": ("root", "affixed"), "affixed": ("root", "affixed"), "pical": ("pical",)}
    copies = logs.NodeLines(tmp_path, lambda name: groups.get(name, ()))
    copies.setFormatter(logs.formatter("supervisor"))
    logger = logging.getLogger("echofinn.test.node-lines")
    logger.addHandler(copies)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        logger.error("node %s (pid %d) exited: %s; restart in %.1f s", "root", 42, "killed by SIGKILL", 0.1)
        logger.info("node root affixed: started pid 43, log %s", tmp_path / "root.log")
        logger.info("node pical: ready at tcp://127.0.0.1:1")
        logger.info("node nobody: not ours")
        logger.info("cluster seed: 3 nodes ready")
    finally:
        logger.removeHandler(copies)
    root = [logs.parse(line) for line in (tmp_path / "root.log").read_text().splitlines()]
    assert [r["text"] for r in root] == [
        "node root (pid 42) exited: killed by SIGKILL; restart in 0.1 s",
        f"node root affixed: started pid 43, log {tmp_path / 'root.log'}",
    ]
    assert root[0]["source"] == "supervisor" and root[0]["level"] == "ERROR"
    assert (tmp_path / "affixed.log").read_text().count("\n") == 2
    assert (tmp_path / "pical.log").read_text().count("\n") == 1
    assert not (tmp_path / "nobody.log").exists()


# --- ctl logs over a run directory left behind --------------------------------------------------


@pytest.fixture
def left_behind(tmp_path, monkeypatch):
    """A stopped cluster's run directory: root's log rotated once, no process."""
    monkeypatch.setenv("ECHOFINN_HOME", str(tmp_path / "home"))
    topo = tmp_path / "seed.toml"
    topo.write_text(dumps(SEED))
    run_dir = tmp_path / "home" / "seed"
    run_dir.mkdir(parents=True)
    (run_dir / "root.log.1").write_text(
        "".join(f"2026-12-08 02:00:00.{k:03d} node root[7] INFO old {k}\n" for k in range(5))
    )
    (run_dir / "root.log").write_text(
        "2026-12-08 02:00:01.000 node root[8] INFO new 0\nTraceback (most recent call last):\n"
    )
    (run_dir / "supervisor.log").write_text("2026-12-08 02:00:00.000 supervisor[6] INFO cluster seed: 8 nodes ready\n")
    return topo


def test_ctl_logs_prints_the_last_lines_across_rotated_files(left_behind, capsys):
    assert main(["logs", "root", "-n", "4", "-t", str(left_behind)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "2026-12-08 02:00:00.003 node root[7] INFO old 3",
        "2026-12-08 02:00:00.004 node root[7] INFO old 4",
        "2026-12-08 02:00:01.000 node root[8] INFO new 0",
        "Traceback (most recent call last):",
    ]
    assert main(["logs", "root", "-n", "0", "-t", str(left_behind)]) == 0
    assert capsys.readouterr().out == ""
    assert main(["logs", "--supervisor", "-t", str(left_behind)]) == 0
    assert capsys.readouterr().out == "2026-12-08 02:00:00.000 supervisor[6] INFO cluster seed: 8 nodes ready\n"


def test_ctl_logs_json_is_one_object_per_line(left_behind, capsys):
    assert main(["logs", "root", "-n", "2", "--json", "-t", str(left_behind)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines == [
        {"time": "2026-12-08 02:00:01.000", "source": "node root", "pid": 8, "level": "INFO", "text": "new 0"},
        {"text": "Traceback (most recent call last):"},
    ]


def test_ctl_logs_names_an_unknown_node_with_the_clusters_nodes(left_behind, capsys):
    assert main(["logs", "roto", "-t", str(left_behind)]) == 2
    err = capsys.readouterr().err
    assert "cluster seed has no node 'roto'; its nodes: root, affixed, haywagon" in err and "outwhirled" in err


def test_ctl_logs_says_where_it_looked_for_a_missing_log(left_behind, capsys):
    assert main(["logs", "pical", "-t", str(left_behind)]) == 1
    err = capsys.readouterr().err
    assert f"node pical: no log at {left_behind.parent / 'home' / 'seed' / 'pical.log'}" in err


def test_ctl_logs_wants_a_node_or_the_supervisor(left_behind, capsys):
    assert main(["logs", "-t", str(left_behind)]) == 2
    assert main(["logs", "root", "--supervisor", "-t", str(left_behind)]) == 2
    assert "not neither" in capsys.readouterr().err


def test_following_reads_on_across_a_rotation(tmp_path):
    """What ``ctl logs -f`` prints: whole lines only, the old file's rest, then the new
    file from its start."""
    path = tmp_path / "root.log"
    path.write_text("a\nb\npart")
    lines, offset = ctl_logs.last_lines(path, 5, complete_only=True)
    assert lines == ["a", "b"] and offset == 4
    seen: list[str] = []
    steps = iter(
        [
            lambda: path.open("a").write("ial\n"),
            lambda: (path.rename(tmp_path / "root.log.1"), path.write_text("c\n")),
            lambda: path.open("a").write("d\n"),
        ]
    )

    def stop():
        for action in steps:
            action()
            return False
        return True

    ctl_logs.follow(path, offset, seen.append, poll=0.0, stop=stop)
    assert seen == ["partial", "c", "d"]
