"""``ctl sim wave`` (ctl/sim_wave.py), in-process: the per-seed lines and the summary,
the same bytes for the same seed, JSON, refusals by the kind's sentence (exit 1), bad
arguments (exit 2), and a failing kind named with the command that replays it."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys

import pytest
import test_election
import test_phase
import test_tarry
import test_tree

import daemon.sim.wave as harness
from ctl.cli import main
from daemon import plugins
from daemon.core.tarry import TarryToken, TarryWave
from daemon.plugins import wave_kinds

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SEED_TOML = os.path.join(ROOT, "topologies", "seed.toml")


def ctl(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.e2e  # starts a process (tests/conftest.py)
def test_same_seed_prints_the_same_bytes_in_other_processes():
    """Across processes with different string-hash seeds: no order may come from a set."""
    outs = []
    for hashseed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=hashseed)
        for argv in (
            ["tarry", "--nodes", "30", "--shape", "strong"],
            ["tree", "--nodes", "30"],
            ["phase", "--nodes", "20", "--shape", "strong", "--param", "D=19"],
            ["election", "--nodes", "20"],
        ):
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "ctl",
                    "sim",
                    "wave",
                    *argv,
                    "--seed",
                    "9",
                    "--seeds",
                    "3",
                    "--dup",
                    "0.2",
                    "--json",
                ],
                cwd=ROOT,
                env=env,
                capture_output=True,
                check=True,
            )
            outs.append(done.stdout)
    assert outs[:4] == outs[4:]


def test_list_names_every_kind(capsys):
    code, out, _ = ctl(capsys, "sim", "wave", "--list")
    assert code == 0
    # every installed kind (daemon/plugins.py): the built-in ones, then third-party ones
    # such as examples/mostloaded when it is installed
    names = [line.split()[0] for line in out.splitlines()]
    assert names[:7] == ["echo", "finn", "tarry", "tree", "phase", "election", "termination"]
    assert set(names) == set(wave_kinds())


@pytest.mark.parametrize(
    "argv",
    [
        ["tarry", SEED_TOML],
        ["tree", SEED_TOML, "--dup", "0.2"],
        ["phase", "--nodes", "12", "--shape", "strong", "--param", "D=11"],
        ["election", "--nodes", "9", "--shape", "ring", "--dup", "0.1"],
        ["tarry", "--nodes", "20", "--shape", "dag"],
    ],
)
def test_seeds_pass_with_a_line_each_and_repeat_byte_for_byte(capsys, argv):
    first = ctl(capsys, "sim", "wave", *argv, "--seed", "5", "--seeds", "4")
    assert first == ctl(capsys, "sim", "wave", *argv, "--seed", "5", "--seeds", "4")
    code, out, _ = first
    lines = out.splitlines()
    assert code == 0, out
    assert lines[0] == "seeds 5..8"
    assert [line.split(":")[0] for line in lines if line.startswith("seed ")] == [f"seed {s}" for s in range(5, 9)]
    assert lines[-2].startswith("summary: 4 seeds, 4 passed, 0 failed") and lines[-1] == "checks: ok"


def test_without_a_shape_a_generated_topology_fits_the_kind(capsys):
    code, out, _ = ctl(capsys, "sim", "wave", "election", "--nodes", "6", "--seed", "2", "--json")
    report = json.loads(out)
    assert code == 0 and report["replay"] == "ctl sim wave election --nodes 6 --shape ring --seed 2"
    assert report["messages"] >= 11 and report["decisions"][0][1] == {"leader": max(report["initiators"])}


def test_json_of_one_seed(capsys):
    code, out, _ = ctl(capsys, "sim", "wave", "tarry", SEED_TOML, "--seed", "3", "--from", "affixed", "--json")
    report = json.loads(out)
    assert code == 0
    assert report["initiators"] == ["affixed"] and report["messages"] == 14 == 2 * report["edges"]
    assert report["max_in_flight"] == 1 and report["decisions"][0][:2] == ["affixed", {"hops": 14}]
    assert report["violations"] == [] and report["complete"] is True
    assert report["replay"] == f"ctl sim wave tarry {SEED_TOML} --seed 3 --from affixed"


@pytest.mark.parametrize(
    "argv, sentence",
    [
        (["tree", "--nodes", "6", "--shape", "ring"], "tree cannot run on this topology: not a tree: the link"),
        (["election", SEED_TOML], "election cannot run on this topology: not a ring: node"),
        (["phase", SEED_TOML, "--param", "D=3"], "phase cannot run on this topology: not strongly connected: node"),
    ],
)
def test_a_topology_the_kind_cannot_run_on_is_refused(capsys, argv, sentence):
    code, out, err = ctl(capsys, "sim", "wave", *argv, "--seed", "1")
    assert code == 1 and sentence in err and "checks" not in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["tary", SEED_TOML], "unknown wave kind 'tary' (did you mean 'tarry'?)"),
        (["phase", "--nodes", "5", "--shape", "ring"], "phase: start parameter D is required (--param D=VALUE)"),
        (["phase", "--nodes", "5", "--shape", "ring", "--param", "D"], "--param: expected NAME=VALUE, got 'D'"),
        (["tarry", SEED_TOML, "--from", "root,affixed"], "tarry has one initiator, got 2: root, affixed"),
        (["tarry", SEED_TOML, "--from", "nobody"], "initiator 'nobody' is not a node of the topology"),
        ([], "give a wave kind"),
    ],
)
def test_bad_arguments_exit_2(capsys, argv, message):
    code, _, err = ctl(capsys, "sim", "wave", *argv, "--seed", "1")
    assert code == 2 and message in err


class FatherFirst(TarryWave):
    """Breaks R2 (daemon/core/tarry.py): the father's channel first."""

    name = "tarry-broken"

    def _forward(self, hops):
        if self.father not in self.used and self.father != self.node.me:
            self.used.add(self.father)
            self.node.send(self.father, TarryToken(self.wave, hops + 1))
            self.hops = hops + 1
            return
        super()._forward(hops)


def test_a_failing_seed_is_named_with_its_replay_command(capsys, monkeypatch):
    # the simulator finds the broken kind by name beside the installed ones (the registry
    # itself would refuse it: it shares tarry's message name)
    monkeypatch.setattr(harness, "kinds", lambda: {**plugins.wave_kinds(), FatherFirst.name: FatherFirst})
    code, out, _ = ctl(capsys, "sim", "wave", "tarry-broken", SEED_TOML, "--seed", "1", "--seeds", "3")
    assert code == 1
    lines = out.splitlines()
    failed = [line for line in lines if line.startswith("check failed (seed ")]
    seed = int(failed[0].split()[3].rstrip("):"))
    replay = f"ctl sim wave tarry-broken {SEED_TOML} --seed {seed}"
    assert f"replay: {replay}" in lines
    code, again, _ = ctl(capsys, *shlex.split(replay)[1:])
    assert code == 1
    assert [line for line in failed if f"(seed {seed})" in line] == [
        line for line in again.splitlines() if line.startswith("check failed")
    ]


@pytest.mark.parametrize("module", [test_tarry, test_tree, test_phase, test_election])
def test_a_property_failure_names_a_command_that_replays_the_run(capsys, module):
    """The assertion message of a sweep (tests/sim/wave_nets.py ``Hint``) writes the
    network and names a ``ctl sim wave`` command: it must run the very same wave."""
    for seed in (3, 5, 8):
        *_, sim, hint = module.one(seed)
        command = str(hint).split("replay: ")[1]
        code, out, _ = ctl(capsys, *shlex.split(command)[1:], "--json")
        report = json.loads(out)
        assert code == 0
        assert report["messages"] == sim.run.messages and report["duplicates"] == sim.duplicates
        assert [d[:2] for d in report["decisions"]] == [list(d) for d in sim.run.decisions]
        assert [d[2] for d in report["decisions"]] == [round(t, 6) for t in sim.decision_times]
