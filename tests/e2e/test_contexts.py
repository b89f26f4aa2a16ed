"""Which cluster a bare command acts on, chosen per shell: ``-t``, else
``ECHOFINN_CLUSTER``, else the one cluster running; with two running and no choice made
a bare command refuses, naming them and how to choose, and a cluster another shell
starts never takes over. ``ctl list`` shows every cluster of this user on this host."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.e2e


def test_two_clusters_a_bare_command_asks_which_and_each_shell_chooses(cluster_env):
    first = cluster_env.start("seed.toml", name="first")
    single = cluster_env.ctl("status")  # one cluster running: bare commands act on it, as before
    assert single.returncode == 0 and "cluster first: running" in single.stdout, single.stdout + single.stderr

    cluster_env.start("dag.toml", name="second")  # "another shell" starts a second cluster: `current` is now second
    assert (cluster_env.home / "current").read_text().strip() == "second"
    for command in (["status"], ["echo"], ["submit", "root"], ["stop"]):
        bare = cluster_env.ctl(*command)
        assert bare.returncode == 1, (command, bare.stdout + bare.stderr)
        assert ("2 clusters are running (first, second); say which: `-t NAME`, or `export ECHOFINN_CLUSTER=NAME` "
                "for this shell") in bare.stderr, (command, bare.stderr)

    by_env = cluster_env.ctl("echo", "--json", env={"ECHOFINN_CLUSTER": "first"})
    assert by_env.returncode == 0, by_env.stderr
    assert {n["name"] for n in json.loads(by_env.stdout)["nodes"]} >= {"root", "pical"}  # seed's nodes
    by_name = cluster_env.ctl("status", "-t", "second", env={"ECHOFINN_CLUSTER": "first"})  # -t wins
    assert by_name.returncode == 0 and "cluster second: running" in by_name.stdout, by_name.stdout + by_name.stderr
    by_file = cluster_env.ctl("status", "-t", first)
    assert by_file.returncode == 0 and "cluster first: running" in by_file.stdout

    listed = cluster_env.ctl_json("list")
    rows = {c["name"]: c for c in listed["clusters"]}
    assert set(rows) == {"first", "second"} and listed["selected"] is None and "2 clusters" in listed["choose"]
    assert rows["first"]["state"] == rows["second"]["state"] == "running"
    assert (rows["first"]["nodes"], rows["first"]["nodes_alive"]) == (8, 8)
    assert rows["first"]["run_dir"] == str(cluster_env.home / "first")
    chosen = cluster_env.ctl_json("list", env={"ECHOFINN_CLUSTER": "second"})
    assert [c["name"] for c in chosen["clusters"] if c["selected"]] == ["second"]
    assert chosen["selected_by"] == "named by ECHOFINN_CLUSTER"

    # the last started is stopped; `current` still names it, but the one running is chosen
    assert cluster_env.ctl("stop", "-t", "second").returncode == 0
    after = cluster_env.ctl("status")
    assert after.returncode == 0 and "cluster first: running" in after.stdout, after.stdout + after.stderr
    text = cluster_env.ctl("list")
    assert text.returncode == 0
    lines = text.stdout.splitlines()
    assert lines[0].split() == ["NAME", "STATE", "NODES", "SUPERVISOR", "RUN", "DIRECTORY"]
    assert lines[1].split()[:4] == ["*", "first", "running", "8/8"] and lines[2].split()[:3] == ["second", "stopped", "0/12"]
    assert "* bare commands in this shell act on first (the one cluster running)" in text.stdout


def test_a_choice_that_names_nothing_is_refused_with_what_there_is(cluster_env):
    cluster_env.start("seed.toml", name="only")
    r = cluster_env.ctl("echo", env={"ECHOFINN_CLUSTER": "nope"})
    assert r.returncode == 2, r.stdout + r.stderr
    assert "ECHOFINN_CLUSTER nope: no such file, no cluster of yours by that name on this host (only)" in r.stderr
    assert "seed" in r.stderr  # the shipped names


def test_list_without_clusters(cluster_env):
    r = cluster_env.ctl("list")
    assert r.returncode == 0 and "no cluster of yours on this host" in r.stdout, r.stdout + r.stderr
    assert cluster_env.ctl_json("list")["clusters"] == []
