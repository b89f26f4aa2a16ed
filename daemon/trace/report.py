"""What ``ctl trace show`` tells about a trace: each wave's critical path, the messages
per node, the lost ones.

Theory of operation (ARCHITECTURE.md, "Traces"). The *critical path* of a decision is
the causal chain that ends at it: from the deciding step walk back through its matched
receive to the step that sent the message, and on from there; a step that handled no
matched message (a timer tick) continues at the node's previous step, the step that
armed it; the walk ends at the step that handled the operator's request (or at a
receive whose send is outside the recording window). A wave with several decisions
(Finn) is shown up to its last one in happens-before order.

Each hop's time splits into the sender's handler (its step's ``dur``), wire and queue
(the receive's start minus the end of the sending step) and the receiver's handler.
Wire and queue compare two nodes' clocks: exact in the simulator and between nodes of
one host; across hosts it carries the clocks' offset, and the report says so.
"""

from __future__ import annotations

from daemon.trace.check import waves_of
from daemon.trace.model import Trace

WALL_NOTE = ("wire+queue subtracts two nodes' wall clocks: exact between nodes of one host, "
             "off by the clocks' offset across hosts")


def critical_steps(trace: Trace, k: int) -> list[int]:
    """The steps of the causal chain ending at step ``k`` (indexes), first step first."""
    chain = [k]
    while True:
        sender = trace.matched_send.get(k)
        if sender is not None:
            k = sender
        elif trace.steps[k].recv is None and trace.previous(k) is not None:
            k = trace.previous(k)
        else:
            break
        chain.append(k)
    chain.reverse()
    return chain


def last_decision(trace: Trace, wave: str | None = None) -> int | None:
    """The step of the wave's decision that comes last in happens-before (Lamport),
    any wave's when ``wave`` is None; None without a decision."""
    decisions = [k for k, d in trace.decisions() if wave is None or d.wave == wave]
    return max(decisions, key=lambda k: trace.lamport[k]) if decisions else None


def critical_path(trace: Trace, k: int) -> list[dict]:
    """The hops of the causal chain ending at step ``k``, first hop first."""
    steps = trace.steps
    chain = critical_steps(trace, k)
    start = steps[chain[0]]
    hops = [{"kind": "start", "type": start.recv.type if start.recv else "tick", "from": None,
             "to": trace.ref(chain[0]), "sender": 0.0, "wire_queue": 0.0, "receiver": start.dur,
             "received_from": start.recv.src if start.recv else None}]
    for a, b in zip(chain, chain[1:]):
        s, r = steps[a], steps[b]
        local = trace.matched_send.get(b) != a
        hops.append({"kind": "local" if local else "message", "type": "tick" if local else r.recv.type,
                     "from": trace.ref(a), "to": trace.ref(b), "sender": s.dur, "wire_queue": r.t - (s.t + s.dur),
                     "receiver": r.dur})
    return hops


def report(trace: Trace) -> dict:
    """Everything ``ctl trace show`` prints, as JSON-able data."""
    steps = trace.steps
    per_node = {n: {"steps": 0, "sent": 0, "received": 0, "decisions": 0} for n in trace.nodes}
    for s in steps:
        per_node[s.node]["steps"] += 1
        per_node[s.node]["decisions"] += len(s.decide)
    lost, early = [], []
    duplicates = 0
    for m in trace.messages:
        if m.send is not None:
            per_node[m.src]["sent"] += 1
        if m.recv is not None:
            per_node[m.dst]["received"] += 1
        if m.recv is None:
            lost.append({"from": trace.ref(m.send[0]), "to": m.dst, "type": m.type, "wave": m.wave})
        elif m.duplicate:
            duplicates += 1
        elif m.send is None:
            early.append({"from": m.src, "to": trace.ref(m.recv), "type": m.type, "wave": m.wave})
    waves = []
    lamport = trace.lamport
    for wave, kind in waves_of(trace):
        decisions = [(k, d) for k, d in trace.decisions() if d.wave == wave]
        entry = {"wave": wave, "kind": kind, "decisions": len(decisions), "decision": None, "path": []}
        k = last_decision(trace, wave)
        if k is not None:
            d = next(d for d in steps[k].decide if d.wave == wave)
            path = critical_path(trace, k)
            entry["decision"] = {"step": trace.ref(k), "node": steps[k].node, "what": d.what, "lamport": lamport[k]}
            entry["path"] = path
            entry["path_time"] = sum(h["sender"] + h["wire_queue"] for h in path[1:]) + path[-1]["receiver"] \
                if len(path) > 1 else path[0]["receiver"]
        waves.append(entry)
    return {
        "source": trace.source, "clock": trace.clock, "wave": trace.wave, "kind": trace.kind,
        "nodes": len(trace.nodes), "steps": len(steps), "messages": sum(m.send is not None for m in trace.messages),
        "waves": waves, "per_node": per_node, "lost": lost, "received_without_send": early, "duplicates": duplicates,
        "dropped": {n: c for n, c in trace.dropped.items() if c}, "missing": list(trace.missing),
        "note": WALL_NOTE if trace.clock == "wall" else None,
    }


def format_report(r: dict, rows: int = 40) -> str:
    """The report as text for a terminal; at most ``rows`` nodes in the per-node table
    (the busiest), the rest summed."""
    lines = [f"trace: {r['source']}, {r['clock']} clock; {r['nodes']} nodes, {r['steps']} steps, "
             f"{r['messages']} messages sent, {len(r['lost'])} lost, "
             f"{len(r['received_without_send'])} received without a send in the trace"
             + (f", {r['duplicates']} duplicate deliveries" if r["duplicates"] else "")]
    if r["missing"]:
        lines.append(f"missing (did not answer the fetch): {', '.join(r['missing'])}")
    if r["dropped"]:
        lines.append("steps overwritten before the window: "
                     + ", ".join(f"{n} {c}" for n, c in r["dropped"].items()))
    for w in r["waves"]:
        lines.append("")
        if w["decision"] is None:
            lines.append(f"{w['kind']} wave {w['wave']}: no decision")
            continue
        d = w["decision"]
        lines.append(f"{w['kind']} wave {w['wave']}: {w['decisions']} decision(s); critical path to the "
                     f"{'last ' if w['decisions'] > 1 else ''}decision at {d['step']} ({d['what']}), "
                     f"{len(w['path']) - 1} hop(s), {_ms(w['path_time'])} ms")
        lines.append(f"  {'hop':<42} {'type':<12} {'sender ms':>10} {'wire+queue ms':>14} {'receiver ms':>12}")
        for h in w["path"]:
            if h["kind"] == "start":
                by = h.get("received_from") or "a timer"
                if len(by) > 14:  # an operator's routing id: its hex is long and says little
                    by = by[:11] + "..."
                lines.append(f"  {'start at ' + h['to'] + ' (from ' + by + ')':<42} {h['type']:<12} "
                             f"{'':>10} {'':>14} {_ms(h['receiver']):>12}")
            else:
                arrow = f"{h['from']} -> {h['to']}"
                lines.append(f"  {arrow:<42} {h['type']:<12} {_ms(h['sender']):>10} "
                             f"{_ms(h['wire_queue']):>14} {_ms(h['receiver']):>12}")
    if r["note"]:
        lines.append(f"  note: {r['note']}")
    lines.append("")
    per = sorted(r["per_node"].items(), key=lambda kv: (-kv[1]["sent"] - kv[1]["received"], kv[0]))
    lines.append(f"{'node':<24} {'steps':>6} {'sent':>6} {'received':>9} {'decided':>8}")
    for name, c in per[:rows]:
        lines.append(f"{name:<24} {c['steps']:>6} {c['sent']:>6} {c['received']:>9} {c['decisions']:>8}")
    if len(per) > rows:
        rest = [c for _, c in per[rows:]]
        lines.append(f"{'(' + str(len(rest)) + ' more nodes)':<24} {sum(c['steps'] for c in rest):>6} "
                     f"{sum(c['sent'] for c in rest):>6} {sum(c['received'] for c in rest):>9} "
                     f"{sum(c['decisions'] for c in rest):>8}")
    lines.append("")
    if r["lost"]:
        lines.append(f"lost (sent, never received in the trace): {len(r['lost'])}")
        for m in r["lost"][:rows]:
            lines.append(f"  {m['from']} -> {m['to']}  {m['type']}  wave {m['wave']}")
    else:
        lines.append("lost (sent, never received in the trace): none")
    return "\n".join(lines)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f}"
