"""The topology files shipped in topologies/ load and have the shapes they promise."""

import os
from pathlib import Path

import pytest

import ctl
from daemon.topology import dumps, load, loads

TOPOLOGIES = Path(os.path.abspath(ctl.__file__)).parent.parent / "topologies"


def shipped(name):
    return load(TOPOLOGIES / name)


def test_seed_is_the_original_lab_tree():
    t = shipped("seed.toml")
    assert [(n.name, n.cpus, n.parents) for n in t.nodes] == [
        ("root", 4, ()),
        ("affixed", 2, ("root",)),
        ("haywagon", 6, ("affixed",)),
        ("tubularia", 4, ("affixed",)),
        ("preindemnifying", 6, ("tubularia",)),
        ("subserviate", 2, ("tubularia",)),
        ("pical", 8, ("subserviate",)),
        ("outwhirled", 6, ("root",)),
    ]
    c = t.cluster
    assert (c.name, c.task_time, c.rebalance_interval, c.base_port) == ("seed", 1.0, 5.0, 7100)
    assert t.shape() == "tree"
    assert [n.port for n in t.nodes] == list(range(7100, 7108))


def test_demo_is_a_tree_like_dag_with_initial_tasks():
    t = shipped("demo.toml")
    assert 14 <= len(t) <= 16
    assert t.shape() == "dag" and len(t.sources()) == 1
    assert sum(len(t.parents(v)) == 2 for v in t.names) >= 2
    assert all(1 <= n.cpus <= 8 for n in t.nodes)
    assert t.cluster.base_port == 7200 and t.cluster.rebalance_interval == 0
    assert sum(n.tasks > 0 for n in t.nodes) >= 2


def test_dag_has_several_parents_and_sources():
    t = shipped("dag.toml")
    assert t.shape() == "dag" and 10 <= len(t) <= 14
    assert len(t.sources()) >= 2 and t.finn_initiators() == t.sources()
    assert sum(len(t.parents(v)) >= 2 for v in t.names) >= 2
    assert t.cluster.base_port == 7300


def test_strong_is_strongly_connected():
    t = shipped("strong.toml")
    assert t.shape() == "cyclic" and t.sources() == ()
    assert len(t.finn_initiators()) == 1  # one strongly connected component
    assert 6 <= len(t) <= 10 and t.cluster.base_port == 7400


def test_binary31_is_a_balanced_binary_tree():
    t = shipped("binary31.toml")
    assert len(t) == 31 and t.is_tree() and t.cluster.base_port == 7500
    for i, name in enumerate(t.names):
        assert t.parents(name) == (() if i == 0 else (t.names[(i - 1) // 2],))


@pytest.mark.parametrize("name", sorted(p.name for p in TOPOLOGIES.glob("*.toml")))
def test_every_shipped_file_round_trips_and_opens_with_a_comment(name):
    t = shipped(name)
    assert loads(dumps(t)) == t
    assert (TOPOLOGIES / name).read_text().startswith("# ")
    ports = [(n.host, n.port) for n in t.nodes]
    assert len(set(ports)) == len(ports)


def test_shipped_port_ranges_do_not_overlap():
    # so that several shipped clusters can run side by side on one machine
    ranges = sorted((min(n.port for n in t.nodes), max(n.port for n in t.nodes), p.name)
                    for p in TOPOLOGIES.glob("*.toml") for t in [load(p)])
    for (lo1, hi1, a), (lo2, hi2, b) in zip(ranges, ranges[1:]):
        assert hi1 < lo2, f"{a} and {b} share ports"
