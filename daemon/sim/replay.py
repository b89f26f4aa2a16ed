"""Replay a real run's recordings in the simulator, step for step (``ctl sim replay``).

A recording (daemon/recording.py) holds one incarnation of one node: the core's start
state and every input it took. :func:`replay` builds a :class:`daemon.core.node.NodeCore`
from the header — config, epoch, start time, the recovered journal state — and feeds it
the recorded inputs in their order: each frame parsed again by daemon/wire.py into the
same typed message, each tick, each driver count and CPU reading. After every step it
compares the digest of the effects with the recorded one. Nodes and incarnations are
independent (a restarted incarnation starts from the journal state its own header holds),
so there is no global order to rebuild.

The first step whose effects differ is a :class:`Divergence`: node, incarnation, step
number, the input, the replayed effects and both digests. A recording cut short by a
SIGKILL replays up to its last complete step; one that reached its size limit up to
where it stopped.

Why it matters: a failure seen on real processes, where timing never repeats, becomes a
deterministic case — the same core, the same inputs, in a debugger if need be.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from daemon import wire
from daemon.core.node import NodeCore
from daemon.recording import SUFFIX, Recording, RecordingError, effects_digest, read, recording_dir

MAX_SHOWN = 2_000  # characters of an input or effects shown in a divergence


@dataclass
class Divergence:
    """The first step whose replayed effects are not those recorded."""

    path: str
    node: str
    epoch: int
    step: int  # 1 = the first step after the header
    input: str
    recorded: str  # the recorded digest (hex)
    replayed: str  # the replayed digest (hex)
    effects: str  # the replayed effects

    def text(self) -> str:
        return (f"divergence: node {self.node}, incarnation {self.epoch} ({self.path}), step {self.step}\n"
                f"  input:    {self.input}\n"
                f"  recorded: effects digest {self.recorded}\n"
                f"  replayed: effects digest {self.replayed}: {self.effects}")


@dataclass
class Replayed:
    """One incarnation replayed: how many steps, and how its recording ended."""

    path: str
    node: str
    epoch: int
    steps: int
    recovered: bool
    cut: int = 0
    full: bool = False
    divergence: Divergence | None = None


def replay(rec: Recording) -> Replayed:
    """Replay one incarnation; the result names the first divergence, if any."""
    core = NodeCore(rec.config, rec.epoch, rec.now, rec.recovered, journaled=rec.journaled)
    done = Replayed(rec.path, rec.name, rec.epoch, 0, rec.recovered is not None, rec.cut, rec.full)
    for i, step in enumerate(rec.steps, 1):
        kind = step[0]
        recorded = None
        if kind == "h":
            _, now, sender, epoch, frame, recorded = step
            try:
                frame_epoch, msg = wire.parse(frame)
            except wire.WireError as exc:  # the daemon hands the core only frames that parse
                done.divergence = Divergence(rec.path, rec.name, rec.epoch, i, f"a frame from {sender!r} at {now!r}",
                                             recorded.hex(), "-", f"the frame no longer parses: {exc}")
                return done
            effects = core.handle(sender, epoch, msg, now)
            what = f"handle from {sender!r} (epoch {epoch}) at {now!r}: {msg!r}"
            if frame_epoch != epoch:
                what += f" [the frame says epoch {frame_epoch}]"
        elif kind == "t":
            _, now, recorded = step
            effects = core.tick(now)
            what = f"tick at {now!r}"
        elif kind == "q":
            _, now, n, cost, label, recorded = step
            effects = core.enqueue(n, cost, label, now)
            what = f"enqueue {n} tasks of {cost!r} s ({label!r}) at {now!r}"
        elif kind == "c":
            if step[1] not in core.stats:
                raise RecordingError(f"{rec.path}: step {i} counts {step[1]!r}, which is no statistic of a node")
            core.count(step[1])
        elif kind == "k":
            core.refused = [tuple(pair) for pair in step[1]]
        else:  # "u"
            core.cpu_percent = step[1]
        done.steps = i
        if recorded is not None:
            digest = effects_digest(effects, rec.epoch)
            if digest != recorded:
                done.divergence = Divergence(rec.path, rec.name, rec.epoch, i, _short(what), recorded.hex(),
                                             digest.hex(), _short(repr(effects)))
                return done
    return done


@dataclass
class Report:
    """Every recording replayed, in order of node and incarnation."""

    runs: list[Replayed] = field(default_factory=list)

    @property
    def divergences(self) -> list[Divergence]:
        return [r.divergence for r in self.runs if r.divergence is not None]

    def summary(self) -> str:
        nodes = len({r.node for r in self.runs})
        steps = sum(r.steps for r in self.runs)
        lines = [f"replayed {nodes} node{'s' * (nodes != 1)}, {len(self.runs)} incarnation{'s' * (len(self.runs) != 1)}, "
                 f"{steps} steps: " + (f"{len(self.divergences)} diverged" if self.divergences else "no divergence")]
        for r in self.runs:
            if r.cut:
                lines.append(f"  {r.node} {r.epoch}: cut short ({r.cut} bytes of a last record): replayed up to step {r.steps}")
            if r.full:
                lines.append(f"  {r.node} {r.epoch}: reached its size limit: replayed up to step {r.steps}")
            if r.divergence is not None:
                lines.append(f"  {r.node} {r.epoch}: diverged at step {r.divergence.step}")
        return "\n".join(lines)


def recordings(target) -> list[Path]:
    """The recording files ``target`` names: a file, a run directory (its recording
    folder), or that folder. RecordingError if there are none."""
    path = Path(target)
    if path.is_file():
        return [path]
    if path.is_dir():
        folder = Path(recording_dir(path))
        folder = folder if folder.is_dir() else path
        files = sorted(p for p in folder.iterdir() if p.name.endswith(SUFFIX) and p.is_file())
        if not files:
            raise RecordingError(f"{path}: no recordings ({'*' + SUFFIX}) in {folder} "
                                 "(was the cluster started with [cluster] record = true?)")
        return files
    raise RecordingError(f"{path}: no such file or directory")


def replay_all(target) -> Report:
    """Read every recording ``target`` names (RecordingError at the first bad one), then
    replay each, incarnations of a node in the order they began."""
    recs = [read(p) for p in recordings(target)]
    recs.sort(key=lambda r: (r.name, r.epoch))
    return Report([replay(r) for r in recs])


def _short(text: str) -> str:
    return text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN] + f"... ({len(text)} characters)"

