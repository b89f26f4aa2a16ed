"""``ctl top`` for real: a cluster of real node processes, ``ctl top`` in a pseudo-terminal
read back through pyte, keys pressed, the frame checked, the terminal restored."""

from __future__ import annotations

import os
import re
import signal
import termios

import pytest

from top_pty import PtyTerminal, node_row, start_seed, top_in_pty

pytestmark = pytest.mark.e2e


def fields(t: PtyTerminal, name: str) -> list[str]:
    """The columns after a node's name on its row: cpus, run/que, done, bar, load, ..."""
    return node_row(t, name).split(name, 1)[-1].split() or ["", "", ""]


def queued(t: PtyTerminal, name: str) -> int:
    run_que = fields(t, name)[1]
    return int(run_que.split("/")[1]) if "/" in run_que else -1


def test_live_view_keys_and_a_clean_exit(cluster_env):
    topo = start_seed(cluster_env, task_time=30.0)  # tasks that stay running while we look

    # --once without a terminal: one plain frame, every node, then exit.
    once = cluster_env.ctl("top", "--once", "-t", topo, "--width", "100")
    assert once.returncode == 0, once.stderr
    lines = once.stdout.splitlines()
    assert lines[0].startswith("seed  8/8 nodes up  38 cpus")
    assert len(lines) == 4 + 8 + 1 and all(len(line) <= 100 for line in lines)
    assert "\x1b" not in once.stdout
    for name in ("root", "├─ affixed", "└─ outwhirled", "└─ pical"):
        assert name in once.stdout
    bad = cluster_env.ctl("top", "-t", topo)  # stdin is not a terminal
    assert bad.returncode == 1 and "needs a terminal" in bad.stderr and "Traceback" not in bad.stderr
    bad = cluster_env.ctl("top", "-t", topo, "--width", "80")
    assert bad.returncode == 2 and "--once" in bad.stderr

    t = top_in_pty(cluster_env, topo)
    saved = termios.tcgetattr(t.master)
    try:
        t.wait_for(lambda t: "8/8 nodes up" in t.text() and "echo from root: 14 msgs" in t.text(),
                   what="the first echo wave")
        assert (True, (1049,)) in t.screen.private_modes  # the alternate screen
        assert t.screen.cursor.hidden
        assert "└─ outwhirled" in t.text() and "│        └─ pical" in t.text()
        assert node_row(t, "root").startswith("▶")

        # ↓ ↓ selects haywagon; t 5 Enter submits five 30-second tasks there.
        t.press("down")
        t.press("down")
        t.wait_for(lambda t: node_row(t, "haywagon").startswith("▶"), what="haywagon selected")
        for key in ("t", "5"):
            t.press(key)
        t.wait_for(lambda t: "submit tasks at haywagon, how many? 5_" in t.text(), what="the prompt")
        t.press("enter")
        t.wait_for(lambda t: "submitted 5 tasks at haywagon" in t.text(), what="the submission")
        t.wait_for(lambda t: fields(t, "haywagon")[:3] == ["6", "5/0", "0"], what="5 tasks running")
        y = t.line_with("haywagon", 4)
        x = t.screen.display[y].index("█")
        assert t.screen.buffer[y][x].fg != "default"  # a coloured bar

        # f: a Finn wave, one task per node; the header reports it.
        t.press("f")
        t.wait_for(lambda t: "finn: 8/8 decided" in t.text(), what="the Finn wave")

        # Overload root, then r: a balancing round moves queued tasks away.
        assert cluster_env.ctl("submit", "root", "--tasks", "12", "-t", topo).returncode == 0
        t.wait_for(lambda t: queued(t, "root") >= 8, what="root's queue")
        t.press("r")
        t.wait_for(lambda t: "balance: " in t.text() and " moves, " in t.text(), what="the balancing round")
        assert "balance: 0 moves" not in t.text()

        # Enter folds the selected subtree; p pauses; resizing redraws at the new size.
        t.press("up")
        t.wait_for(lambda t: node_row(t, "affixed").startswith("▶"), what="affixed selected")
        t.press("enter")
        t.wait_for(lambda t: "affixed [+5]" in t.text(), what="the folded subtree")
        assert "tubularia" not in t.text()
        t.press("p")
        t.wait_for(lambda t: "PAUSED" in t.screen.display[0], what="pause")
        t.resize(80, 24)
        t.wait_for(lambda t: re.search(r"^PAUSED  seed .* \d\d:\d\d:\d\d$", t.screen.display[0]), what="the resize")
        assert "affixed [+5]" in t.text()
        assert all(len(line.rstrip()) <= 80 for line in t.screen.display)

        # s: flat rows in the topology's order (folds are the tree's); / filters by name,
        # "q" typed into the filter is a letter, not quit.
        t.press("s")
        t.wait_for(lambda t: "by topology" in t.screen.display[-1], what="the topology order")
        assert [t.line_with(n, 4) for n in ("root", "affixed", "tubularia", "pical")] == sorted(
            t.line_with(n, 4) for n in ("root", "affixed", "tubularia", "pical"))
        assert "├─" not in t.text()
        for key in "/pic":
            t.press(key)
        t.wait_for(lambda t: "filter nodes by name: pic_" in t.screen.display[-1], what="the filter line")
        t.press("enter")
        t.wait_for(lambda t: "/pic" in t.screen.display[-1] and "root" not in "".join(t.screen.display[4:-1]),
                   what="the filtered rows")
        assert "pical" in t.text()

        t.press("q")
        assert t.wait_exit() == 0
        # Terminal restored: normal screen, cursor shown, the tty modes of before.
        assert [m for m in t.screen.private_modes if 1049 in m[1]][-1] == (False, (1049,))
        assert [m for m in t.screen.private_modes if 25 in m[1]][-1] == (True, (25,))
        assert not t.screen.cursor.hidden
        assert termios.tcgetattr(t.master)[3] == saved[3]  # lflag: ICANON, ECHO back
        assert b"\x1b[?2026h" in t.raw and b"\x1b[?2026l" in t.raw  # synchronized frames
    finally:
        t.close()


def only_pical_silent(t: PtyTerminal) -> bool:
    """pical is marked silent (and FATAL) and no other node: on a loaded machine a live node
    may miss one wave's timeout, and is forgotten as silent when it answers the next one."""
    missing = re.search(r"no answer: (\S+(?:, \S+)*)", t.screen.display[1])
    return ("FATAL since" in node_row(t, "pical") and "7/8 nodes up" in t.screen.display[0]
            and missing is not None and missing.group(1) == "pical")


def test_a_killed_node_stays_on_screen_dimmed_and_ctrl_c_restores(cluster_env):
    topo = start_seed(cluster_env, restart="never")  # pical stays dead
    t = top_in_pty(cluster_env, topo, "--timeout", "2")
    saved = termios.tcgetattr(t.master)
    try:
        t.wait_for(lambda t: "8/8 nodes up" in t.text(), what="the first echo wave")
        pid = cluster_env.record("seed")["nodes"]["pical"]["pid"]
        os.kill(pid, signal.SIGKILL)  # a node of the cluster this test started, by pid
        # silent, and marked with what the supervisor says of it (restart = "never")
        t.wait_for(only_pical_silent, what="pical, and only pical, marked silent and FATAL")
        assert "killed by SIGKILL" in node_row(t, "pical")
        y = t.line_with("pical", 4)
        x = t.screen.display[y].index("pical")
        assert t.screen.buffer[y][x].fg == "787878"  # grey (and dim, which pyte does not keep)
        t.press("ctrl-c")
        assert t.wait_exit() == 130
        assert [m for m in t.screen.private_modes if 1049 in m[1]][-1] == (False, (1049,))
        assert not t.screen.cursor.hidden
        assert termios.tcgetattr(t.master)[3] == saved[3]
    finally:
        t.close()

    # --once without a terminal: one plain frame; the silent node in it; exit 1. The wave
    # always runs to its timeout (pical never answers): a short one, doubled while a
    # loaded machine leaves a live node silent too.
    for timeout in (1, 2, 4, 8, 16):
        once = cluster_env.ctl("top", "--once", "-t", topo, "--timeout", timeout, "--width", "100")
        assert once.returncode == 1, once.stderr
        assert "no answer from pical" in once.stderr, once.stderr
        if "no answer from pical within" in once.stderr:
            break
    assert "no answer from pical within" in once.stderr, once.stderr
    assert "\x1b" not in once.stdout
    assert "7/8 nodes up" in once.stdout and "pical" in once.stdout and "FATAL since" in once.stdout


def test_pause_holds_the_frame_and_a_balances_every_interval(cluster_env):
    """p stops the waves (a submission does not show until p again); a turns automatic
    balancing on (AUTO in the header): every interval is a balancing round, so a burst
    at root spreads with no r pressed, and a again turns it off."""
    topo = start_seed(cluster_env, task_time=30.0)
    t = top_in_pty(cluster_env, topo)
    try:
        t.wait_for(lambda t: "8/8 nodes up" in t.text() and fields(t, "haywagon")[1] == "0/0", what="the first echo wave")
        t.press("p")
        t.wait_for(lambda t: "PAUSED" in t.screen.display[0], what="pause")
        assert cluster_env.ctl("submit", "haywagon", "--tasks", "3", "-t", topo).returncode == 0
        for _ in range(20):  # a few intervals: no wave, so the frame keeps the old numbers
            t.pump(0.1)
        assert fields(t, "haywagon")[1] == "0/0", node_row(t, "haywagon")
        t.press("p")
        t.wait_for(lambda t: fields(t, "haywagon")[1] == "3/0", what="the submission, once resumed")
        assert "PAUSED" not in t.screen.display[0]

        assert cluster_env.ctl("submit", "root", "--tasks", "16", "-t", topo).returncode == 0
        t.wait_for(lambda t: queued(t, "root") >= 8, what="root's queue")
        t.press("a")
        t.wait_for(lambda t: "AUTO" in t.screen.display[2], what="AUTO on the balance line")
        # no r pressed: only automatic rounds can have moved tasks
        t.wait_for(lambda t: re.search(r"balance: [1-9]\d* moves", t.text()) and 0 <= queued(t, "root") < 8,
                   what="root's queue spread by an automatic round")
        t.press("a")
        t.wait_for(lambda t: "AUTO" not in t.screen.display[2], what="AUTO off")
        t.press("q")
        assert t.wait_exit() == 0
    finally:
        t.close()
