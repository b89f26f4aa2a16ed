"""Elect the most loaded node: an echo wave whose convergecast keeps only the maximum.

A third-party wave kind for echofinn, installed as its own package and found by the
daemons, the simulator and ``ctl`` through the entry-point group ``echofinn.waves``
(this package's pyproject.toml). docs/waves.md in echofinn walks through it.

The algorithm is Tel's echo (alg. 6.5) on the undirected view of the topology:

- The initiator sends EXPLORE to every neighbour.
- Any other node, on the first EXPLORE (from q), takes q as its father and sends EXPLORE
  to every other neighbour.
- A node that has heard from every neighbour (distinct senders: a duplicate changes
  nothing) sends REPORT to its father with the best candidate it knows: the largest
  ``(load, name)`` among its own and its children's reports. The initiator decides
  instead, with that candidate.

Guarantees, on any connected topology: exactly 2|E| messages; one decision, at the
initiator; the winner is the node with the largest load ((running + queued) / cpus, as
each node sampled it when the wave reached it), ties broken by the larger name. State
per node: O(degree). A wave that reaches its deadline decides (or reports) with what it
has, like echo.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from daemon.core.wave import Graph, MessageType, Num, Text, Wave, WaveRun
from daemon.core.waves import WaveError


class Explore(NamedTuple):
    wave: str


class Report(NamedTuple):
    wave: str
    load: float
    node: str


class MostLoaded(Wave):
    """One node's part in one election of the most loaded node."""

    name = "mostloaded"
    summary = "elect the most loaded node (an echo wave keeping the maximum load)"
    messages = (
        MessageType("mostloaded.explore", Explore, {}),
        MessageType("mostloaded.report", Report, {"load": Num(-1.0, 1e12), "node": Text()}),
    )

    def __init__(self, node, wave: str, params: dict[str, Any]):
        super().__init__(node, wave, params)
        self.father: str | None = None
        self.joined = False
        self.done = False
        self.heard: set[str] = set()
        self.best: tuple[float, str] = (-1.0, "")

    def start(self) -> None:
        if self.joined:
            raise WaveError(f"{self.node.me}: wave {self.wave} already reached this node")
        self._join(None)

    def receive(self, sender: str, msg: Any) -> None:
        if type(msg) is Report:
            if not self.joined or sender == self.father:
                raise WaveError(f"{self.node.me}: REPORT of wave {self.wave} from {sender} is out of turn")
            self.best = max(self.best, (float(msg.load), msg.node))
        elif not self.joined:
            self._join(sender)
        if not self.done:
            self.heard.add(sender)
            self._finish_if_heard_all()

    def expire(self) -> None:
        if self.joined and not self.done:
            self._finish()

    @property
    def finished(self) -> bool:
        return self.done

    def _join(self, father: str | None) -> None:
        self.joined = True
        self.father = father
        self.best = (float(self.node.sample().get("load", 0.0)), self.node.me)
        budget = self.node.budget()
        if budget is not None:
            self.node.set_deadline(self.node.now + budget)
        for q in self.node.neighbours:
            if q != father:
                self.node.send(q, Explore(self.wave))
        self._finish_if_heard_all()

    def _finish_if_heard_all(self) -> None:
        if len(self.heard) == len(self.node.neighbours):
            self._finish()

    def _finish(self) -> None:
        self.done = True
        load, winner = self.best
        if self.father is None:
            self.node.decide({"node": winner, "load": load})
        else:
            self.node.send(self.father, Report(self.wave, load, winner))

    @classmethod
    def check(cls, graph: Graph, run: WaveRun) -> list[str]:
        problems = []
        links = {frozenset(e) for e in graph.edges if e[0] != e[1]}
        if run.complete and run.messages != 2 * len(links):
            problems.append(f"{run.messages} messages, not 2|E| = {2 * len(links)}")
        if run.complete and [n for n, _ in run.decisions] != list(run.initiators[:1]):
            problems.append(f"decisions at {[n for n, _ in run.decisions]}, not once at the initiator")
        for node, result in run.decisions:
            if not isinstance(result, dict) or result.get("node") not in graph.nodes:
                problems.append(f"{node} decided {result!r}, not a node of the graph")
        return problems
