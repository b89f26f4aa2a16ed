"""``ctl top`` with nodes down: a failed balancing round (key r) is shown, and a node
the supervisor has not RUNNING is marked with its state (from ``cluster.json``)."""

from __future__ import annotations

import os
import signal
import time

import pytest

import top_synthetic as synth
from top_frames import row_of, screen_of
from ctl.top.keys import Command
from ctl.top.loop import apply
from ctl.top.render import render
from ctl.top.view import ViewState
from ctl.top.worker import Outcome
from daemon.cluster.record import from_json
from daemon.operator import WaveTimeout

T = 1_764_245_123.0


def test_a_balancing_round_that_times_out_is_shown_in_header_and_footer(seed_roster):
    view = ViewState(roster=seed_roster)
    snap = synth.snapshot(seed_roster, t=T)
    apply(view, None, Outcome(Command("echo"), snap, None, T))
    error = WaveTimeout("echo wave e-1 from root did not come back within 2 s; silent nodes: pical", ["pical"])
    assert apply(view, snap, Outcome(Command("rebalance"), None, error, T + 1)) is snap
    screen = screen_of(render(snap, 100, 24, view=view, now=T + 2), 100, 24)
    assert "balancing round failed: echo wave e-1" in screen.display[-1]
    assert "silent: pical" in screen.display[1]


def test_a_balancing_round_with_unanswered_moves_or_missing_nodes_says_so(seed_roster):
    view = ViewState(roster=seed_roster)
    snap = synth.snapshot(seed_roster, t=T)
    result = {"moves": [{"from": "root", "to": "pical", "tasks": []}], "unanswered_moves": ["m-1"],
              "imbalance_before": 2.0, "imbalance_after": 2.0, "before": snap, "after": dict(snap, missing=["pical"])}
    apply(view, snap, Outcome(Command("rebalance"), result, None, T))
    assert view.status == (T, "balancing round incomplete: 1 move(s) unanswered; no answer from pical")


def test_a_refused_key_is_said_by_name_instead_of_no_answer(seed_roster):
    view = ViewState(roster=seed_roster)
    snap = dict(synth.snapshot(seed_roster, t=T), missing=["pical"], refused=[["subserviate", "pical"]])
    apply(view, None, Outcome(Command("echo"), snap, None, T))
    header = screen_of(render(snap, 140, 24, view=view, now=T + 1), 140, 24).display[1]
    assert "subserviate refused pical's key (a stale or foreign key)" in header and "no answer" not in header
    error = WaveTimeout("node root does not answer: root refused the operator key (a stale or foreign key)", ["root"],
                        [["root", "operator"]])
    apply(view, snap, Outcome(Command("echo"), None, error, T + 2))
    header = screen_of(render(snap, 160, 24, view=view, now=T + 3), 160, 24).display[1]
    assert "silent: root" in header and "root refused the operator key (a stale or foreign key)" in header
    result = {"moves": [], "unanswered_moves": [], "before": snap, "after": snap}
    apply(view, snap, Outcome(Command("rebalance"), result, None, T + 4))
    assert view.status == (T + 4, "balancing round incomplete: subserviate refused pical's key (a stale or foreign key)")


@pytest.mark.parametrize("entry, shown", [
    ({"state": "BACKOFF", "since": T + 1, "restarts": 3, "last_exit": "killed by SIGKILL"},
     "✗ BACKOFF since {since} (2.0 s), 3 restarts: killed by SIGKILL"),
    ({"state": "FATAL", "since": T + 1, "restarts": 1, "last_exit": "exit status 3 (port in use)"},
     "✗ FATAL since {since} (2.0 s), 1 restart: exit status 3 (port in use)"),
])
def test_a_node_the_supervisor_does_not_run_is_marked_with_its_state(seed_roster, entry, shown):
    view = ViewState(roster=seed_roster)
    snap = synth.snapshot(seed_roster, t=T)
    view.observe(snap, T)
    view.observe_timeout(["pical"], T + 1)
    view.observe_supervisor(from_json({"nodes": {"pical": entry, "root": {"state": "RUNNING"}}}, "cluster.json"))
    screen = screen_of(render(snap, 120, 24, view=view, now=T + 3), 120, 24)
    since = time.strftime("%H:%M:%S", time.localtime(T + 1))
    assert shown.format(since=since) in screen.display[row_of(screen, "pical")]
    view.observe_supervisor(from_json({"nodes": {"pical": {"state": "RUNNING"}}}, "cluster.json"))  # back: silence as before
    screen = screen_of(render(snap, 120, 24, view=view, now=T + 3), 120, 24)
    assert "no answer since" in screen.display[row_of(screen, "pical")]
    view.observe_supervisor(None)  # no record: nothing to say
    assert view.supervised == {}


@pytest.mark.e2e
def test_r_with_a_dead_node_shows_the_failure_and_the_node_fatal(cluster_env):
    from top_pty import node_row, start_seed, top_in_pty

    topo = start_seed(cluster_env, restart="never")
    t = top_in_pty(cluster_env, topo, "--timeout", "1", cols=120)
    try:
        t.wait_for(lambda t: "8/8 nodes up" in t.text(), what="the first echo wave")
        os.kill(cluster_env.record("seed")["nodes"]["pical"]["pid"], signal.SIGKILL)
        t.wait_for(lambda t: "FATAL" in node_row(t, "pical"), what="pical marked FATAL")
        assert "exit" in node_row(t, "pical") or "killed by SIGKILL" in node_row(t, "pical")
        t.press("r")
        t.wait_for(lambda t: "balancing round" in t.screen.display[-1], what="the round's failure in the footer")
        t.press("q")
        assert t.wait_exit() == 0
    finally:
        t.close()
