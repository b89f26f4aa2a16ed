"""Trace files (daemon/trace/formats.py): the Perfetto JSON's structure against the
trace-event format, ShiViz's log and its vector clocks, the space-time diagram, the raw
model, the suffixes refused, and the README's Perfetto JSON of a real echo
(docs/trace/echo-seed.json) against its raw trace."""

from __future__ import annotations

import json
import os
import re
import sys

import pytest

from daemon.errors import BadInput, UserError
from daemon.trace import write
from daemon.trace.formats import MAX_ROWS, SHIVIZ_REGEX, perfetto
from daemon.trace.model import Trace, load
from traces import ROOT, check_perfetto, echo_trace, finn_trace, gen, hand, step


def _skewed_cluster_trace() -> dict:
    """A cluster's trace whose node clocks disagree by far more than a hop: b's clock is
    behind a's, so raw times would have b receive before a sent."""
    return hand([
        step("a", 0, 100.0, "op:1", out=[("b", "explore")], dur=0.002, queue=0),
        step("b", 0, 40.0, "a", "explore", out=[("c", "explore")], dur=0.001, queue=2),
        step("b", 1, 40.5, None, dur=0.0, queue=1),
        step("c", 0, 300.0, "b", "explore", out=[("b", "echo")], dur=0.003, queue=0),
        step("b", 2, 41.0, "c", "echo", out=[("a", "echo"), ("c", "lost-one")], queue=0),
        step("a", 1, 100.9, "b", "echo", decide=["echo"], queue=0),
    ])


@pytest.mark.parametrize("make", [lambda: echo_trace(), lambda: finn_trace(gen(30, "strong"), dup=0.3),
                                  _skewed_cluster_trace])
def test_perfetto_json_follows_the_trace_event_format(make, tmp_path):
    trace = Trace.from_dict(make())
    path = tmp_path / "t.json"
    write(trace, path)
    doc = json.loads(path.read_text())
    check_perfetto(doc, trace)
    assert doc["displayTimeUnit"] == "ms"


def test_the_readmes_perfetto_json_of_a_real_echo_is_the_trace_event_format_of_its_raw_trace():
    # docs/trace/echo-seed.json and .etrace: one echo on a recording seed cluster of real
    # processes (README, "Seeing a wave"); the JSON must stay what the formats write today
    trace = load(os.path.join(ROOT, "docs", "trace", "echo-seed.etrace"))
    with open(os.path.join(ROOT, "docs", "trace", "echo-seed.json")) as f:
        doc = json.load(f)
    assert trace.source == "cluster" and trace.clock == "wall" and len(trace.nodes) == 8
    check_perfetto(doc, trace)
    assert doc == json.loads(json.dumps(perfetto(trace)))


def test_a_cluster_trace_is_placed_so_that_arrows_run_forward_and_queues_are_counters():
    trace = Trace.from_dict(_skewed_cluster_trace())
    doc = perfetto(trace)
    assert "shifted later" in doc["otherData"]["placement"]
    counters = [e for e in doc["traceEvents"] if e["ph"] == "C"]
    assert len(counters) == len(trace.steps) and all("queue" in e["args"] for e in counters)
    lost = [e for e in doc["traceEvents"] if e["ph"] == "i" and e["cat"] == "lost"]
    assert [e["name"] for e in lost] == ["lost lost-one -> c"]
    b = [e for e in doc["traceEvents"] if e["ph"] == "X" and e["pid"] == 2]
    # b's own gap between its first two steps (0.5 s) is kept
    assert b[1]["ts"] - b[0]["ts"] == pytest.approx(0.5e6)


def test_shiviz_log_parses_with_its_regex_and_its_clocks_are_consistent(tmp_path):
    trace = Trace.from_dict(finn_trace(gen(20, "dag"), seed=3, dup=0.3))
    path = tmp_path / "t.shiviz"
    write(trace, path)
    text = path.read_text()
    first, rest = text.split("\n", 1)
    assert first == SHIVIZ_REGEX
    pattern = re.compile(first.replace("(?<", "(?P<"))
    events = list(pattern.finditer(rest))
    assert len(events) == len(trace.steps)
    seen: dict[str, int] = {}
    clocks = []
    for e in events:
        host, clock = e["host"], json.loads(e["clock"])
        seen[host] = seen.get(host, 0) + 1
        assert clock[host] == seen[host]  # the host's own entry: one more per event
        assert e["event"].startswith(f"{host}#")
        clocks.append((host, clock))
    # an event's clock never runs ahead of what its host already saw of another host
    for host, clock in clocks:
        for other, c in clock.items():
            if other != host:
                assert c <= seen[other]


def test_the_space_time_diagram_svg_and_png(tmp_path):
    trace = Trace.from_dict(echo_trace())
    write(trace, tmp_path / "t.svg")
    write(trace, tmp_path / "t.png")
    svg = (tmp_path / "t.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    assert "a line per node" in svg and "decision" in svg and "explore" in svg
    assert (tmp_path / "t.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_big_trace_folds_its_rows_by_depth_and_says_so(tmp_path):
    trace = Trace.from_dict(echo_trace(gen(200, "tree"), seed=2))
    assert len(trace.nodes) > MAX_ROWS
    write(trace, tmp_path / "big.svg")
    svg = (tmp_path / "big.svg").read_text()
    assert "200 nodes folded into a line per depth" in svg


def test_lost_messages_are_drawn(tmp_path):
    write(_skewed_cluster_trace(), tmp_path / "lost.svg")
    assert "lost message" in (tmp_path / "lost.svg").read_text()


def test_without_matplotlib_drawing_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(UserError, match=r"matplotlib, the \[plot\] extra"):
        write(echo_trace(), tmp_path / "t.svg")


@pytest.mark.parametrize("name", ["t.etrace", "t.etrace.json"])
def test_the_raw_model_round_trips(name, tmp_path):
    d = echo_trace(dup=0.3)
    write(d, tmp_path / name)
    assert load(tmp_path / name).to_dict() == d


def test_an_unknown_suffix_is_refused_naming_the_known_ones(tmp_path):
    with pytest.raises(BadInput, match=r"t\.txt: unknown trace file suffix; known: \.json, \.shiviz, \.svg"):
        write(echo_trace(), tmp_path / "t.txt")
    assert not (tmp_path / "t.txt").exists()
