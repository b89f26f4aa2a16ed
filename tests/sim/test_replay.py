"""Recordings (daemon/recording.py) and their replay (daemon/sim/replay.py, ``ctl sim
replay``), in-process: a node core driven the way the daemon drives it, its inputs
recorded, then replayed — whole, cut short, past the size limit, restarted from a
journal state, tampered with, and in a process with another string-hash seed. The real
processes' recordings are replayed by tests/e2e/test_recording.py and
tests/e2e/test_chaos_real.py."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import pytest

from ctl.cli import main
from daemon import wire
from daemon.core import messages as m
from daemon.core.journal import JournalState
from daemon.core.node import NodeConfig, NodeCore
from daemon.core.tasks import Task
from daemon.recording import (RecordingWriter, RecordingError, add_effect, journal_state, read, recording_file, state_of)
from daemon.sim.replay import replay, replay_all
from tests import wavemsgs as W

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EPOCH = 1_800_000_000 * 10**9
START = 1_800_000_001.0
OPERATOR = b"op-1"
# a node with a parent and two children, so that its waves send to several peers
CONFIG = NodeConfig("mid", 2, ("top",), ("left", "right"), frozenset({"top", "mid", "left", "right"}), 4242)


class Driven:
    """A core driven as daemon/node.py drives it, every step recorded."""

    def __init__(self, run_dir, recovered: JournalState | None = None, epoch: int = EPOCH, limit: int | None = None):
        self.path = recording_file(run_dir, CONFIG.name, epoch)
        extra = {} if limit is None else {"limit": limit}
        self.rec = RecordingWriter(self.path, CONFIG.name, epoch, START, True, CONFIG, recovered, **extra)
        self.core = NodeCore(CONFIG, epoch, START, recovered)
        self.epoch = epoch
        self.now = START

    def executed(self, effects: list):
        """The step's digest, each effect added as daemon/node.py ``execute`` adds it."""
        digest = self.rec.begin()
        for effect in effects:
            add_effect(digest, effect, wire.pack(effect.msg, self.epoch) if hasattr(effect, "msg") else None)
        return digest

    def handle(self, sender: bytes, msg, epoch: int = EPOCH - 10**9) -> list:
        self.now += 0.01
        frame = wire.pack(msg, epoch)
        sender_epoch, parsed = wire.parse(frame)
        effects = self.core.handle(sender, sender_epoch, parsed, self.now)
        self.rec.end(("h", self.now, sender, sender_epoch, frame), self.executed(effects))
        return effects

    def tick(self, dt: float = 0.3) -> None:
        self.now += dt
        self.rec.end(("t", self.now), self.executed(self.core.tick(self.now)))

    def work(self) -> None:
        """Tasks, waves of both kinds, a move, counts and CPU readings, time passing."""
        self.rec.end(("q", self.now, 2, 0.2, "initial"), self.executed(self.core.enqueue(2, 0.2, "initial", self.now)))
        self.handle(OPERATOR, m.Submit(5, 0.4, "replayed"))
        self.rec.cpu(12.5)
        self.core.cpu_percent = 12.5
        for k in range(5):  # waves this node has sampled: the tags of its hand-off messages
            wave = wire.new_wave_id("e", int(self.now * 1e9) + 1, f"x{k}")
            self.handle(OPERATOR, W.EchoStart(wave, True, 2.0))
            for peer in ("top", "left", "right"):
                self.handle(peer.encode(), W.Echo(wave, b""))
        finn = wire.new_wave_id("f", int(self.now * 1e9) + 1, "y")
        self.handle(b"top", W.Finn(finn, ["top"], ["top"], 1, 0.1, OPERATOR))
        self.handle(OPERATOR, m.Move("mv-1", "left", [], 2))
        self.core.count("dropped")
        self.rec.count("dropped")
        self.handle(OPERATOR, m.Ping(7))
        for _ in range(8):
            self.tick()
        self.rec.close()


def test_a_recording_replays_every_step_without_divergence(tmp_path):
    run = Driven(tmp_path)
    run.work()
    rec = read(run.path)
    assert (rec.name, rec.epoch, rec.now, rec.config, rec.recovered, rec.cut, rec.full) == \
           (CONFIG.name, EPOCH, START, CONFIG, None, 0, False)
    done = replay(rec)
    assert done.divergence is None
    assert done.steps == len(rec.steps) == run.rec.steps > 15


def test_a_cut_recording_replays_up_to_its_last_complete_step(tmp_path):
    run = Driven(tmp_path)
    run.work()
    whole = read(run.path)
    with open(run.path, "r+b") as f:  # a SIGKILL in the middle of the last write
        f.truncate(os.path.getsize(run.path) - 3)
    rec = read(run.path)
    assert rec.cut > 0 and len(rec.steps) == len(whole.steps) - 1
    done = replay(rec)
    assert done.divergence is None and done.steps == len(whole.steps) - 1
    assert "cut short" in replay_all(run.path).summary()


def test_a_recording_stops_at_its_size_limit_with_a_marker(tmp_path):
    run = Driven(tmp_path, limit=800)
    run.work()
    assert os.path.getsize(run.path) <= 800
    rec = read(run.path)
    assert rec.full and 0 < len(rec.steps) < run.rec.steps
    done = replay(rec)
    assert done.divergence is None and done.steps == len(rec.steps)
    assert "size limit" in replay_all(run.path).summary()


def test_a_restarted_incarnation_replays_from_its_recovered_journal_state(tmp_path):
    recovered = JournalState(queue=[Task("mid:1:1", "a", 0.3), Task("mid:1:2", "a", 0.5)], submitted=4, done=2,
                             leaving={"mv-9": ("left", START + 3.0, (Task("mid:1:3", "b", 0.2),))},
                             seen={"mv-8": ("top", True, True, START + 600.0)},
                             told={"last_finn": ("f-1-a", START - 5.0, 1, 2)})
    assert set(state_of(recovered)) == {f.name for f in dataclasses.fields(JournalState)}  # none forgotten
    assert journal_state(wire.unpack_stream(wire.pack_value(state_of(recovered)))[0][0]) == recovered
    run = Driven(tmp_path, recovered=recovered, epoch=EPOCH + 5 * 10**9)
    run.work()
    rec = read(run.path)
    assert rec.recovered == recovered
    assert replay(rec).divergence is None


def _rewrite(path, change) -> None:
    """Rewrite a recording with ``change(records)`` applied."""
    with open(path, "rb") as f:
        records, _ = wire.unpack_stream(f.read())
    change(records)
    with open(path, "wb") as f:
        f.write(b"".join(wire.pack_value(r) for r in records))


def test_a_step_that_gives_other_effects_is_the_first_divergence(tmp_path):
    run = Driven(tmp_path)
    run.work()

    def tamper(records):  # the ping's answer as if the node had counted one garbage frame
        ping = next(i for i, r in enumerate(records) if r[0] == "h" and wire.parse(r[4])[1] == m.Ping(7))
        records.insert(ping, ["c", "garbage"])

    _rewrite(run.path, tamper)
    report = replay_all(run.path)
    [d] = report.divergences
    assert d.node == "mid" and d.epoch == EPOCH
    assert "Ping(id=7)" in d.input and "Pong(" in d.effects and d.recorded != d.replayed
    assert read(run.path).steps[d.step - 1][0] == "h"


def test_ctl_sim_replay_exits_0_1_2_and_names_the_file(tmp_path, capsys):
    run = Driven(tmp_path)
    run.work()
    assert main(["sim", "replay", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "replayed 1 node, 1 incarnation," in out and "no divergence" in out

    _rewrite(run.path, lambda records: records[-1].__setitem__(-1, b"\0" * 16))  # the last tick's digest
    assert main(["sim", "replay", run.path]) == 1
    out = capsys.readouterr().out
    assert f"divergence: node mid, incarnation {EPOCH} ({run.path}), step" in out and "tick at" in out

    bad = tmp_path / "recording" / "other.1.rec"
    bad.write_bytes(b"\xc1garbage")
    assert main(["sim", "replay", str(tmp_path)]) == 2
    assert str(bad) in capsys.readouterr().err
    assert main(["sim", "replay", str(tmp_path / "nowhere")]) == 2
    assert "nowhere: no such file or directory" in capsys.readouterr().err


@pytest.mark.parametrize("garbage", [b"", wire.pack_value(["header", 1]), wire.pack_value(["t", 1.0, b"x"]),
                                     wire.pack_value(["header", 99, "mid", 1, 1.0, True, [], "", "", None])])
def test_a_file_that_is_no_recording_is_named(tmp_path, garbage):
    path = tmp_path / "x.rec"
    path.write_bytes(garbage)
    with pytest.raises(RecordingError, match=str(path)):
        read(path)


def test_a_step_of_no_known_shape_is_named(tmp_path):
    run = Driven(tmp_path)
    run.work()
    _rewrite(run.path, lambda records: records.insert(2, ["h", 1.0, "not bytes"]))
    with pytest.raises(RecordingError, match="record 2 is not a step"):
        read(run.path)


@pytest.mark.e2e  # it starts Python processes (another string-hash seed each)
def test_replay_in_a_process_with_another_string_hash_seed(tmp_path):
    """The recording was made here; another process hashes strings differently: Finn's
    sets and every table of the core must not care."""
    run = Driven(tmp_path)
    run.work()
    for hashseed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=hashseed)
        done = subprocess.run([sys.executable, "-m", "ctl", "sim", "replay", run.path], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr


def test_a_write_that_fails_ends_the_recording_and_the_node_serves_on(tmp_path, capsys):
    run = Driven(tmp_path)
    run.handle(OPERATOR, m.Ping(1))
    run.rec.flush()
    os.close(run.rec._fd)  # as a full disk would: the next write fails
    run.rec._fd = os.open(os.devnull, os.O_RDONLY)
    run.handle(OPERATOR, m.Ping(2))
    run.rec.flush()
    assert "recording stopped" in capsys.readouterr().err
    run.handle(OPERATOR, m.Ping(3))
    run.rec.close()
    rec = read(run.path)
    assert len(rec.steps) == 1 and replay(rec).divergence is None
