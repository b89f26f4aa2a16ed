"""``ctl sim``: reproducible output, JSON fields, errors for people, and the replay
command on a failed check."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from ctl.cli import main
from daemon.core.echo import EchoWave

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SEED_TOML = os.path.join(ROOT, "topologies", "seed.toml")


def ctl(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.e2e  # starts a process (tests/conftest.py)
def test_same_seed_prints_the_same_bytes_in_other_processes():
    """Across processes with different string-hash seeds: nothing may depend on set order."""
    argv = ["sim", "finn", "--nodes", "30", "--shape", "strong", "--seed", "9", "--dup", "0.1"]
    outs = []
    for hashseed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=hashseed)
        done = subprocess.run([sys.executable, "-m", "ctl", *argv], cwd=ROOT, env=env,
                              capture_output=True, check=True)
        outs.append(done.stdout)
    assert outs[0] == outs[1]
    assert outs[0].startswith(b"seed 9\n")


@pytest.mark.parametrize("wave", ["echo", "finn"])
@pytest.mark.parametrize("shape", ["tree", "dag", "ring", "strong"])
def test_same_seed_same_output_and_checks_pass(capsys, wave, shape):
    argv = ["sim", wave, "--nodes", "25", "--shape", shape, "--seed", "4", "--dup", "0.05"]
    first = ctl(capsys, *argv)
    assert first == ctl(capsys, *argv)
    code, out, _ = first
    assert code == 0, out
    assert out.splitlines()[0] == "seed 4" and "checks: ok" in out
    other = ctl(capsys, *argv[:-3], "5", "--dup", "0.05")
    assert other[1] != out


def test_echo_json_fields(capsys):
    code, out, _ = ctl(capsys, "sim", "echo", SEED_TOML, "--seed", "3", "--from", "affixed", "--json")
    report = json.loads(out)
    assert code == 0
    assert report["seed"] == 3
    assert report["decided"] == ["affixed"] and report["undecided"] == []
    assert report["messages"] == 2 * report["links"] == 14
    assert report["entries"] == report["nodes"] == 8
    assert report["tree_ok"] is True
    assert isinstance(report["time"], float) and report["time"] > 0
    assert report["problems"] == []
    assert report["replay"] == f"ctl sim echo {SEED_TOML} --seed 3 --from affixed"


def test_finn_json_and_a_source_left_out(capsys):
    code, out, _ = ctl(capsys, "sim", "finn", "--nodes", "40", "--shape", "dag", "--seed", "123", "--json")
    full = json.loads(out)
    assert code == 0 and full["undecided"] == [] and len(full["decided"]) == 40
    assert len(full["initiators"]) >= 2 and full["causality_checked"] is True
    # Leave the last source out: its descendants wait, are named, and that is no failure.
    kept = full["initiators"][:-1]
    code, out, _ = ctl(capsys, "sim", "finn", "--nodes", "40", "--shape", "dag", "--seed", "123",
                       "--from", ",".join(kept), "--json")
    part = json.loads(out)
    assert code == 0
    assert full["initiators"][-1] in part["undecided"]
    assert part["every_source_component_initiated"] is False
    assert sorted(part["decided"] + part["undecided"]) == sorted(full["decided"])


def test_text_names_the_undecided(capsys):
    code, out, _ = ctl(capsys, "sim", "finn", os.path.join(ROOT, "topologies", "dag.toml"), "--seed", "1",
                       "--from", _first_source(os.path.join(ROOT, "topologies", "dag.toml")))
    assert code == 0
    line = next(x for x in out.splitlines() if x.startswith("undecided:"))
    assert line != "undecided: none"


def _first_source(path):
    from daemon.topology import load

    return load(path).finn_initiators()[0]


@pytest.mark.parametrize("argv, message", [
    (["sim", "echo"], "no topology"),
    (["sim", "finn", "--seed", "3"], "no topology"),
    (["sim", "echo", "--nodes", "5", "--from", "nobody"], "--from: <generated tree"),
    (["sim", "echo", SEED_TOML, "--from", "roo"], "did you mean 'root'"),
    (["sim", "finn", SEED_TOML, "--from", "root,nobody"], "no node named 'nobody'"),
    (["sim", "echo", SEED_TOML, "--nodes", "4"], "not both"),
    (["sim", "echo", "--nodes", "4", "--shape", "blob"], "unknown shape 'blob'"),
    (["sim", "echo", "--nodes", "0"], "at least 1"),
    (["sim", "echo", "/nonexistent/t.toml"], "/nonexistent/t.toml: no such file"),
    (["sim", "echo", SEED_TOML, "--from", "root", "--from", "affixed"], "one initiator"),
])
def test_bad_arguments_exit_2_with_a_message(capsys, argv, message):
    code, out, err = ctl(capsys, *argv)
    assert code == 2
    assert message in err and "Traceback" not in err


def test_bad_dup_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["sim", "echo", "--nodes", "3", "--dup", "1.5"])
    assert exit_info.value.code == 2
    assert "--dup must be at least 0 and below 1" in capsys.readouterr().err


class CountingEchoWave(EchoWave):
    """The classic mistake: count messages, not distinct senders."""

    def receive(self, sender, msg):
        self.count = getattr(self, "count", 0) + 1
        self.heard.add(("message", self.count))  # a duplicate now counts as a new neighbour
        return super().receive(sender, msg)


def test_a_failed_check_prints_the_replay_command(capsys, monkeypatch):
    monkeypatch.setattr("daemon.sim.echo.EchoWave", CountingEchoWave)
    argv = ["sim", "echo", "--nodes", "30", "--shape", "strong", "--seed", "5", "--dup", "0.3"]
    code, out, _ = ctl(capsys, *argv)
    assert code == 1
    assert "check failed:" in out
    assert out.splitlines()[-1] == "replay: ctl sim echo --nodes 30 --shape strong --seed 5 --dup 0.3"


def test_balance_calls_the_balancer_or_says_it_is_missing(capsys):
    code, out, err = ctl(capsys, "sim", "balance", "--nodes", "20", "--shape", "tree", "--seed", "2")
    if importlib.util.find_spec("daemon.sim.balance") is None:
        assert code == 1 and "not available yet" in err
    else:
        assert code == 0 and out.startswith("seed 2\n")
        assert "replay: ctl sim balance --nodes 20 --shape tree --seed 2 --scenario burst --policy heap" in out
