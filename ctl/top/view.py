"""What ``ctl top`` remembers between frames, and how waves and keys change it.

A snapshot (one echo wave's result, see ``daemon.operator.Operator.echo``) is a moment;
the view state is the memory around it: which node is selected, which subtrees are
collapsed, the row order (``sort``) and the name filter, the recent load of every node
(the sparkline), since when a node has not answered, the imbalance trend, the last
balancing round and Finn wave. Nothing here reads
a clock or a socket: every change takes ``now`` (unix seconds) from the caller.

History is one sample per wave for every node, so all sparklines share one time axis: a
failed wave (echo timeout) is a gap (``None``) for every node, because that wave told
nothing about any of them.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from daemon.cluster.record import ClusterRecord, NodeEntry
from daemon.core.snapshot import imbalance, refusal_text, refused_keys, unexplained

#: Samples of load per CPU kept per node (the widest sparkline shows this many).
HISTORY = 32

#: How long a status message stays in the footer, seconds.
STATUS_SECONDS = 8.0

#: The row orders ``s`` cycles through (ctl/top/tree.py ``tree_rows``): the echo wave's
#: spanning tree, then flat lists that keep still from wave to wave (topology: the file's
#: order; load and queue: the largest first, ties in the file's order).
SORTS = ("tree", "topology", "name", "load", "queue")



@dataclass(frozen=True)
class RosterNode:
    """One node of the topology: what the view knows about a node that never answered."""

    name: str
    parents: tuple[str, ...] = ()
    cpus: int | None = None


def roster_from_topology(topology) -> tuple[RosterNode, ...]:
    """The topology's nodes in file order (``daemon.topology.Topology``)."""
    return tuple(RosterNode(n, tuple(topology.parents(n)), topology.node(n).cpus) for n in topology.names)


@dataclass(frozen=True)
class Failure:
    """The last echo wave that did not come back: when, and who did not answer a ping."""

    at: float
    unreachable: tuple[str, ...]
    message: str = ""
    refused: tuple = ()  # [who refused, whose key]: why some are silent (daemon/core/snapshot.py)


@dataclass
class ViewState:
    """Selection, scroll, collapsed subtrees, history, dead-since, last results."""

    roster: tuple[RosterNode, ...] = ()
    cluster: str = ""  # named in the header before any wave has answered
    interactive: bool = True  # False for ``--once``: the footer shows a legend, not keys
    selected: str | None = None
    scroll: int = 0  # index of the first tree row on screen
    collapsed: set[str] = field(default_factory=set)  # membership tests only
    show_help: bool = False
    paused: bool = False
    auto_balance: bool = False
    prompt: str | None = None  # digits typed so far while asking "how many tasks?"
    sort: str = "tree"  # one of SORTS
    filter: str = ""  # show only nodes whose name holds this (and, in the tree, their ancestors)
    filtering: bool = False  # the filter line is open: keys type into it
    history: dict[str, deque] = field(default_factory=dict)
    dead_since: dict[str, float] = field(default_factory=dict)
    imbalances: deque = field(default_factory=lambda: deque(maxlen=2))
    failure: Failure | None = None
    last_balance: tuple[float, dict] | None = None
    last_finn: tuple[float, dict] | None = None
    status: tuple[float, str] | None = None
    # the supervisor's word on each node (cluster.json): state, restarts, since, last_exit
    supervised: dict[str, NodeEntry] = field(default_factory=dict)

    # -- what the cluster told us ---------------------------------------------------

    def observe(self, snapshot: dict, now: float) -> None:
        """Take in one echo wave's result."""
        answered = {n["name"]: n for n in snapshot["nodes"]}
        for name in self._known_names(list(answered)):
            node = answered.get(name)
            self._sample(name, None if node is None else node["load"])
            if node is None:
                self.dead_since.setdefault(name, now)
            else:
                self.dead_since.pop(name, None)
        self.imbalances.append(imbalance(list(answered.values())))
        self.failure = None

    def observe_timeout(self, unreachable, now: float, message: str = "", refused=()) -> None:
        """An echo wave timed out; ``unreachable`` are the nodes that do not answer a ping,
        ``refused`` the refused handshakes that say why."""
        unreachable = tuple(unreachable)
        for name in self._known_names(list(unreachable)):
            self._sample(name, None)
        silent = set(unreachable)
        for name in unreachable:
            self.dead_since.setdefault(name, now)
        # A node that answers pings again is not dead, even if the wave as a whole failed.
        for name in [n for n in self.dead_since if n not in silent]:
            del self.dead_since[name]
        self.failure = Failure(now, unreachable, message, tuple(tuple(p) for p in refused))

    def observe_balance(self, result: dict, now: float) -> None:
        self.last_balance = (now, result)
        unanswered = result.get("unanswered_moves") or []
        missing = sorted({n for key in ("before", "after") for n in (result.get(key) or {}).get("missing", [])})
        refused = refused_keys([], [result.get("before"), result.get("after")])
        if unanswered or missing:
            parts = [f"{len(unanswered)} move(s) unanswered"] if unanswered else []
            parts += [refusal_text(*pair) for pair in refused]
            silent = unexplained(missing, refused)
            parts += [f"no answer from {', '.join(silent)}"] if silent else []
            self.note("balancing round incomplete: " + "; ".join(parts), now)

    def observe_supervisor(self, record: ClusterRecord | None) -> None:
        """Take in the supervisor's record of the nodes (``cluster.json``, read by
        daemon/cluster/record.py; None: missing or unreadable)."""
        self.supervised = dict(record.nodes) if record is not None else {}

    def observe_finn(self, result: dict, now: float) -> None:
        self.last_finn = (now, result)

    def note(self, text: str, now: float) -> None:
        """A one-line message for the footer (a submission done, an error)."""
        self.status = (now, text)

    def _known_names(self, also: list[str]) -> list[str]:
        """The roster in file order, then any other node heard of, in first-seen order."""
        names = [r.name for r in self.roster]
        seen = set(names)
        for name in list(self.history) + also:
            if name not in seen:
                seen.add(name)
                names.append(name)
        return names

    def _sample(self, name: str, load: float | None) -> None:
        line = self.history.get(name)
        if line is None:
            line = self.history[name] = deque(maxlen=HISTORY)
        line.append(load)

    # -- selection and scrolling over the rows on screen ------------------------------

    def selected_index(self, rows: list[str]) -> int:
        """Index of the selected row; the first row when nothing (visible) is selected."""
        try:
            return rows.index(self.selected)
        except ValueError:
            return 0

    def move(self, rows: list[str], delta: int, body: int) -> None:
        """Move the selection by ``delta`` rows and scroll so that it stays visible."""
        if not rows:
            return
        i = min(max(self.selected_index(rows) + delta, 0), len(rows) - 1)
        self.selected = rows[i]
        self.follow(rows, body)

    def page(self, rows: list[str], pages: int, body: int) -> None:
        """PgUp/PgDn: scroll by whole screens, the selection moving along."""
        if not rows or body <= 0:
            return
        self.scroll = clamp_scroll(self.scroll + pages * body, len(rows), body)
        self.move(rows, pages * body, body)

    def follow(self, rows: list[str], body: int) -> None:
        """Scroll the least needed to show the selected row."""
        i = self.selected_index(rows)
        if i < self.scroll:
            self.scroll = i
        elif body > 0 and i >= self.scroll + body:
            self.scroll = i - body + 1
        self.scroll = clamp_scroll(self.scroll, len(rows), body)

    def toggle_collapse(self, rows: list[str]) -> None:
        if not rows:
            return
        name = rows[self.selected_index(rows)]
        self.selected = name
        if name in self.collapsed:
            self.collapsed.discard(name)
        else:
            self.collapsed.add(name)


def clamp_scroll(scroll: int, rows: int, body: int) -> int:
    return max(0, min(scroll, rows - body))
