"""Frames a hostile local client could send a node: schema-shaped from wire.SCHEMA, with
values chosen to hurt (NaN, infinities, huge and negative numbers, duplicate ids, long
strings, other nodes' names, forged epochs, far-away times), and random bytes.

Used by the in-process property test (tests/node/test_hostile.py) and by the live one
against real daemons (tests/e2e/test_hostile_frames.py), so both send the same kinds.
"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

from daemon import wire
from daemon.core.journal import MemoryJournal
from daemon.core import messages as m
from daemon.core.node import MAX_DONE_WAVES, MAX_WAVES, NodeConfig, NodeCore, Persist, Reply, Send, ShowTrace, routing_ids
from daemon.core.waves import new_wave_id
from daemon.topology import load
from daemon.trace.recorder import Recorder

FIELD_TYPES = {int: "int", float: "float", str: "str", bool: "bool", bytes: "bytes", list: "list", dict: "dict"}


OPERATOR_KINDS = ("ping", "wave.start", "submit", "move", "trace.get")


class FrameMaker:
    """``frame()`` -> (routing id, frame bytes); ``names`` are the cluster's nodes.

    About half the frames are well formed and plausible, from the right kind of sender
    (so that they reach deep: accepted transfers, moves of real tasks, waves joined);
    the rest are hostile. ``clock`` gives the target's time, ``queued`` (optional) the
    ids of tasks queued there, for moves that take real tasks."""

    def __init__(self, rng: random.Random, names: list[str], now: float, clock=None, queued=None):
        self.rng = rng
        self.names = list(names)
        self.now = now
        self.clock = clock or (lambda: self.now)
        self.queued = queued or (lambda: [])
        self.waves = [new_wave_id("e", int(now * 1e9) + k, f"h{k}") for k in range(6)]
        self.waves += [new_wave_id("f", int(now * 1e9) + k, f"h{k}") for k in range(3)]
        self.waves += ["w", "e-zz-1", new_wave_id("e", 1, "old"), new_wave_id("e", 2**70, "future"), "é" * 300]
        self.move_ids = [f"m{k}" for k in range(5)]
        self.task_ids = [f"t{k}" for k in range(8)]

    def sender(self) -> bytes:
        r = self.rng.random()
        if r < 0.55:
            return self.rng.choice(self.names).encode()
        if r < 0.8:
            return b"op-" + str(self.rng.randrange(4)).encode()
        if r < 0.9:
            return b""
        return self.rng.choice([b"\xff\xfe\xfd", b"evil", b"\x00" * 200, "é".encode()])

    def number(self, integral: bool):
        rng = self.rng
        choices = [0, 1, -1, 5, 2**31, 2**63 - 1, -(2**63), 2**64 - 1, rng.randrange(-10, 10**6)]
        if not integral:
            choices += [float("nan"), float("inf"), float("-inf"), 1e300, -1e300, 0.5, 1e-300,
                        self.now, self.now + 3.0, self.now + 1e6, rng.uniform(0, 10)]
        return rng.choice(choices)

    def text(self, field: str):
        rng = self.rng
        if field == "wave":
            return rng.choice(self.waves)
        if field == "move_id":
            return rng.choice(self.move_ids + ["x" * 300])
        if field in ("dest", "node", "name"):
            return rng.choice(self.names + ["nobody", "", "../../x"])
        return rng.choice(["", "label", "x" * 1000, "\x00", "é"])

    def task(self):
        rng = self.rng
        r = rng.random()
        if r < 0.7:
            return [rng.choice(self.task_ids), "hostile", self.number(False) if rng.random() < 0.3 else rng.uniform(0.01, 3)]
        return rng.choice([[], [1, 2, 3], ["a", "b"], "task", None, ["t0", "l", 1, 2]])

    def plausible(self, kind: str, field: str, want):
        rng, now = self.rng, self.clock()
        if field == "wave":
            return rng.choice(self.waves[:9])
        if field in ("budget", "timeout"):
            return rng.uniform(0.1, 5.0)
        if field == "cost":
            return rng.uniform(0.1, 3.0)
        if field == "tasks":
            if kind == "transfer":
                return [[f"x{rng.randrange(10**9)}", "moved", rng.uniform(0.1, 3.0)] for _ in range(rng.randrange(1, 4))]
            if kind == "move":
                queued = self.queued()
                return rng.sample(queued, min(len(queued), rng.randrange(1, 4))) if queued else ["t0"]
            return rng.randrange(1, 6)
        if field == "expires":
            return now + rng.uniform(0.5, 5.0)
        if field == "report":
            return b"op-0"
        if field in ("inc", "ninc"):
            return rng.sample(self.names, rng.randrange(len(self.names) + 1))
        if field == "waves":
            return rng.sample(self.waves[:9], rng.randrange(3))
        if field == "wave_ids":
            return rng.sample(self.waves[:9] + self.move_ids, rng.randrange(3))
        if field == "max_steps":
            return rng.randrange(0, 100)
        if field == "dest":
            return rng.choice(self.names)
        if field == "entries":
            return wire.pack_entries([(rng.choice(self.names), None, {"done": 1})])
        return self.value(field, want, hostile=False)

    def value(self, field: str, want, hostile: bool = True):
        rng = self.rng
        if hostile and rng.random() < 0.08:  # the wrong type altogether
            return rng.choice([None, "x", 3, 2.5, b"b", [], {}, True])
        want = want[0] if isinstance(want, tuple) else want
        if want is int:
            if field == "tasks":
                return rng.choice([0, 1, 3, 100_000, 100_001, 300_000, -1, 2**64])
            return self.number(True)
        if want is float:
            return self.number(False)
        if want is str:
            return self.text(field)
        if want is bool:
            return rng.random() < 0.5
        if want is bytes:
            if field == "entries":
                return wire.pack_entries([(rng.choice(self.names), None, {"done": 1})]) if rng.random() < 0.5 else rng.randbytes(rng.randrange(40))
            return rng.choice([b"op-0", b"", b"x" * 300, rng.randbytes(8)])
        if want is list:
            if field == "tasks":
                if rng.random() < 0.5:
                    return [self.task() for _ in range(rng.randrange(4))]
                return [rng.choice(self.task_ids) for _ in range(rng.randrange(4))]
            if field in ("inc", "ninc"):
                return [rng.choice(self.names + ["ghost", 7]) for _ in range(rng.randrange(4))]
            if field == "waves":
                return [rng.choice(self.waves + [5, None]) for _ in range(rng.randrange(4))]
            return [rng.choice(["a", 1, None]) for _ in range(rng.randrange(3))]
        if want is dict:
            return {"k": 1}
        return None

    def wave_message(self, kind: str) -> dict:
        """A plausible ``wave`` or ``wave.start`` frame: a message of echo or Finn (as the
        wave id's kind says), its parameters within their bounds."""
        rng = self.rng
        wave = rng.choice(self.waves[:9])
        finn = wave.startswith("f-")
        params = {"tasks": rng.randrange(0, 4), "cost": rng.uniform(0.1, 3.0)} if finn else {"detail": rng.random() < 0.5}
        if kind == "wave.start":
            return dict(wave=wave, kind="finn" if finn else "echo", params=params, timeout=rng.uniform(0.1, 5.0))
        msg = "finn" if finn else rng.choice(["explore", "echo"])
        body = {"explore": [], "echo": [self.plausible("echo", "entries", bytes)],
                "finn": [self.plausible("finn", "inc", list), self.plausible("finn", "ninc", list)]}[msg]
        if msg == "echo":  # an ECHO carries no parameters, budget or report
            return dict(wave=wave, msg=msg, body=body, params={}, budget=None, report=b"")
        return dict(wave=wave, msg=msg, body=body, params=params, budget=rng.uniform(0.1, 5.0), report=b"op-0")

    def message(self, plausible: bool) -> tuple[str, dict]:
        kind = self.rng.choice(sorted(wire.SCHEMA))
        if plausible and kind in ("wave", "wave.start"):
            return kind, self.wave_message(kind)
        if plausible:
            return kind, {f: self.plausible(kind, f, want) for f, want in wire.SCHEMA[kind].items()}
        fields = {f: self.value(f, want) for f, want in wire.SCHEMA[kind].items()}
        if self.rng.random() < 0.05:
            fields.pop(self.rng.choice(list(fields)), None) if fields else None
        return kind, fields

    def epoch(self) -> int:
        return self.rng.choice([1, int(self.now * 1e9) - 10**9, int(self.now * 1e9), 2**63 - 1, 2**64 - 1, -5])

    def frame(self) -> tuple[bytes, bytes]:
        rng = self.rng
        r = rng.random()
        if r < 0.05:
            return self.sender(), rng.randbytes(rng.randrange(64))
        if r < 0.55:  # plausible, from the right kind of sender
            kind, fields = self.message(True)
            epoch = int(self.now * 1e9)
            sender = (b"op-" + str(rng.randrange(4)).encode()) if kind in OPERATOR_KINDS else rng.choice(self.names).encode()
            return sender, wire.encode(kind, epoch, **fields)
        kind, fields = self.message(False)
        try:
            frame = wire.encode(kind, self.epoch(), **fields)
        except (OverflowError, ValueError, TypeError):  # msgpack cannot carry 2**64 as int64... some are refused here
            frame = rng.randbytes(16)
        if r < 0.08:
            frame = frame[: rng.randrange(len(frame) + 1)]
        return self.sender(), frame


# The node tests' common ground: the seed topology, a fixed clock, an epoch before it.
SEED = load(Path(__file__).resolve().parents[2] / "topologies" / "seed.toml")
NOW = 1_700_000_000.0
EPOCH = int((NOW - 10) * 1e9)


class Probe:
    """One node core (``subserviate``: parent tubularia, child pical) and its journal."""

    def __init__(self, name: str = "subserviate"):
        self.core = NodeCore(NodeConfig.of(SEED, name), EPOCH, NOW)
        self.journal = MemoryJournal()
        self.now = NOW
        self.sends: list[Send] = []
        self.replies: list[Reply] = []
        self.recorder = Recorder(name, EPOCH, routing_ids(frozenset(SEED.names)))
        self.traces: list[dict] = []  # the trace replies, decoded

    def run(self, effects) -> list:
        for eff in effects:
            if type(eff) is Persist:
                self.journal.apply(eff.records)
            elif type(eff) is Send:
                assert eff.dest in SEED.names and eff.dest != self.core.name, eff
                wire.pack(eff.msg, 1)  # whatever the core sends must frame
                self.sends.append(eff)
            elif type(eff) is Reply:
                wire.pack(eff.msg, 1)
                self.replies.append(eff)
            elif type(eff) is ShowTrace:  # answered as daemon/node.py does
                rec = self.recorder
                steps, dropped = rec.select(eff.wave_ids, eff.max_steps)
                frame = wire.pack_trace(EPOCH, rec.node, rec.inc, dropped, list(rec.seen), steps)
                assert len(frame) <= wire.MAX_FRAME
                self.traces.append(wire.decode(frame))
        return effects

    def frame(self, sender: bytes, frame: bytes) -> None:
        try:
            epoch, msg = wire.parse(frame)
        except wire.WireError:
            self.core.count("garbage")
            return
        effects = self.run(self.core.handle(sender, epoch, msg, self.now))
        self.recorder.record(self.now, 0.0, sender, epoch, msg, effects, self.core.board.queue_length)

    def send(self, sender: bytes, kind: str, /, epoch: int = EPOCH, **fields) -> None:
        self.frame(sender, wire.encode(kind, epoch, **fields))

    def tick(self, dt: float) -> None:
        self.now += dt
        effects = self.run(self.core.tick(self.now))
        if effects:
            self.recorder.record(self.now, 0.0, None, None, None, effects, self.core.board.queue_length)

    def last_error(self) -> str:
        errors = [r.msg for r in self.replies if type(r.msg) is m.Error]
        return errors[-1].code if errors else ""

    def check(self) -> None:
        core = self.core
        assert core.stats["internal"] == 0, core.last_internal
        assert len(core.waves) <= MAX_WAVES
        assert len(core.done_waves) <= MAX_DONE_WAVES
        # the journal holds exactly the board: a crash now would lose nothing
        state = self.journal.state()
        board = core.board
        on_board = Counter(t.id for t in board.queued) + Counter(t.id for t, _ in board.running.values())
        assert Counter(t.id for t in state.queue) == on_board
        assert (state.submitted, state.done) == (board.submitted, board.done)
        sample = board.sample(self.now, False)
        assert sorted(state.leaving) == sorted(o[0] for o in sample["outgoing"])
        assert sorted(mid for mid, v in state.seen.items() if v[2]) == sorted(sample["unconfirmed"])
