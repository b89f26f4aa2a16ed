"""How long one frame of ``ctl top`` takes: render and paint, 200 nodes, several sizes.

Run: ``.venv/bin/python bench/top_render.py [--nodes 200] [--frames 200]``

Prints, per terminal size and colour mode, the per-frame time (min / median / p95 in ms,
wall clock and the process's CPU time, which a busy shared machine disturbs less) for
``render`` and for ``Painter.paint`` of a frame where one wave changed every row.
The snapshot is synthetic (tests/top/top_synthetic.py): a random tree with extra DAG
edges, 32 waves of history, so every sparkline is full.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "top"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import top_synthetic as synth  # noqa: E402
from ctl.top.paint import Painter  # noqa: E402
from ctl.top.render import render  # noqa: E402
from ctl.top.view import HISTORY, ViewState  # noqa: E402

SIZES = ((80, 24), (200, 60), (240, 220))
MODES = ("truecolor", "256", "none")


def timed(fn, frames: int) -> tuple[list[float], list[float]]:
    wall, cpu = [], []
    for _ in range(frames):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        cpu.append((time.process_time() - c0) * 1000)
        wall.append((time.perf_counter() - w0) * 1000)
    return wall, cpu


def summary(samples: list[float]) -> str:
    s = sorted(samples)
    return f"{s[0]:6.2f} {statistics.median(s):6.2f} {s[int(len(s) * 0.95) - 1]:6.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=200)
    ap.add_argument("--frames", type=int, default=200)
    args = ap.parse_args()

    roster = synth.topology(args.nodes, seed=1, extra_edges=args.nodes // 5)
    view = ViewState(roster=roster)
    t = 1_764_245_123.0
    for k in range(HISTORY):
        view.observe(synth.snapshot(roster, seed=k, t=t + k), t + k)
    snap = synth.snapshot(roster, seed=HISTORY, t=t + HISTORY)
    other = synth.snapshot(roster, seed=HISTORY + 1, t=t + HISTORY)
    print(f"{args.nodes} nodes, {args.frames} frames each; ms per frame: min median p95")
    print(f"{'size':>8} {'colour':>9}  {'render wall':>20}  {'render cpu':>20}  {'paint wall':>20}")
    for width, height in SIZES:
        for mode in MODES:
            wall, cpu = timed(lambda: render(snap, width, height, view=view, color=mode, now=t + 40), args.frames)
            a = render(snap, width, height, view=view, color=mode, now=t + 40)
            b = render(other, width, height, view=view, color=mode, now=t + 41)

            def paint_changed():
                p = Painter()
                p.paint(a, width, height)
                p.paint(b, width, height)

            pwall, _ = timed(paint_changed, args.frames)
            print(f"{width:>4}x{height:<3} {mode:>9}  {summary(wall)}  {summary(cpu)}  {summary(pwall)}")


if __name__ == "__main__":
    main()
