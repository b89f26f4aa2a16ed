"""Trace files: :func:`write` turns a trace into the file its suffix names.

- ``.json``: Chrome trace-event JSON, which Perfetto's UI (ui.perfetto.dev, "Open trace
  file") and chrome://tracing open as they are. One process track per node
  (``"ph": "M"`` ``process_name`` and ``thread_name``), a slice per step (``"ph": "X"``,
  ``ts``/``dur`` in µs; a step shorter than 1 µs — every simulated step — is drawn 1 µs
  wide), a flow arrow per matched message (``"ph": "s"`` inside the sending slice,
  ``"ph": "f"`` with ``"bp": "e"`` inside the receiving one, one unique ``id`` per
  message), an instant event per decision and per lost message, and the node's queue
  as a counter (``"ph": "C"``) when the trace has it.
  *Placement*: a simulated trace keeps its times. A cluster's trace has each node's own
  wall clock, so a step is placed at its own time (relative to the earliest step of the
  trace) and pushed later, with every later step of its node, when that would put it
  before the end of the step that sent its message: an arrow never runs backwards, a
  node's gaps between its steps are kept, and on one host (one clock) nothing moves.
  ``otherData.placement`` says which.
- ``.shiviz``: the ShiViz log (bestchai.bitbucket.io/shiviz): the first line is the
  parsing regex with named groups ``host``, ``clock`` and ``event``; then each step is a
  line ``NODE {"NODE": 3, "other": 1}`` (its vector clock: the node's own entry counts
  its steps, one more each step) followed by a line describing it, in happens-before
  order.
- ``.svg``/``.png``: a space-time diagram (matplotlib, the ``[plot]`` extra): time runs
  right in Lamport clock units, a line per node, an arrow per message coloured by type
  (legend), the critical path to the last decision thick (daemon/trace/report.py),
  decisions as stars, lost messages as arrows that stop short of any line and end in a
  cross. Past :data:`MAX_ROWS` nodes a line is a depth (hops from the
  first node, on the undirected view) holding all nodes at that depth; the title says
  so.
- ``.etrace`` / ``.etrace.json``: the raw model (daemon/trace/model.py).

Anything else is refused with the list of suffixes known.
"""

from __future__ import annotations

import json
from pathlib import Path

from daemon.errors import BadInput, UserError
from daemon.trace.model import Trace, as_trace, dump

SUFFIXES = (".json", ".shiviz", ".svg", ".png", ".etrace", ".etrace.json")
MIN_SLICE_US = 1.0
MAX_ROWS = 40
DENSE = 300  # messages past which arrows are drawn straight, in one batch per type
SHIVIZ_REGEX = r'(?<host>\S*) (?<clock>{.*})\n(?<event>.*)'
# message type -> colour of its arrows (others take the next of EXTRA_COLOURS)
COLOURS = {"explore": "#1f77b4", "echo": "#2ca02c", "finn": "#9467bd", "transfer": "#ff7f0e",
           "ack": "#8c564b", "forget": "#7f7f7f"}
EXTRA_COLOURS = ("#17becf", "#bcbd22", "#e377c2", "#d62728")


def suffix_of(path: str | Path) -> str:
    """The suffix that decides the format (``.etrace.json`` before ``.json``)."""
    name = Path(path).name.lower()
    for suffix in sorted(SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix):
            return suffix
    raise BadInput(f"{path}: unknown trace file suffix; known: {', '.join(SUFFIXES)}")


def write(trace: "Trace | dict", path: str | Path) -> None:
    """Write ``trace`` (a Trace or its dict) to ``path`` in the format of its suffix.
    Raises BadInput for an unknown suffix or a bad trace, UserError when the plot
    extra is missing or the file cannot be written."""
    suffix = suffix_of(path)
    trace = as_trace(trace)
    try:
        if suffix in (".etrace", ".etrace.json"):
            dump(trace, path)
        elif suffix == ".json":
            Path(path).write_text(json.dumps(perfetto(trace)) + "\n", encoding="utf-8")
        elif suffix == ".shiviz":
            Path(path).write_text(shiviz(trace), encoding="utf-8")
        else:
            draw(trace, path)
    except OSError as exc:
        raise UserError(f"{path}: cannot write the trace: {exc.strerror or exc}") from None


# --- Perfetto / Chrome trace-event JSON --------------------------------------------------


def placement(trace: Trace) -> tuple[list[float], str]:
    """Each step's start in µs on the drawing's one time line, and how it was chosen."""
    steps = trace.steps
    if not steps:
        return [], "none"
    t0 = min(s.t for s in steps)
    if trace.clock == "simulated":
        return [(s.t - t0) * 1e6 for s in steps], "simulated time"
    shift: dict[str, float] = {}
    ts = [0.0] * len(steps)
    for k in trace.order:
        s = steps[k]
        at = (s.t - t0) * 1e6 + shift.get(s.node, 0.0)
        prev = trace.previous(k)
        if prev is not None:
            at = max(at, ts[prev] + _width(steps[prev]))
        sender = trace.matched_send.get(k)
        if sender is not None:
            at = max(at, ts[sender] + _width(steps[sender]))
        shift[s.node] = at - (s.t - t0) * 1e6
        ts[k] = at
    return ts, ("each node's own clock, shifted later where a message would arrive before its "
                "sending step ended")


def _width(s) -> float:
    return max(s.dur * 1e6, MIN_SLICE_US)


def perfetto(trace: Trace) -> dict:
    """The trace as a Chrome trace-event JSON object."""
    steps = trace.steps
    ts, how = placement(trace)
    pid = {name: i + 1 for i, name in enumerate(trace.nodes)}
    events: list[dict] = []
    for name in trace.nodes:
        p = pid[name]
        events.append({"ph": "M", "name": "process_name", "pid": p, "tid": p, "args": {"name": name}})
        events.append({"ph": "M", "name": "process_sort_index", "pid": p, "tid": p, "args": {"sort_index": p}})
        events.append({"ph": "M", "name": "thread_name", "pid": p, "tid": p, "args": {"name": name}})
    lamport = trace.lamport
    for k, s in enumerate(steps):
        p = pid[s.node]
        r = s.recv
        title = "tick" if r is None else f"{r.type} from {r.src}"
        args = {"seq": s.seq, "inc": s.inc, "t": s.t, "dur_s": s.dur, "lamport": lamport[k],
                "in": None if r is None else {"from": r.src, "type": r.type, "wave": r.wave, "inc": r.inc},
                "out": [f"{o.type} -> {o.to}" for o in s.out]}
        if s.decide:
            args["decide"] = [f"{d.kind} {d.wave}: {d.what}" for d in s.decide]
        events.append({"ph": "X", "name": title, "cat": "step", "pid": p, "tid": p, "ts": ts[k],
                       "dur": _width(s), "args": args})
        for d in s.decide:
            events.append({"ph": "i", "s": "t", "name": f"decide {d.kind}", "cat": "decision", "pid": p, "tid": p,
                           "ts": ts[k] + _width(s) / 2, "args": {"wave": d.wave, "what": d.what}})
        if s.queue is not None:
            events.append({"ph": "C", "name": "queue", "pid": p, "ts": ts[k] + _width(s), "args": {"queue": s.queue}})
    flow = 0
    for m in trace.messages:
        if m.send is None:
            continue
        ks, pos = m.send
        s = steps[ks]
        # inside the sending slice, in emission order, before its middle
        at = ts[ks] + _width(s) * (pos + 1) / (2 * (len(s.out) + 1))
        if m.recv is None:
            events.append({"ph": "i", "s": "t", "name": f"lost {m.type} -> {m.dst}", "cat": "lost",
                           "pid": pid[m.src], "tid": pid[m.src], "ts": at, "args": {"wave": m.wave}})
            continue
        flow += 1
        r = steps[m.recv]
        common = {"name": m.type, "cat": "message", "id": flow}
        events.append({"ph": "s", **common, "pid": pid[m.src], "tid": pid[m.src], "ts": at})
        events.append({"ph": "f", "bp": "e", **common, "pid": pid[r.node], "tid": pid[r.node],
                       "ts": ts[m.recv] + _width(r) / 2})
    return {"traceEvents": events, "displayTimeUnit": "ms",
            "otherData": {"format": "echofinn-trace", "source": trace.source, "clock": trace.clock,
                          "wave": trace.wave, "kind": trace.kind, "placement": how}}


# --- ShiViz ----------------------------------------------------------------------------


def shiviz(trace: Trace) -> str:
    """The trace as a ShiViz log (regex line, then two lines per step)."""
    clocks = trace.vector_clocks()
    lines = [SHIVIZ_REGEX]
    for k in trace.order:
        s = trace.steps[k]
        r = s.recv
        what = "tick" if r is None else f"{r.type} from {r.src}"
        if s.out:
            what += "; sends " + ", ".join(f"{o.type} to {o.to}" for o in s.out)
        for d in s.decide:
            what += f"; DECIDES {d.kind} {d.wave}: {d.what}"
        lines.append(f"{s.node} {json.dumps(clocks[k], separators=(',', ':'))}")
        lines.append(f"{trace.ref(k)} {what}".replace("\n", " "))
    return "\n".join(lines) + "\n"


# --- space-time diagram ------------------------------------------------------------------


def rows(trace: Trace) -> tuple[dict[str, int], list[str], str]:
    """Each node's row in the diagram, the rows' labels and what a row is."""
    if len(trace.nodes) <= MAX_ROWS:
        return {n: i for i, n in enumerate(trace.nodes)}, list(trace.nodes), "a line per node"
    depth = _depths(trace)
    levels = sorted(set(depth.values()))
    row = {n: levels.index(depth[n]) for n in trace.nodes}
    counts = {lv: 0 for lv in levels}
    for n in trace.nodes:
        counts[depth[n]] += 1
    labels = [f"depth {lv if lv >= 0 else '?'} ({counts[lv]} node{'s' if counts[lv] > 1 else ''})" for lv in levels]
    return row, labels, f"{len(trace.nodes)} nodes folded into a line per depth from {trace.nodes[0]}"


def _depths(trace: Trace) -> dict[str, int]:
    around: dict[str, list[str]] = {n: [] for n in trace.nodes}
    for a, b in trace.edges:
        around[a].append(b)
        around[b].append(a)
    depth = {trace.nodes[0]: 0}
    frontier = [trace.nodes[0]]
    while frontier:
        nxt = []
        for a in frontier:
            for b in around[a]:
                if b not in depth:
                    depth[b] = depth[a] + 1
                    nxt.append(b)
        frontier = nxt
    return {n: depth.get(n, -1) for n in trace.nodes}  # -1: not connected to the first node


def _critical_sends(trace: Trace) -> set[int]:
    """The receiving steps of the messages on the critical path to the last decision
    (daemon/trace/report.py), drawn thick."""
    from daemon.trace.report import critical_steps, last_decision

    k = last_decision(trace)
    if k is None:
        return set()
    chain = critical_steps(trace, k)
    return {b for a, b in zip(chain, chain[1:]) if trace.matched_send.get(b) == a}


def draw(trace: Trace, path: str | Path) -> None:
    """Draw the space-time diagram into ``path`` (.svg or .png)."""
    try:
        import matplotlib
    except ModuleNotFoundError:
        raise UserError(f"{path}: drawing needs matplotlib, the [plot] extra: "
                        "pip install -e '.[plot]' (make venv installs it)") from None
    matplotlib.use("Agg")
    matplotlib.rcParams["svg.hashsalt"] = "echofinn-trace"  # the same trace, the same bytes
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    steps = trace.steps
    lamport = trace.lamport
    row, labels, what_rows = rows(trace)
    height = max(2.5, 0.45 * len(labels) + 1.6)
    width = min(16.0, max(8.0, 0.35 * max(lamport, default=1) + 3))
    fig, ax = plt.subplots(figsize=(width, height))
    n_rows = len(labels)
    for i in range(n_rows):
        ax.axhline(i, color="#cccccc", lw=0.8, zorder=0)
    dense = len(trace.messages) > DENSE
    colours: dict[str, str] = {}
    for m in trace.messages:
        if m.type not in colours:
            colours[m.type] = COLOURS.get(m.type, EXTRA_COLOURS[len(colours) % len(EXTRA_COLOURS)])
    lw = 0.5 if dense else 1.3
    arrows: dict[str, list[tuple]] = {}
    critical = _critical_sends(trace)
    for m in trace.messages:
        if m.send is None:
            r = m.recv
            x1, y1 = lamport[r], row[m.dst]
            ax.annotate("", xy=(x1, y1), xytext=(x1 - 0.6, y1 - 0.35 if y1 > 0 else y1 + 0.35),
                        arrowprops={"arrowstyle": "->", "color": colours[m.type], "lw": lw, "ls": ":"})
            continue
        ks = m.send[0]
        x0, y0 = lamport[ks], row[steps[ks].node]
        if m.recv is None:  # lost: toward its receiver's line, stopping short, ending in a cross
            y_to = row.get(m.dst, y0)
            dy = (y_to - y0) * 0.45 if y_to != y0 else 0.3
            x1, y1 = x0 + 0.7, y0 + dy
            ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                        arrowprops={"arrowstyle": "-", "color": colours[m.type], "lw": lw, "ls": "--"})
            ax.plot([x1], [y1], marker="x", color="#d62728", ms=7, mew=2, zorder=4)
            continue
        x1, y1 = lamport[m.recv], row[m.dst]
        if dense:  # one quiver per type below: thousands of annotations take seconds
            arrows.setdefault(m.type, []).append((x0, y0, x1 - x0, y1 - y0))
            continue
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                    arrowprops={"arrowstyle": "-|>", "color": colours[m.type],
                                "lw": 3.2 if m.recv in critical else lw, "shrinkA": 2,
                                "shrinkB": 2, "alpha": 0.9,
                                "connectionstyle": "arc3,rad=0.25" if y0 == y1 else "arc3"})
    for kind, vs in arrows.items():
        x, y, u, v = zip(*vs)
        ax.quiver(x, y, u, v, angles="xy", scale_units="xy", scale=1, color=colours[kind], alpha=0.6,
                  width=0.0015, headwidth=4, headlength=5, zorder=2)
    xs = [lamport[k] for k in range(len(steps))]
    ys = [row[s.node] for s in steps]
    ax.scatter(xs, ys, s=10 if dense else 18, color="#333333", zorder=3)
    decided = [(lamport[k], row[s.node]) for k, s in enumerate(steps) if s.decide]
    if decided:
        star = 90 if dense or len(decided) > MAX_ROWS else 220
        ax.scatter([x for x, _ in decided], [y for _, y in decided], marker="*", s=star, color="#ffbf00",
                   edgecolors="black", linewidths=0.8, zorder=5)
    ax.set_yticks(range(n_rows))
    ax.set_yticklabels(labels)
    ax.set_ylim(n_rows - 0.5, -0.5)
    ax.set_xlabel("Lamport time (happens-before order of steps)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    handles = [Line2D([0], [0], color=c, lw=2, label=t) for t, c in colours.items()]
    handles.append(Line2D([0], [0], marker="*", color="w", markerfacecolor="#ffbf00", markeredgecolor="black",
                          markersize=14, label="decision"))
    if critical and not dense:
        handles.append(Line2D([0], [0], color="#555555", lw=3.2, label="critical path"))
    if any(m.recv is None for m in trace.messages):
        handles.append(Line2D([0], [0], marker="x", color="#d62728", lw=0, mew=2, label="lost message"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9, frameon=False)
    kind = trace.kind or "every wave"
    wave = f" wave {trace.wave}" if trace.wave else ""
    ax.set_title(f"{kind}{wave} ({trace.source}, {trace.clock} clock): {len(trace.nodes)} nodes, "
                 f"{sum(m.send is not None for m in trace.messages)} messages\n{what_rows}", fontsize=10)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.tight_layout()
    if str(path).lower().endswith(".png"):
        fig.savefig(path, dpi=110)
    else:
        fig.savefig(path, metadata={"Date": None})
    plt.close(fig)
