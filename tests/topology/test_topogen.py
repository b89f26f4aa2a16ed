"""The generator: same seed, same file; each shape is what it claims; always connected."""

import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from budget import examples

from daemon.errors import BadInput
from daemon.topogen import SHAPES, generate, words
from daemon.topology import dumps, loads


def weakly_connected(t):
    seen, stack = {t.names[0]}, [t.names[0]]
    while stack:
        for w in t.neighbours(stack.pop()):
            if w not in seen:
                seen.add(w)
                stack.append(w)
    return len(seen) == len(t)


def reach(t, start, step):
    seen, stack = {start}, [start]
    while stack:
        for w in step(stack.pop()):
            if w not in seen:
                seen.add(w)
                stack.append(w)
    return seen


def strongly_connected(t):
    first = t.names[0]
    return len(reach(t, first, t.children)) == len(reach(t, first, t.parents)) == len(t)


def depth(t):
    level = {}
    for name in t.names:  # generated trees list every parent before its children
        (parent,) = t.parents(name) or (None,)
        level[name] = 0 if parent is None else level[parent] + 1
    return max(level.values())


@settings(max_examples=examples(150))
@given(n=st.integers(1, 80), shape=st.sampled_from(SHAPES), seed=st.integers(0, 2**32))
def test_generated_shape_is_what_it_claims(n, shape, seed):
    t = generate(n, shape, seed)
    assert len(t) == n
    assert len(set(t.names)) == n
    assert weakly_connected(t)
    assert all(name not in t.parents(name) for name in t.names)
    assert all(1 <= node.cpus <= 8 for node in t.nodes)
    if n == 1:
        assert t.shape() == "tree" and t.edges() == []
        return
    if shape == "tree":
        assert t.is_tree()
        assert all(len(t.children(v)) <= 3 for v in t.names)
    elif shape == "dag":
        assert t.shape() == ("tree" if n == 2 else "dag")
        assert t.finn_initiators() == t.sources()
        # parents come earlier in the file: a topological order, hence no cycle
        assert all(t.index(p) < t.index(c) for p, c in t.edges())
    elif shape == "ring":
        assert t.shape() == "cyclic"
        assert all(len(t.parents(v)) == len(t.children(v)) == 1 for v in t.names)
        assert strongly_connected(t)
    else:
        assert t.shape() == "cyclic"
        assert strongly_connected(t)
        assert len(t.finn_initiators()) == 1 and t.sources() == ()
    assert loads(dumps(t)) == t


@pytest.mark.parametrize("shape", SHAPES)
def test_same_seed_same_file_other_seed_other_file(shape):
    a = dumps(generate(40, shape, seed=7))
    assert a == dumps(generate(40, shape, seed=7))
    assert a != dumps(generate(40, shape, seed=8))


def test_cpu_range_does_not_move_names_or_edges():
    a = generate(30, "dag", seed=3, cpus=(1, 8))
    b = generate(30, "dag", seed=3, cpus=(4, 4))
    assert a.names == b.names and a.edges() == b.edges()
    assert {n.cpus for n in b.nodes} == {4}


def test_dag_of_many_nodes_has_several_sources():
    t = generate(400, "dag", seed=1)
    assert t.shape() == "dag"
    assert len(t.sources()) > 5
    assert any(len(t.parents(v)) >= 2 for v in t.names)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_trees_stay_bushy(seed):
    n = 3000
    t = generate(n, "tree", seed)
    # a random recursive tree is about e·ln(n) ≈ 22 deep here; a path would be 2999
    assert depth(t) <= 4 * math.log2(n)


def test_max_children_one_makes_a_path():
    t = generate(10, "tree", seed=5, max_children=1)
    assert depth(t) == 9


def test_names_are_words_then_suffixed_words():
    vocabulary = set(words())
    assert len(vocabulary) == len(words()) >= 19000
    assert all(re.fullmatch(r"[a-z]{5,14}", w) for w in words())
    n = len(vocabulary) + 25
    t = generate(n, "ring", seed=4)
    plain = [name for name in t.names if name in vocabulary]
    suffixed = [name for name in t.names if name not in vocabulary]
    assert len(plain) == len(vocabulary) and len(suffixed) == 25
    assert all(re.fullmatch(r"[a-z]+-2", name) and name[:-2] in vocabulary for name in suffixed)
    assert len(set(t.names)) == n


def test_ports_past_65535_continue_on_the_next_loopback_address():
    """Each node needs two ports: 65530-65532 for three nodes, 65533-65535 for their operator ports."""
    t = generate(7, "tree", seed=1, base_port=65530)
    assert [(n.host, n.port) for n in t.nodes] == (
        [(f"127.0.0.{h}", p) for h in (1, 2) for p in range(65530, 65533)] + [("127.0.0.3", 65530)]
    )
    assert [t.operator_port(name) for name in t.names] == [65533, 65534, 65535] * 2 + [65533]
    assert loads(dumps(t)) == t


def test_cluster_name_and_base_port():
    t = generate(5, "strong", seed=1)
    assert t.cluster.name == "strong5" and t.nodes[0].port == 7100
    t = generate(5, "strong", seed=1, name="lab", base_port=9000)
    assert t.cluster.name == "lab" and [n.port for n in t.nodes] == list(range(9000, 9005))


@pytest.mark.parametrize("kwargs, fragment", [
    (dict(n=0, shape="tree"), "at least 1"),
    (dict(n=5, shape="grid"), "unknown shape 'grid'"),
    (dict(n=5, shape="tree", max_children=0), "max_children"),
    (dict(n=5, shape="tree", cpus=(4, 2)), "cpus"),
    (dict(n=5, shape="tree", cpus=(0, 2)), "cpus"),
    (dict(n=5, shape="tree", base_port=0), "base_port"),
])
def test_bad_arguments(kwargs, fragment):
    with pytest.raises(BadInput, match=re.escape(fragment)):
        generate(seed=1, **kwargs)
