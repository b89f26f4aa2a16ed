"""Painting frames: one write per frame, inside synchronized output, only changed lines."""

from __future__ import annotations

import re

import pyte
from hypothesis import given, settings
from hypothesis import strategies as st

from budget import examples

import top_synthetic as synth
from ctl.top.paint import BEGIN_SYNC, CLEAR, END_SYNC, Painter
from ctl.top.render import render
from ctl.top.view import ViewState

CUP = re.compile(r"\x1b\[(\d+);1H")


def test_first_frame_clears_and_draws_everything_in_one_synchronized_update():
    out = Painter().paint(["a", "b", "c"], 10, 3)
    assert out.startswith(BEGIN_SYNC + CLEAR) and out.endswith(END_SYNC)
    assert out.count(BEGIN_SYNC) == 1 and out.count(END_SYNC) == 1
    assert [int(y) for y in CUP.findall(out)] == [1, 2, 3]
    assert "\n" not in out  # addressed lines: the screen never scrolls


def test_only_changed_lines_are_rewritten():
    p = Painter()
    p.paint(["a", "b", "c"], 10, 3)
    out = p.paint(["a", "B", "c"], 10, 3)
    assert CLEAR not in out and [int(y) for y in CUP.findall(out)] == [2]
    assert p.paint(["a", "B", "c"], 10, 3) == ""  # nothing changed, nothing written


def test_resize_and_invalidate_redraw_everything():
    p = Painter()
    p.paint(["a", "b"], 10, 2)
    assert CLEAR in p.paint(["a", "b"], 11, 2)
    p.invalidate()
    assert CLEAR in p.paint(["a", "b"], 11, 2)


def test_a_full_width_line_keeps_its_last_column():
    screen = pyte.Screen(5, 2)
    stream = pyte.Stream(screen)
    p = Painter()
    stream.feed(p.paint(["abcde", "fghij"], 5, 2))
    stream.feed(p.paint(["abcde", "fghiJ"], 5, 2))
    assert screen.display == ["abcde", "fghiJ"]


@settings(max_examples=examples(25))
@given(seeds=st.lists(st.integers(0, 50), min_size=1, max_size=6), width=st.integers(40, 130),
       height=st.integers(8, 40), mode=st.sampled_from(["truecolor", "256", "none"]))
def test_incremental_frames_leave_the_same_screen_as_one_full_frame(seeds, width, height, mode):
    r = synth.topology(25, seed=7, extra_edges=4)
    view = ViewState(roster=r)
    painted = pyte.Screen(width, height)
    stream = pyte.Stream(painted)
    p = Painter()
    frame = []
    for k, seed in enumerate(seeds):
        snap = synth.snapshot(r, seed=seed, t=1000.0 + k)
        view.observe(snap, 1000.0 + k)
        frame = render(snap, width, height, view=view, color=mode, now=1000.0 + k)
        stream.feed(p.paint(frame, width, height))
    fresh = pyte.Screen(width, height)
    pyte.Stream(fresh).feed(Painter().paint(frame, width, height))
    assert painted.display == fresh.display
    for y in range(height):
        assert [(c.data, c.fg, c.reverse) for c in painted.buffer[y].values()] == \
               [(c.data, c.fg, c.reverse) for c in fresh.buffer[y].values()]
