"""``ctl trace show|check|convert`` and ``ctl sim ... --trace FILE``: exit codes, the
one-line summary, violations named, errors naming the file."""

from __future__ import annotations

import json

import pytest

from ctl.cli import main
from daemon.trace.check import check
from daemon.trace.model import Trace
from traces import SEED_TOML, echo_trace, without


def ctl(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("wave", ["echo", "finn"])
def test_sim_writes_a_trace_that_checks(wave, tmp_path, capsys):
    path = tmp_path / f"{wave}.etrace"
    code, out, _ = ctl(capsys, "sim", wave, SEED_TOML, "--seed", 1, "--dup", 0.2, "--trace", path)
    assert code == 0 and f"trace: {path}" in out
    code, out, _ = ctl(capsys, "trace", "check", path)
    assert code == 0
    assert out.count("\n") == 1 and "trace ok: 8 nodes" in out and f"{wave} wave" in out


def test_sim_chaos_writes_a_trace(tmp_path, capsys):
    path = tmp_path / "chaos.etrace"
    code, out, _ = ctl(capsys, "sim", "chaos", SEED_TOML, "--seed", 1, "--trace", path)
    assert code == 0, out
    code, out, _ = ctl(capsys, "trace", "show", path, "--json")
    r = json.loads(out)
    assert r["source"] == "sim" and r["clock"] == "simulated" and r["steps"] > 0
    assert any(w["kind"] == "echo" and w["decision"] for w in r["waves"])
    # Faults make the run's waves depart from Tel's (deadlines give up on the silent), but
    # the last echo, over the quiet network, is a perfect one.
    d = json.loads(path.read_text())
    starts = [s["in"]["wave"] for s in d["steps"] if s["in"] and s["in"]["type"] == "echo.start"]
    d.update(wave=starts[-1], kind="echo")
    violations, waves = check(Trace.from_dict(d))
    assert violations == [] and waves[0].messages == 14


def test_sim_refuses_an_unknown_suffix_before_running(tmp_path, capsys):
    code, _, err = ctl(capsys, "sim", "echo", SEED_TOML, "--seed", 1, "--trace", tmp_path / "t.txt")
    assert code == 2 and "unknown trace file suffix; known: .json" in err


def test_check_names_each_violation_and_exits_1(tmp_path, capsys):
    d = without(echo_trace(), lambda s: s["node"] == "pical")
    path = tmp_path / "broken.etrace"
    path.write_text(json.dumps(d))
    code, out, _ = ctl(capsys, "trace", "check", path)
    assert code == 1
    assert "violation [wave.causality] wave echo-sim (node root, step root#2): decided before any step at pical" in out
    assert f"{path}: " in out.splitlines()[-1] and "violation(s)" in out
    code, out, _ = ctl(capsys, "trace", "check", path, "--json")
    r = json.loads(out)
    assert code == 1 and r["ok"] is False and {"rule", "node", "step", "text"} <= set(r["violations"][0])


def test_show_prints_the_critical_path_and_counts(tmp_path, capsys):
    path = tmp_path / "e.etrace"
    path.write_text(json.dumps(echo_trace()))
    code, out, _ = ctl(capsys, "trace", "show", path)
    assert code == 0
    assert "critical path to the decision at root#2 (decided: 8/8 nodes), 8 hop(s)" in out
    assert "start at root#0 (from op:sim)" in out and "pical#0 -> subserviate#1" in out
    assert "lost (sent, never received in the trace): none" in out
    code, out, _ = ctl(capsys, "trace", "show", path, "--json")
    r = json.loads(out)
    path_hops = r["waves"][0]["path"]
    assert path_hops[0]["kind"] == "start" and path_hops[-1]["to"] == "root#2"
    assert r["per_node"]["root"] == {"steps": 3, "sent": 2, "received": 2, "decisions": 1}


def test_show_of_a_cluster_trace_warns_about_clocks_across_hosts(tmp_path, capsys):
    d = echo_trace()
    d.update(source="cluster", clock="wall")
    path = tmp_path / "c.etrace"
    path.write_text(json.dumps(d))
    code, out, _ = ctl(capsys, "trace", "show", path)
    assert code == 0 and "off by the clocks' offset across hosts" in out


def test_convert_writes_each_format(tmp_path, capsys):
    src = tmp_path / "e.etrace"
    src.write_text(json.dumps(echo_trace()))
    outs = [tmp_path / n for n in ("e.json", "e.shiviz", "e.svg")]
    code, out, _ = ctl(capsys, "trace", "convert", src, *outs)
    assert code == 0 and all(p.exists() for p in outs)
    code, _, err = ctl(capsys, "trace", "convert", src, tmp_path / "e.pdf")
    assert code == 2 and "e.pdf: unknown trace file suffix" in err


def test_a_file_that_is_not_a_trace_exits_2_naming_it(tmp_path, capsys):
    path = tmp_path / "perfetto.json"
    path.write_text(json.dumps({"traceEvents": []}))
    code, _, err = ctl(capsys, "trace", "check", path)
    assert code == 2 and "perfetto.json: field 'format' must be 'echofinn-trace'" in err
