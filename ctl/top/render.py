"""One frame of ``ctl top``: the echo wave's spanning tree with every node's load.

Pure: ``render(snapshot, width, height, view=..., color=..., glyphs=..., now=...)``
returns exactly ``height`` lines, none wider than ``width`` columns, with SGR escape
sequences for colour and attributes (none at all in ``color="plain"``). No clock, no
terminal: the loop passes ``now`` and the terminal's size and capabilities.

The frame, top to bottom:

- three header lines: the cluster (nodes up, cpus, tasks); the imbalance, max/avg of
  work per CPU (daemon/core/snapshot.py) with its trend since the previous wave, and the last echo
  wave's message count and latency, or the wave that timed out and who is silent (or
  whose key was refused by whom, in place of a bare "no answer"); the
  last balancing round and the last Finn wave (Tel 6.2.6) as the nodes report them,
  whoever started them (daemon/core/snapshot.py ``last_round``, ``last_finn``);
- the column titles, then one row per node of the tree (:mod:`ctl.top.tree`): guides,
  name, the edges the tree does not show ("also ← x, y"), cpus, running/queued, done,
  load per CPU as a bar graded green → yellow → red and as a number, CPU% measured by
  psutil, and a sparkline of recent load; a silent node is dimmed, with since when;
- a footer: the keys, a prompt, or the last status message, and the scroll position.

Each node's numbers were sampled as the wave passed it, at different moments (ARCHITECTURE.md, "The waves"):
the header says "sampled … ago" of the wave, not "the state at".
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import lru_cache

from ctl.top.style import ASCII, FULL_SCALE, Glyphs, Palette, glyph_set, palette
from ctl.top.tree import Row, tree_rows
from ctl.top.keys import ACTIONS
from ctl.top.view import STATUS_SECONDS, ViewState, imbalance
from daemon.cluster.process import ProcessState
from daemon.cluster.record import NodeEntry
from daemon.core.snapshot import last_finn, last_round, refusal_text, unexplained
from daemon.core.waves import wave_started

#: Lines above the tree (three of header, one of column titles) and below it (footer).
HEADER_LINES = 4
FOOTER_LINES = 1

#: The smallest terminal the frame is laid out for.
MIN_WIDTH, MIN_HEIGHT = 40, 8


def body_height(height: int) -> int:
    """Tree rows that fit in a frame of ``height`` lines."""
    return max(0, height - HEADER_LINES - FOOTER_LINES)


def full_height(snapshot: dict | None, view: ViewState) -> int:
    """The height that shows every row (``ctl top --once`` without ``--height``)."""
    return max(MIN_HEIGHT, HEADER_LINES + max(1, len(tree_rows(snapshot, view))) + FOOTER_LINES)


# -- lines -------------------------------------------------------------------------


class _Line:
    """A line under construction: styled pieces, never wider than its width."""

    __slots__ = ("parts", "room", "width", "reset", "ellipsis")

    def __init__(self, width: int, pal: Palette, g: Glyphs):
        self.parts: list[str] = []
        self.width = width
        self.room = width
        self.reset = pal.reset
        self.ellipsis = g.ellipsis

    @property
    def used(self) -> int:
        return self.width - self.room

    def add(self, text: str, style: str = "") -> None:
        if not text or self.room <= 0:
            return
        if len(text) > self.room:
            text = text[: self.room - 1] + self.ellipsis
        self.room -= len(text)
        self.parts.append(f"{style}{text}{self.reset}" if style and self.reset else text)

    def add_cells(self, styled: str, cells: int) -> None:
        """Add text already styled, ``cells`` columns wide, only if it fits whole."""
        if cells <= self.room:
            self.room -= cells
            self.parts.append(styled)

    def pad_to(self, column: int, style: str = "") -> None:
        if column > self.used:
            self.add(" " * (column - self.used), style)

    def text(self) -> str:
        return "".join(self.parts)


@lru_cache(maxsize=4096)
def _printable(name: str) -> str:
    """A node name as it can be drawn: one column per character, no control codes."""
    return "".join(c if c.isprintable() and c.isascii() else "?" for c in name)


def _one_line(text: str, g: Glyphs) -> str:
    """A message (an exception's text) fit for one line: no control characters, and
    ASCII only when the glyphs are."""
    ascii_only = g is ASCII
    out = []
    for c in text:
        if c in "\n\r\t":
            out.append(" ")
        elif c.isprintable() and (c.isascii() or not ascii_only):
            out.append(c)
        else:
            out.append("?")
    return "".join(out)


def _clock(t: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t))


def _ago(seconds: float) -> str:
    seconds = max(seconds, 0.0)
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.0f} h"


# -- columns -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Columns:
    """The widths of a tree row's columns, for one terminal width and one set of rows."""

    tree: int  # width of the tree column (guides + name)
    cpu: int
    run: int
    que: int
    done: int
    bar: int
    spark: int

    @property
    def data(self) -> int:
        """Width of everything between the tree column and the sparkline."""
        return (1 + self.cpu) + (1 + self.run + 1 + self.que) + (1 + self.done) + (1 + self.bar) + 6 + 6

    @property
    def fixed(self) -> int:
        return self.data + (1 + self.spark if self.spark else 0)


def _bar_and_spark(width: int) -> tuple[int, int]:
    if width >= 150:
        return 20, 32
    if width >= 120:
        return 16, 24
    if width >= 100:
        return 12, 16
    if width >= 80:
        return 8, 8
    if width >= 60:
        return 8, 0
    return 6, 0


def _columns(rows: list[Row], notes: list[str], width: int, history: bool) -> _Columns:
    bar, spark = _bar_and_spark(width)
    if not history:  # one frame for a script: a sparkline of one wave says nothing
        spark = 0
    nodes = [r.node for r in rows if r.node is not None]

    def widest(key, least):
        return max([least] + [len(str(n.get(key, ""))) for n in nodes])

    cols = _Columns(0, widest("cpus", 3), widest("running", 3), widest("queued", 3), widest("done", 4), bar, spark)
    core = max([4] + [_core_width(r) for r in rows])
    full = max([core] + [_core_width(r) + 2 + len(n) for r, n in zip(rows, notes) if n])
    room = width - 1 - cols.fixed  # 1: the selection cursor
    tree = max(8, min(room, full))  # notes widen the tree column while there is room
    return _Columns(tree, cols.cpu, cols.run, cols.que, cols.done, bar, spark)


def _core_width(row: Row) -> int:
    return 3 * row.depth + len(row.name) + (len(str(row.hidden)) + 4 if row.hidden else 0)


def _bar(load: float, cells: int, pal: Palette, g: Glyphs) -> str:
    """``cells`` columns filled in proportion to load/FULL_SCALE, to an eighth of a cell."""
    eighths = round(min(max(load, 0.0), FULL_SCALE) / FULL_SCALE * cells * 8)
    return _bar_cells(eighths, load > FULL_SCALE, cells, pal, g)


@lru_cache(maxsize=1024)
def _bar_cells(eighths: int, over: bool, cells: int, pal: Palette, g: Glyphs) -> str:
    """Each cell in the gradient colour of the load it stands for, so a long bar runs
    green → yellow → red; runs of one colour share one escape sequence. Cached: a bar
    has only ``8 * cells + 1`` lengths."""
    full, part = divmod(eighths, 8)
    runs: list[tuple[str, list[str]]] = []
    for i in range(cells):
        if i < full:
            ch = g.bar_over if (over and i == cells - 1) else g.bar_full
            style = pal.load((i + 0.5) / cells * FULL_SCALE)
        elif i == full and part and g.bar_eighths[part]:
            ch, style = g.bar_eighths[part], pal.load((i + 0.5) / cells * FULL_SCALE)
        else:
            ch, style = g.bar_empty, pal.grey or pal.dim
        if runs and runs[-1][0] == style:
            runs[-1][1].append(ch)
        else:
            runs.append((style, [ch]))
    return "".join(f"{style}{''.join(chs)}{pal.reset}" if style else "".join(chs) for style, chs in runs)


@lru_cache(maxsize=64)
def _spark_cells(pal: Palette, g: Glyphs, style_all: str) -> tuple[str, ...]:
    """One styled cell per sparkline level, coloured by the load of the level's middle."""
    levels = len(g.spark)
    out = []
    for k, ch in enumerate(g.spark):
        style = style_all or pal.load((k + 0.5) / levels * FULL_SCALE)
        out.append(f"{style}{ch}{pal.reset}" if style else ch)
    return tuple(out)


def _spark(samples, cells: int, pal: Palette, g: Glyphs, style_all: str = "") -> str:
    """The last ``cells`` samples, newest on the right; a gap where a wave failed.
    Level k of n covers load per CPU [k, k+1) * FULL_SCALE / n, the top one beyond."""
    tail = list(samples)[-cells:] if samples else []
    table = _spark_cells(pal, g, style_all)
    lo, hi, scale = table[0], table[-1], len(table) / FULL_SCALE
    return " " * (cells - len(tail)) + "".join([
        " " if v is None else hi if v >= FULL_SCALE else table[int(v * scale)] if v > 0 else lo for v in tail
    ])


def _notes(row: Row, g: Glyphs) -> str:
    """The edges the tree does not show: extra parents, and a father that is a child."""
    parts = []
    extra = row.extra_parents
    if extra:
        parts.append(f"also {g.from_} " + ", ".join(_printable(p) for p in extra))
    if row.against_edge:
        parts.append(f"(via child {_printable(row.father)})")
    return "  ".join(parts)


def _tree_cell(row: Row, note: str, cols: _Columns, g: Glyphs) -> tuple[str, str, str, str]:
    """(guides, name, fold tag, note) fitted into the tree column: the name is kept
    longest, then the guides (cut from the left), then the note."""
    if row.depth == 0:
        guides = ""
    else:
        guides = "".join(g.pipe if cont else g.blank for cont in row.guides)
        if row.reached:
            guides += g.last if row.last else g.tee
        else:
            guides += g.last_off if row.last else g.tee_off
    name = _printable(row.name)
    tag = f" [+{row.hidden}]" if row.hidden else ""
    if len(guides) + len(name) + len(tag) > cols.tree:
        keep = cols.tree - len(name) - len(tag)
        if keep >= 2:
            guides = g.ellipsis + guides[len(guides) - keep + 1:]
        else:  # a deep node or a long name: the name wins, guides go
            guides = ""
            if len(name) + len(tag) > cols.tree:
                tag = ""
                if len(name) > cols.tree:
                    name = name[: cols.tree - 1] + g.ellipsis
    room = cols.tree - len(guides) - len(name) - len(tag) - 2
    if note and room < len(note):
        note = note[: room - 1] + g.ellipsis if room >= 1 else ""
    return guides, name, tag, ("  " + note if note else "")


def _styled(text: str, style: str, pal: Palette) -> str:
    return f"{style}{text}{pal.reset}" if style and text and pal.reset else text


def _row_line(row: Row, note: str, cols: _Columns, width: int, view: ViewState, selected: bool,
              now: float, pal: Palette, g: Glyphs) -> str:
    dead_at = view.dead_since.get(row.name)
    node = row.node
    if dead_at is not None or node is None:
        return _silent_row_line(row, note, cols, width, view, selected, dead_at, now, pal, g)
    if 1 + cols.tree + cols.fixed > width:  # narrower than the columns: cut piece by piece
        return _narrow_row_line(row, note, cols, width, view, selected, pal, g)
    # Every column fits (see _columns): build the line in one go, it is the hot path.
    guides, name, tag, note = _tree_cell(row, note, cols, g)
    name_style = (pal.reverse if selected else "") + (pal.bold if row.depth == 0 else "")
    load = float(node.get("load", 0.0))
    pct = node.get("cpu_percent")
    parts = [
        _styled(g.cursor, pal.bold, pal) if selected else " ",
        _styled(guides, pal.dim + pal.grey, pal), _styled(name, name_style, pal),
        _styled(tag, pal.grey, pal), _styled(note, pal.grey, pal),
        " " * (cols.tree - len(guides) - len(name) - len(tag) - len(note)),
        f" {node.get('cpus', '?'):>{cols.cpu}} {node.get('running', '?'):>{cols.run}}/"
        f"{node.get('queued', '?'):<{cols.que}} {node.get('done', '?'):>{cols.done}} ",
        _bar(load, cols.bar, pal, g),
        _styled(f" {load:5.2f}" if load < 100 else f" {min(load, 99999):5.0f}", pal.load(load), pal),
        f" {min(pct, 9999):4.0f}%" if pct is not None else "     ?",
    ]
    if cols.spark:
        parts.append(" " + _spark(view.history.get(row.name), cols.spark, pal, g))
    return "".join(parts)


def _narrow_row_line(row, note, cols, width, view, selected, pal, g) -> str:
    line = _Line(width, pal, g)
    guides, name, tag, note = _tree_cell(row, note, cols, g)
    line.add(g.cursor if selected else " ", pal.bold if selected else "")
    line.add(guides, pal.dim + pal.grey)
    line.add(name, (pal.reverse if selected else "") + (pal.bold if row.depth == 0 else ""))
    line.add(tag, pal.grey)
    line.add(note, pal.grey)
    line.pad_to(1 + cols.tree)
    node = row.node
    load = float(node.get("load", 0.0))
    line.add(f" {node.get('cpus', '?'):>{cols.cpu}} {node.get('running', '?'):>{cols.run}}/"
             f"{node.get('queued', '?'):<{cols.que}} {node.get('done', '?'):>{cols.done}} ")
    line.add_cells(_bar(load, cols.bar, pal, g), cols.bar)
    line.add(f" {load:5.2f}" if load < 100 else f" {min(load, 99999):5.0f}", pal.load(load))
    pct = node.get("cpu_percent")
    line.add(f" {min(pct, 9999):4.0f}%" if pct is not None else "     ?")
    return line.text()


def _silent_row_line(row, note, cols, width, view, selected, dead_at, now, pal, g) -> str:
    """A node that does not answer (or never has): dimmed, with since when."""
    line = _Line(width, pal, g)
    quiet = pal.dim + pal.grey
    guides, name, tag, note = _tree_cell(row, note, cols, g)
    line.add(g.cursor if selected else " ", pal.bold if selected else "")
    line.add(guides, quiet)
    line.add(name, (pal.reverse if selected else "") + quiet)
    line.add(tag, pal.grey)
    line.add(note, quiet)
    line.pad_to(1 + cols.tree)
    supervised = view.supervised.get(row.name)
    state = supervised.state if supervised is not None else None
    if state and state != ProcessState.RUNNING:  # the supervisor knows why: BACKOFF, FATAL, STARTING...
        stopped = state in (ProcessState.STOPPED, ProcessState.STOPPING)  # by the operator: not dead
        line.add(f" {g.stopped if stopped else g.dead} {_supervised(supervised, now, row.name)}", quiet)  # over the sparkline too
        return line.text()
    if dead_at is not None:
        text = f" {g.dead} no answer since {_clock(dead_at)} ({_ago(now - dead_at)})"
    else:
        text = " not reached by a wave yet"
    line.add(text[: cols.data].ljust(cols.data), quiet)
    if cols.spark:
        line.add(" ")
        line.add_cells(_spark(view.history.get(row.name), cols.spark, pal, g, style_all=quiet), cols.spark)
    return line.text()


def _supervised(entry: NodeEntry, now: float, name: str = "NODE") -> str:
    """A node the supervisor does not have RUNNING: its state, since when, why."""
    text = _one_line(str(entry.state), ASCII)
    if entry.state in (ProcessState.STOPPED, ProcessState.STOPPING):
        text += f" by the operator (`ctl start {name}` starts it)"
    if entry.since is not None:
        text += f" since {_clock(entry.since)} ({_ago(now - entry.since)})"
    if entry.restarts:
        text += f", {entry.restarts} restart{'s' if entry.restarts != 1 else ''}"
    if entry.last_exit:
        text += f": {_one_line(entry.last_exit, ASCII)}"
    return text


def _column_titles(cols: _Columns, width: int, pal: Palette, g: Glyphs) -> str:
    line = _Line(width, pal, g)
    style = pal.dim
    load = "load per cpu" if cols.bar + 6 >= 12 else "load/cpu"
    line.add(" " + "node".ljust(cols.tree), style)
    line.add(" " + "cpu".rjust(cols.cpu), style)
    line.add(" " + "run".rjust(cols.run) + "/" + "que".ljust(cols.que), style)
    line.add(" " + "done".rjust(cols.done), style)
    line.add(" " + load.ljust(cols.bar + 6), style)
    line.add("  cpu%", style)
    if cols.spark:
        line.add(" " + ("recent load" if cols.spark >= 11 else "recent"), style)
    return line.text()


# -- header and footer ---------------------------------------------------------------


def _header(snapshot: dict | None, width: int, view: ViewState, now: float,
            pal: Palette, g: Glyphs) -> list[str]:
    nodes = snapshot["nodes"] if snapshot else []
    alive = [n for n in nodes if n["name"] not in view.dead_since]
    return [
        _cluster_line(snapshot, alive, width, view, pal, g),
        _wave_line(snapshot, alive, width, view, now, pal, g),
        _actions_line(snapshot, width, view, now, pal, g),
    ]


def _cluster_line(snapshot, alive, width, view, pal, g) -> str:
    """Cluster name, nodes up/total, cpus and tasks of the nodes that answer; the clock."""
    line = _Line(width, pal, g)
    if view.paused:  # first, so that no width can push it off the line
        line.add("PAUSED", pal.reverse + pal.bold)
        line.add("  ")
    if view.roster:
        known = [r.name for r in view.roster]
    else:
        known = [n["name"] for n in snapshot["nodes"]] if snapshot else []
    up = sum(1 for name in known if name not in view.dead_since)
    line.add(_printable(snapshot["cluster"] if snapshot else (view.cluster or "cluster")), pal.bold)
    if snapshot is None and view.failure is None:
        line.add(f"  {len(known)} nodes")  # nothing has answered or failed yet
    else:
        line.add(f"  {up}/{len(known)} nodes up", pal.alarm + pal.bold if up < len(known) else "")
    line.add(f"  {sum(n.get('cpus', 0) for n in alive)} cpus")
    line.add(f"  {sum(n.get('running', 0) for n in alive)} running {g.dot} "
             f"{sum(n.get('queued', 0) for n in alive)} queued {g.dot} {sum(n.get('done', 0) for n in alive)} done")
    clock = _clock(snapshot["time"]) if snapshot else ""
    if clock and line.room > len(clock) + 2:
        line.pad_to(width - len(clock))
        line.add(clock)
    return line.text()


def _wave_line(snapshot, alive, width, view, now, pal, g) -> str:
    """Imbalance and its trend; the last echo wave, or the one that timed out."""
    line = _Line(width, pal, g)
    imb = view.imbalances[-1] if view.imbalances else imbalance(alive)  # --once: no history
    if imb is None:
        line.add("imbalance  -  ", pal.dim)
    else:
        line.add("imbalance ")
        # 1.0 is perfect balance; twice the average is as red as it gets.
        line.add(f"{imb:.2f}", pal.bold + pal.load((imb - 1.0) * 2.0))
        line.add(" " + _trend(view, g))
    if view.failure is not None:
        f = view.failure
        silent = ", ".join(_printable(n) for n in f.unreachable) or "none (every node answers a ping)"
        line.add(f"   echo timed out {_clock(f.at)} {g.dot} silent: {silent}", pal.alarm + pal.bold)
        _refused(line, f.refused, pal, g)
        if snapshot:
            line.add(f" {g.dot} showing the wave of {_clock(snapshot['time'])}", pal.alarm)
        return line.text()
    missing = snapshot.get("missing") if snapshot else None
    refused = (snapshot.get("refused") or ()) if snapshot else ()
    if width >= 100 and not missing:
        line.add(" (max/avg work per cpu)", pal.dim)
    silent = unexplained(missing or (), refused)
    if silent:  # the wave went on without them (daemon/core/node.py)
        line.add(f"   no answer: {', '.join(_printable(n) for n in silent)}", pal.alarm + pal.bold)
    _refused(line, refused, pal, g)
    if snapshot:
        line.add(f"   echo from {_printable(snapshot.get('initiator') or '?')}: "
                 f"{snapshot.get('messages', '?')} msgs, {snapshot.get('elapsed_ms', 0):.1f} ms")
        line.add(f", sampled {_ago(now - snapshot['time'])} ago", pal.dim)
    else:
        line.add("   waiting for the first echo wave" + g.ellipsis, pal.dim)
    return line.text()


def _refused(line, refused, pal, g) -> None:
    """The first refused handshake, in words (daemon/core/snapshot.py), and how many more."""
    pairs = [p for p in refused if len(p) == 2]
    if pairs:
        more = f" (+{len(pairs) - 1} more)" if len(pairs) > 1 else ""
        line.add(f"   {_printable(refusal_text(*pairs[0]))}{more}", pal.alarm + pal.bold)


def _actions_line(snapshot, width, view, now, pal, g) -> str:
    """The last balancing round and the last Finn wave, as the nodes report them
    (daemon/core/snapshot.py ``last_round``, ``last_finn``): whoever started them. What
    only their starter knows (the imbalance before and after, the wave's latency) is
    added when this view started that very one; a round of this view that moved nothing
    leaves no trace at the nodes, so it is shown when it is the newer."""
    line = _Line(width, pal, g)
    samples = snapshot["nodes"] if snapshot else []
    total = len(view.roster) or len(samples)
    line.add("balance: ", pal.dim)
    told, own = last_round(samples), view.last_balance
    if own is not None and _newer(own[1].get("round_id"), told and told["round_id"]):
        at, b = own
        moves = b.get("moves", [])
        line.add(f"{len(moves)} moves, {sum(m.get('count', len(m.get('tasks', ()))) for m in moves)} tasks")
        _add_imbalances(line, b, g)
        line.add(f", {_ago(now - at)} ago", pal.dim)
    elif told is None:
        line.add("no round yet", pal.dim)
    else:
        line.add(f"{told['moves']} moves, {told['tasks']} tasks")
        if own is not None and own[1].get("round_id") == told["round_id"]:
            _add_imbalances(line, own[1], g)
        line.add(f", {_ago(now - (told['started'] or told['at']))} ago", pal.dim)
    if view.auto_balance:
        line.add(" ")
        line.add("AUTO", pal.reverse + pal.good)
    line.add("  finn: ", pal.dim)
    told, own = last_finn(samples), view.last_finn
    if own is not None and _newer(own[1].get("wave"), told and told["wave"]):
        at, f = own  # no node has reported it yet
        decided, undecided = f.get("decided", []), f.get("undecided", [])
        line.add(f"{len(decided)}/{len(decided) + len(undecided)} decided, {f.get('messages', '?')} msgs, "
                 f"{f.get('elapsed_ms', 0):.1f} ms")
        line.add(f", {_ago(now - at)} ago", pal.dim)
    elif told is None:
        line.add("no wave yet", pal.dim)
    else:
        line.add(f"{len(told['decided'])}/{total} decided, {told['messages']} msgs, {told['enqueued']} tasks")
        if own is not None and own[1].get("wave") == told["wave"]:
            line.add(f", {own[1].get('elapsed_ms', 0):.1f} ms")
        line.add(f", {_ago(now - (told['started'] or told['at']))} ago", pal.dim)
    return line.text()


def _newer(mine, reported) -> bool:
    """Whether this view's round or wave ``mine`` started after the one the nodes report."""
    if reported is None:
        return True
    return isinstance(mine, str) and (wave_started(mine) or 0) > (wave_started(reported) or 0)


def _add_imbalances(line, result: dict, g) -> None:
    before, after = result.get("imbalance_before"), result.get("imbalance_after")
    if before is not None and after is not None:
        line.add(f", {before:.2f} {g.to} {after:.2f}")


def _trend(view: ViewState, g: Glyphs) -> str:
    if len(view.imbalances) < 2 or None in view.imbalances:
        return " "
    before, now = view.imbalances[0], view.imbalances[1]
    if now > before + 0.01:
        return g.up
    if now < before - 0.01:
        return g.down
    return g.flat


HELP = [
    ("keys", None),
    *((action.shown, action.help) for action in ACTIONS),
    ("reading the tree", None),
    ("├─", "edge of the echo wave's spanning tree (father above)"),
    ("├╌", "a node no wave reached, under its topology parent"),
    ("also ← x", "topology parents other than the father (DAG, cycle)"),
    ("(via child x)", "the wave came up the edge from x, a topology child"),
    ("load bar", "(running + queued) / cpus, full at 2; green → red"),
    ("cpu%", "psutil: the node and its burners, % of one core"),
    ("recent load", "load per cpu at each wave, newest right; gap: no answer"),
    ("sampled", "each node as the wave passed; tasks add up (a consistent cut)"),
]


def _help_lines(width: int, pal: Palette, g: Glyphs, body: int) -> list[str]:
    """The help screen; where it does not fit ``body`` lines, without its section titles."""
    entries = HELP if len(HELP) <= body else [(key, text) for key, text in HELP if text is not None]
    out = []
    for key, text in entries:
        line = _Line(width, pal, g)
        if text is None:
            line.add(" " + key, pal.bold)
        else:
            if g is ASCII:
                key = key.translate(_ASCII_KEYS)
                text = text.translate(_ASCII_KEYS)
            line.add("   " + key.ljust(16), pal.bold)
            line.add(text)
        out.append(line.text())
    return out


_ASCII_KEYS = str.maketrans({"↑": "^", "↓": "v", "├": "|", "─": "-", "╌": ".", "←": "<", "→": ">"})


def _footer(rows: list[Row], body: int, width: int, view: ViewState, now: float,
            pal: Palette, g: Glyphs) -> str:
    line = _Line(width, pal, g)
    right = ""
    if len(rows) > body > 0:
        first = min(view.scroll, max(0, len(rows) - body))
        right = f"rows {first + 1}{g.to}{min(len(rows), first + body)} of {len(rows)}"
    shown = [f"by {view.sort}"] if view.sort != "tree" else []
    shown += [f"/{_printable(view.filter)}"] if view.filter and not view.filtering else []
    right = "  ".join(shown + ([right] if right else []))
    if view.filtering:
        line.add(" filter nodes by name: ", pal.bold)
        line.add(_printable(view.filter) + "_", pal.reverse)
        line.add(f"  {len(rows)} shown; Enter keeps, Esc clears", pal.dim)
    elif view.prompt is not None:
        names = [r.name for r in rows]
        target = names[view.selected_index(names)] if names else "?"
        line.add(f" submit tasks at {_printable(target)}, how many? ", pal.bold)
        line.add(view.prompt + "_", pal.reverse)
        line.add("  Enter sends, Esc cancels", pal.dim)
    elif view.status is not None and now - view.status[0] < STATUS_SECONDS:
        line.add(" " + _one_line(view.status[1], g), pal.bold)
    elif view.interactive:
        for action in ACTIONS:
            if action.footer is None:
                continue
            what = "resume" if action.footer == "pause" and view.paused else action.footer
            line.add(" ")
            line.add(action.keys[0], pal.reverse)
            line.add(f" {what}")
    else:
        line.add(f" bar: load per cpu, full at {FULL_SCALE:g}  {g.tee_off.strip()} not reached by a wave  "
                 f"{g.dead} no answer", pal.dim)
    if right and line.room > len(right) + 1:
        line.pad_to(width - len(right))
        line.add(right, pal.dim)
    return line.text()


# -- the frame -----------------------------------------------------------------------


def render(snapshot: dict | None, width: int, height: int, *, view: ViewState | None = None,
           color: str = "none", glyphs: str = "unicode", now: float | None = None) -> list[str]:
    """One frame: exactly ``height`` lines, each at most ``width`` columns.

    ``snapshot`` is the last echo wave that came back (None before the first);
    ``view`` holds selection, scroll, collapsed subtrees, history and dead-since;
    ``color`` is one of COLOR_MODES, ``glyphs`` "unicode" or "ascii"; ``now`` (unix time)
    dates the "ago"s, and defaults to the snapshot's time. Raises ValueError on a bad
    colour mode or glyph set.
    """
    pal = palette(color)
    g = glyph_set(glyphs)
    view = view if view is not None else ViewState()
    if now is None:
        now = snapshot["time"] if snapshot else 0.0
    width, height = max(0, width), max(0, height)
    if width < MIN_WIDTH or height < MIN_HEIGHT:
        msg = f"terminal {width}x{height} is too small for ctl top: needs {MIN_WIDTH}x{MIN_HEIGHT}"
        lines = [msg[i:i + width] for i in range(0, len(msg), width)] if width else []
        return (lines + [""] * height)[:height]

    rows = tree_rows(snapshot, view)
    body = body_height(height)
    notes = [_notes(r, g) for r in rows]
    cols = _columns(rows, notes, width, history=view.interactive)
    out = _header(snapshot, width, view, now, pal, g)
    out.append(_column_titles(cols, width, pal, g))
    if view.show_help:
        out.extend(_help_lines(width, pal, g, body)[:body])
    elif not rows and view.filter:
        out.append(f"  no node's name holds {_printable(view.filter)!r} (Esc clears the filter)")
    elif not rows:
        out.append("  waiting for the first echo wave" + g.ellipsis)
    else:
        names = [r.name for r in rows]
        chosen = view.selected_index(names) if view.interactive else -1
        first = min(max(view.scroll, 0), max(0, len(rows) - body))
        for i in range(first, min(len(rows), first + body)):
            out.append(_row_line(rows[i], notes[i], cols, width, view, i == chosen, now, pal, g))
    out.extend([""] * (height - FOOTER_LINES - len(out)))
    out.append(_footer(rows, body, width, view, now, pal, g))
    return out
