"""The wave properties, checked on a trace (``ctl trace check``).

Theory of operation (Tel, *Introduction to Distributed Algorithms*, def. 6.2 and
§6.2.3, §6.2.6; ARCHITECTURE.md, "Traces"). A trace's wave ids (its ``wave``, or every
wave its decisions and node messages name) are checked one by one, each against:

- **a wave** (def. 6.2) — each echo of a balancing round counts as one: at least one
  decision; every decision causally preceded by a
  step at every node (Finn in a DAG: at every ancestor of the deciding node, below);
- **echo** (§6.2.3, alg. 6.5; also the echo of a ``rebalance``) on the undirected view:
  exactly 2|E| messages (explore and echo), each link carries one each way; the father
  pointers — the sender of each node's first message of the wave — form a spanning tree
  rooted at the initiator (the node that sent before it received); only the initiator
  decides, once;
- **Finn** (§6.2.6): messages only along directed edges; every node decides once; each
  decision causally after a step at every ancestor; at most 2N messages per channel;
- **any other kind** (tarry, tree, phase, election, a third party's: daemon/plugins.py):
  the rules every kind keeps — at least one decision, messages only on links of the
  topology, along an edge for a kind that ``hears_from`` its parents (``wave.channel``)
  — and then the kind's own ``check()`` (daemon/core/wave.py) on the run the trace
  shows (:func:`wave_run`): sends per directed channel, decisions (node, result) in
  happens-before order, the nodes with a step of the wave, the initiators (the nodes
  that sent a message of the wave before receiving one) and ``complete`` (no node
  missing, none with dropped steps). Each of its sentences is a violation of rule
  ``<kind>.check``. It needs each decision's result, which traces carry when it is
  small (daemon/trace/recorder.py): a decision without one (an older trace, a result
  over 512 characters) is a ``trace.result`` violation and the kind's check is not run.
  A kind not installed here is a ``trace.kind`` violation.

Causal precedence comes from the matched sends and receives (daemon/trace/model.py,
``Trace.causal_nodes``). A :class:`Violation` names the rule, the node and the
step; :func:`check` returns them all (empty: the trace keeps every rule).
"""

from __future__ import annotations

from dataclasses import dataclass

from daemon.core.wave import Graph, WaveRun
from daemon.trace.model import Trace

def _message_types() -> dict[str, frozenset]:
    """Kind -> the wire names of its messages, for every installed wave kind (daemon/plugins.py)."""
    from daemon.plugins import wave_kinds

    return {name: frozenset(mt.name for mt in cls.messages) for name, cls in wave_kinds().items()}


MESSAGE_TYPES = _message_types()


@dataclass(frozen=True)
class Violation:
    rule: str          # e.g. "echo.channel"
    wave: str | None
    node: str | None
    step: str | None   # node#seq
    text: str

    def __str__(self) -> str:
        where = []
        if self.node:
            where.append(f"node {self.node}")
        if self.step:
            where.append(f"step {self.step}")
        at = f" ({', '.join(where)})" if where else ""
        return f"[{self.rule}] wave {self.wave}{at}: {self.text}"


@dataclass(frozen=True)
class WaveSummary:
    wave: str | None
    kind: str
    messages: int
    decisions: int


def waves_of(trace: Trace) -> list[tuple[str | None, str]]:
    """(wave id, kind) of every wave the trace is about, in first-seen order: its
    ``wave``, or — for a balancing round (kind ``rebalance``, whose id names the round,
    not a wave) or a trace of everything — every wave its decisions and echo or Finn
    messages name."""
    if trace.wave is not None and trace.kind != "rebalance":
        return [(trace.wave, _kind(trace, trace.wave))]
    seen: dict[str, None] = {}
    for k in trace.order:
        s = trace.steps[k]
        for d in s.decide:
            seen.setdefault(d.wave)
        for o in s.out:
            if o.wave is not None and any(o.type in types for types in MESSAGE_TYPES.values()):
                seen.setdefault(o.wave)
    return [(w, _kind(trace, w)) for w in seen]


def _kind(trace: Trace, wave: str) -> str:
    for s in trace.steps:
        for d in s.decide:
            if d.wave == wave and d.kind in MESSAGE_TYPES:
                return d.kind
    for s in trace.steps:
        for d in s.decide:
            if d.wave == wave and d.kind != "rebalance":
                return d.kind  # a kind not installed here: check() says so
    if trace.kind in MESSAGE_TYPES:
        return trace.kind
    if trace.kind == "rebalance":
        return "echo"
    for m in trace.messages:
        if m.wave == wave:
            for kind, types in MESSAGE_TYPES.items():
                if m.type in types:
                    return kind
    return trace.kind or "echo"


def check(trace: Trace) -> tuple[list[Violation], list[WaveSummary]]:
    """Every violation of the rules above, and one summary per wave checked."""
    found: list[Violation] = []
    summaries = []
    waves = waves_of(trace)
    if not waves:
        found.append(Violation("wave.decision", trace.wave, None, None,
                               "no wave in the trace: no decision and no wave message"))
    for wave, kind in waves:
        if kind not in MESSAGE_TYPES:
            found.append(Violation("trace.kind", wave, None, None,
                                   f"wave kind {kind!r} is not installed here (daemon/plugins.py knows "
                                   f"{', '.join(MESSAGE_TYPES)}): its rules cannot be checked"))
            summaries.append(WaveSummary(wave, kind, 0, sum(d.wave == wave for _, d in trace.decisions())))
            continue
        messages = [m for m in trace.messages if m.wave == wave and m.type in MESSAGE_TYPES[kind]]
        decisions = [(k, d) for k, d in trace.decisions() if d.wave == wave]
        for name in trace.missing:
            found.append(Violation("trace.missing", wave, name, None,
                                   "the node did not answer the fetch: its steps are missing"))
        if not decisions:
            found.append(Violation("wave.decision", wave, None, None, "no decision (Tel, def. 6.2: at least one)"))
        if kind == "echo":
            found += _echo(trace, wave, messages, decisions)
        elif kind == "finn":
            found += _finn(trace, wave, messages, decisions)
        else:
            found += _any_kind(trace, wave, kind, messages, decisions)
        summaries.append(WaveSummary(wave, kind, sum(m.send is not None for m in messages), len(decisions)))
    return found, summaries


def _violation(trace: Trace, rule: str, wave, k: int | None, text: str, node: str | None = None) -> Violation:
    if k is None:
        return Violation(rule, wave, node, None, text)
    s = trace.steps[k]
    return Violation(rule, wave, s.node, trace.ref(k), text)


def _sends(messages) -> dict[tuple[str, str], list]:
    per: dict[tuple[str, str], list] = {}
    for m in messages:
        if m.send is not None:
            per.setdefault((m.src, m.dst), []).append(m)
    return per


def _echo(trace: Trace, wave, messages, decisions) -> list[Violation]:
    found = []
    nodes = trace.nodes
    links = {frozenset(e) for e in trace.edges if e[0] != e[1]}
    per = _sends(messages)
    sent = sum(len(v) for v in per.values())
    if sent != 2 * len(links):
        found.append(_violation(trace, "echo.count", wave, None,
                                f"{sent} messages sent, expected exactly 2|E| = {2 * len(links)}"))
    for (a, b), ms in sorted(per.items()):
        if frozenset((a, b)) not in links:
            found.append(_violation(trace, "echo.channel", wave, ms[0].send[0],
                                    f"sent {ms[0].type} to {b}, not a neighbour"))
        elif len(ms) != 1:
            found.append(_violation(trace, "echo.channel", wave, ms[1].send[0],
                                    f"{len(ms)} messages from {a} to {b}, expected exactly one"))
    for link in sorted(links, key=sorted):
        a, b = sorted(link)
        for x, y in ((a, b), (b, a)):
            if (x, y) not in per:
                found.append(_violation(trace, "echo.channel", wave, None,
                                        f"no message from {x} to {y}, expected exactly one", node=x))
    # The initiator: the node whose first step of the wave sends before it receives any.
    known = set(nodes)
    father: dict[str, str | None] = {}
    for name in nodes:
        for k in trace.program[name]:
            s = trace.steps[k]
            touches = (s.recv is not None and s.recv.wave == wave) or any(o.wave == wave for o in s.out) or any(
                d.wave == wave for d in s.decide)
            if touches:
                r = s.recv
                echo_in = r is not None and r.wave == wave and r.src in known and r.type in MESSAGE_TYPES["echo"]
                father[name] = r.src if echo_in else None
                break
    initiators = [name for name in nodes if name in father and father[name] is None]
    if len(initiators) != 1:
        found.append(_violation(trace, "echo.initiator", wave, None,
                                f"{len(initiators)} nodes began the wave without a message "
                                f"({', '.join(initiators) or 'none'}), expected exactly one"))
    root = initiators[0] if initiators else None
    for k, d in decisions:
        if trace.steps[k].node != root:
            found.append(_violation(trace, "echo.decider", wave, k, "decided, but only the initiator "
                                    f"{root} may decide"))
    if len(decisions) > 1:
        k = decisions[1][0]
        found.append(_violation(trace, "echo.decider", wave, k, f"{len(decisions)} decisions, expected exactly one"))
    if root is not None:
        from daemon.sim.echo import spanning_tree_problem

        view = _UndirectedView(nodes, links)
        index = view.index
        entries = [(index[n], None if father.get(n) is None else index[father[n]], None) for n in nodes if n in father]
        problem = spanning_tree_problem(view, index[root], entries)
        if problem:
            found.append(_violation(trace, "echo.tree", wave, None, f"father pointers: {problem}"))
    for k, _ in decisions:
        missed = [n for n in nodes if n not in trace.causal_nodes(k)]
        if missed:
            found.append(_violation(trace, "wave.causality", wave, k,
                                    f"decided before any step at {_few(missed)} (Tel, def. 6.2)"))
    return found


class _UndirectedView:
    """The little of IndexedGraph that daemon/sim/echo.py's spanning_tree_problem reads."""

    def __init__(self, nodes: list[str], links: set[frozenset]):
        self.names = tuple(nodes)
        self.index = {n: i for i, n in enumerate(nodes)}
        self.neighbours: list[set[int]] = [set() for _ in nodes]
        for link in links:
            a, b = tuple(link)
            self.neighbours[self.index[a]].add(self.index[b])
            self.neighbours[self.index[b]].add(self.index[a])

    def __len__(self) -> int:
        return len(self.names)


def _finn(trace: Trace, wave, messages, decisions) -> list[Violation]:
    found = []
    nodes = trace.nodes
    n = len(nodes)
    edges = set(trace.edges)
    per = _sends(messages)
    for (a, b), ms in sorted(per.items()):
        if (a, b) not in edges:
            found.append(_violation(trace, "finn.channel", wave, ms[0].send[0],
                                    f"sent finn to {b}, which is not its out-neighbour"))
        if len(ms) > 2 * n:
            found.append(_violation(trace, "finn.channel", wave, ms[2 * n].send[0],
                                    f"{len(ms)} messages from {a} to {b}, over 2N = {2 * n}"))
    by_node: dict[str, list[int]] = {}
    for k, _ in decisions:
        by_node.setdefault(trace.steps[k].node, []).append(k)
    for name in nodes:
        ks = by_node.get(name, [])
        if not ks:
            found.append(_violation(trace, "finn.decides", wave, None, "never decided", node=name))
        elif len(ks) > 1:
            found.append(_violation(trace, "finn.decides", wave, ks[1], f"decided {len(ks)} times, expected once"))
    above = _ancestors(nodes, trace.edges)
    for k, _ in decisions:
        node = trace.steps[k].node
        missed = sorted(above[node] - trace.causal_nodes(k), key=nodes.index)
        if missed:
            found.append(_violation(trace, "finn.ancestors", wave, k,
                                    f"decided before any step at its ancestors {_few(missed)}"))
    return found


def _any_kind(trace: Trace, wave, kind: str, messages, decisions) -> list[Violation]:
    """The rules every kind keeps, then the kind's own check() on the trace's run."""
    from daemon.plugins import wave_kinds

    cls = wave_kinds()[kind]
    found = []
    parents_only = cls.hears_from == "parents"
    edges = set(trace.edges)
    links = {frozenset(e) for e in edges}
    for (a, b), ms in sorted(_sends(messages).items()):
        if parents_only and (a, b) not in edges:
            found.append(_violation(trace, "wave.channel", wave, ms[0].send[0],
                                    f"sent {ms[0].type} to {b}, which is not its out-neighbour "
                                    f"({kind} hears only from parents)"))
        elif not parents_only and frozenset((a, b)) not in links:
            found.append(_violation(trace, "wave.channel", wave, ms[0].send[0],
                                    f"sent {ms[0].type} to {b}, not a neighbour"))
    unknown = [k for k, d in decisions if d.result is None]
    if unknown:
        k = unknown[0]
        found.append(_violation(trace, "trace.result", wave, k,
                                f"{len(unknown)} decision(s) carry no result (a trace written before results "
                                f"were kept, or a result over 512 characters): {kind}'s own check is not run"))
        return found
    run = wave_run(trace, wave, messages, decisions)
    graph = Graph(tuple(trace.nodes), tuple(trace.edges))
    try:
        problems = cls.check(graph, run)
    except Exception as exc:  # noqa: BLE001 - a kind's check must not crash the checker
        problems = [f"its check() raised {type(exc).__name__}: {exc}"]
    found += [Violation(f"{kind}.check", wave, None, None, str(text)) for text in problems]
    return found


def wave_run(trace: Trace, wave, messages=None, decisions=None) -> WaveRun:
    """The run of wave ``wave`` as the trace shows it, for a kind's check()
    (daemon/core/wave.py :class:`WaveRun`): sends per directed channel (``messages``:
    the wave's, by default every message of the wave), the decisions (node, decoded
    result) in happens-before order, the nodes with a step of the wave, the initiators
    — the nodes whose first message of the wave was a send, or whose only step of it
    was the operator's start — in the order they first sent, and ``complete``: no node
    missing from the trace and none with dropped steps."""
    if messages is None:
        messages = [m for m in trace.messages if m.wave == wave]
    if decisions is None:
        decisions = [(k, d) for k, d in trace.decisions() if d.wave == wave]
    per_channel = {key: len(ms) for key, ms in _sends(messages).items()}
    known = set(trace.nodes)
    rank = {k: i for i, k in enumerate(trace.order)}
    reached = set()
    first_send: dict[str, int] = {}
    for name in trace.nodes:
        started = None
        for k in trace.program[name]:
            s = trace.steps[k]
            r = s.recv
            wave_in = r is not None and r.wave == wave
            sends = any(o.wave == wave and o.to in known for o in s.out)
            if not (wave_in or sends or any(d.wave == wave for d in s.decide)):
                continue
            reached.add(name)
            if wave_in and r.src in known:
                break  # received before it sent: not an initiator
            if sends:
                first_send[name] = rank[k]
                break
            if started is None and wave_in:
                started = rank[k]  # the operator's start (a node alone sends nothing)
        else:
            if started is not None:
                first_send[name] = started
    initiators = tuple(sorted(first_send, key=first_send.__getitem__))
    complete = not trace.missing and not any(trace.dropped.values())
    return WaveRun(initiators=initiators, per_channel=per_channel,
                   decisions=[(trace.steps[k].node, d.value()) for k, d in decisions],
                   reached=reached, complete=complete)


def _ancestors(nodes: list[str], edges) -> dict[str, set[str]]:
    parents: dict[str, list[str]] = {name: [] for name in nodes}
    for a, b in edges:
        parents[b].append(a)
    result = {}
    for name in nodes:
        seen = {name}
        stack = [name]
        while stack:
            for p in parents[stack.pop()]:
                if p not in seen:
                    seen.add(p)
                    stack.append(p)
        result[name] = seen
    return result


def _few(names: list[str], shown: int = 5) -> str:
    return ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")


def summary(summaries: list[WaveSummary], trace: Trace) -> str:
    """One line: what was checked."""
    parts = [f"{s.kind} wave {s.wave}: {s.messages} messages, {s.decisions} decision(s)" for s in summaries]
    return f"trace ok: {len(trace.nodes)} nodes, {len(trace.steps)} steps; " + "; ".join(parts)
