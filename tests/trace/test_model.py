"""The trace model (daemon/trace/model.py): the dict form both ways, errors that name
the step and field, pairing sends with receives, happens-before and the clocks; damaged
and arbitrary traces, which are refused with a TraceError or read, checked, shown and
written without a crash."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from budget import examples
from daemon.trace.check import check
from daemon.trace.formats import perfetto, shiviz
from daemon.trace.model import Trace, TraceError, dump, load
from daemon.trace.report import format_report, report
from traces import echo_trace, finn_trace, gen, hand, step


def test_a_simulated_trace_survives_the_dict_and_the_file(tmp_path):
    d = finn_trace(gen(20, "strong"), seed=4, dup=0.3)
    assert Trace.from_dict(json.loads(json.dumps(d))).to_dict() == d
    path = tmp_path / "f.etrace"
    dump(Trace.from_dict(d), path)
    assert load(path).to_dict() == d


@pytest.mark.parametrize("change, named", [
    (lambda d: d.update(format="chrome"), "field 'format'"),
    (lambda d: d.update(version=2), "version 1"),
    (lambda d: d.update(clock="atomic"), "field 'clock'"),
    (lambda d: d["steps"][1].update(dur=-1), "steps[1] (node b, seq 0): field 'dur'"),
    (lambda d: d["steps"][1].update(t=float("nan")), "steps[1] (node b, seq 0): field 't'"),
    (lambda d: d["steps"][1].update(node="zed"), "steps[1]: field 'node'"),
    (lambda d: d["steps"][1]["in"].update({"from": "nobody"}), "field 'in.from'"),
    (lambda d: d["steps"][0]["out"][0].update(to=3), "out[0].to"),
    (lambda d: d["steps"][1].update(seq=0, node="a"), "repeats steps[0]"),
    (lambda d: d["topology"]["edges"].append(["a", "q"]), "topology.edges[2]"),
    (lambda d: d.update(missing=["q"]), "field 'missing'"),
    (lambda d: d["steps"][0].update(out={}), "must be lists"),
])
def test_a_bad_trace_is_refused_naming_step_and_field(change, named):
    d = hand([step("a", 0, 1.0, "op:1", out=[("b", "explore")]), step("b", 0, 5.0, "a", "explore")])
    Trace.from_dict(d)
    change(d)
    with pytest.raises(TraceError, match=named.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        Trace.from_dict(d)


def test_load_names_the_file(tmp_path):
    path = tmp_path / "bad.etrace"
    path.write_text("{not json")
    with pytest.raises(TraceError, match="bad.etrace: not JSON"):
        load(path)
    with pytest.raises(TraceError, match="nothere.etrace: cannot read"):
        load(tmp_path / "nothere.etrace")


def test_the_nth_send_pairs_with_the_nth_receive_per_incarnation():
    d = hand([
        step("a", 0, 1.0, "op:1", out=[("b", "m"), ("b", "m")]),        # inc 1: two sends
        step("a", 0, 9.0, "op:1", out=[("b", "m")], inc=2),              # a restarted: inc 2
        step("b", 0, 5.0, "a", "m", rinc=2),                             # from inc 2
        step("b", 1, 6.0, "a", "m", rinc=1),                             # inc 1's first
        step("c", 0, 7.0, "b", "m"),                                     # b never sent it
    ])
    tr = Trace.from_dict(d)
    pairs = {(m.send[0] if m.send else None, m.recv) for m in tr.messages}
    assert pairs == {(0, 3), (0, None), (1, 2), (None, 4)}
    lost = [m for m in tr.messages if m.recv is None]
    assert [(m.send, m.dst) for m in lost] == [((0, 1), "b")]


def test_when_the_senders_ring_dropped_steps_the_extra_receives_are_the_earliest():
    d = hand([step("a", 5, 3.0, "op:1", out=[("b", "m")]),
              step("b", 0, 1.0, "a", "m"), step("b", 1, 4.0, "a", "m")], dropped={"a": 5})
    tr = Trace.from_dict(d)
    assert {(m.send[0] if m.send else None, m.recv) for m in tr.messages} == {(None, 1), (0, 2)}


def test_numbered_receives_pair_exactly_and_a_repeat_is_a_duplicate():
    d = hand([step("a", 0, 1.0, "op:1", out=[("b", "m"), ("b", "m")]),
              step("b", 0, 2.0, "a", "m"), step("b", 1, 3.0, "a", "m"), step("b", 2, 4.0, "a", "m")])
    for k, n in ((1, 1), (2, 0), (3, 1)):
        d["steps"][k]["in"]["n"] = n
    tr = Trace.from_dict(d)
    got = sorted((m.send[1] if m.send else -1, m.recv, m.duplicate) for m in tr.messages)
    assert got == [(-1, 3, True), (0, 2, False), (1, 1, False)]


def test_a_receive_before_its_own_send_is_a_cycle():
    d = hand([step("a", 0, 1.0, "b", "m", out=[("b", "m")]), step("b", 0, 1.0, "a", "m", out=[("a", "m")])])
    with pytest.raises(TraceError, match="cycle through step"):
        Trace.from_dict(d).order


def test_lamport_and_vector_clocks_follow_program_order_and_messages():
    tr = Trace.from_dict(hand([
        step("a", 0, 1.0, "op:1", out=[("b", "m")]),
        step("b", 0, 0.0, None),                      # a tick at b, before anything
        step("b", 1, 2.0, "a", "m", out=[("c", "m")]),
        step("c", 0, 3.0, "b", "m"),
        step("a", 1, 4.0, None),
    ]))
    assert tr.lamport == [1, 1, 2, 3, 2]
    vc = tr.vector_clocks()
    assert vc[3] == {"a": 1, "b": 2, "c": 1}
    assert vc[4] == {"a": 2}
    assert tr.causal_nodes(3) == {"a", "b", "c"}
    assert tr.causal_nodes(4) == {"a"}


def test_vector_clocks_own_entry_counts_the_nodes_steps():
    tr = Trace.from_dict(echo_trace(gen(25, "dag"), seed=2, dup=0.3))
    vc = tr.vector_clocks()
    for node, ks in tr.program.items():
        assert [vc[k][node] for k in ks] == list(range(1, len(ks) + 1))
    for m in tr.messages:
        if m.send and m.recv is not None:
            sent, got = vc[m.send[0]], vc[m.recv]
            assert all(got.get(q, 0) >= c for q, c in sent.items())


# --- hostile files: whatever a trace file holds, a clear TraceError or a trace -------------

_junk = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=True), st.text(max_size=4),
                  st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


@given(data=st.data())
@settings(max_examples=examples(200), deadline=None)
def test_a_damaged_trace_is_refused_with_a_trace_error_or_read(data):
    d = echo_trace(dup=0.3)
    for _ in range(data.draw(st.integers(1, 4), label="damages")):
        where = data.draw(st.sampled_from(["top", "step", "in", "out"]), label="where")
        if where == "top" or not (isinstance(d.get("steps"), list) and d["steps"]):
            target = d
        else:
            s = data.draw(st.sampled_from(d["steps"]), label="step")
            if not isinstance(s, dict):
                continue
            outs = s.get("out") if isinstance(s.get("out"), list) else None
            inner = s.get("in") if where == "in" else (outs or [{}])[0] if outs is not None else None
            target = s if where == "step" else inner
        if not isinstance(target, dict):
            continue
        key = data.draw(st.sampled_from(sorted(target) or ["x"]), label="key")
        if data.draw(st.booleans(), label="delete"):
            target.pop(key, None)
        else:
            target[key] = data.draw(_junk, label="value")
    try:
        trace = Trace.from_dict(d)
    except TraceError:
        return
    try:  # a readable trace may still hold a receive before its send: TraceError again
        check(trace)
        report(trace)
        perfetto(trace)
        shiviz(trace)
    except TraceError as exc:
        assert "cycle" in str(exc)


_NODES = ["a", "b", "c", "d"]
_peers = st.sampled_from(_NODES + ["op:1"])
_types = st.sampled_from(["explore", "echo", "finn"])
_steps = st.lists(st.tuples(
    st.sampled_from(_NODES), st.one_of(st.none(), _peers), _types,
    st.lists(st.tuples(_peers, _types), max_size=3), st.lists(st.sampled_from(["echo", "finn"]), max_size=1),
    st.integers(0, 50), st.sampled_from([1, 2]), st.sampled_from([1, 2])), max_size=14)


@given(drawn=_steps, dropped=st.integers(0, 2))
@settings(max_examples=examples(200), deadline=None)
def test_any_well_formed_trace_is_checked_shown_and_written_without_a_crash(drawn, dropped):
    steps = [step(node, k, float(t), src, rtype, outs, decide, inc=inc, rinc=rinc, queue=1)
             for k, (node, src, rtype, outs, decide, t, inc, rinc) in enumerate(drawn)]
    d = hand(steps, nodes=_NODES, edges=[("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")], dropped={"a": dropped})
    trace = Trace.from_dict(d)
    try:
        trace.order
    except TraceError as exc:
        assert "cycle" in str(exc)
        return
    check(trace)
    format_report(report(trace))
    doc = perfetto(trace)
    assert len([e for e in doc["traceEvents"] if e["ph"] == "s"]) == len(
        [e for e in doc["traceEvents"] if e["ph"] == "f"])
    assert shiviz(trace).count("\n") == 1 + 2 * len(trace.steps)


def test_a_restarted_nodes_steps_are_named_with_their_incarnation():
    tr = Trace.from_dict(hand([step("a", 0, 1.0, None), step("a", 0, 2.0, None, inc=7), step("b", 3, 1.0, None)]))
    assert [tr.ref(k) for k in range(3)] == ["a#0/inc1", "a#0/inc2", "b#3"]
