"""Graph queries of a loaded topology, checked against brute force on small graphs."""

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from budget import examples

from daemon.topology import Cluster, Node, Topology, TopologyError, dumps, from_dict, load, loads


def graph(edges, names=None, **cluster):
    """A topology from (parent, child) pairs; nodes in the order they first appear,
    unless ``names`` gives the order."""
    order = list(names or [])
    for p, c in edges:
        for x in (p, c):
            if x not in order:
                order.append(x)
    parents = {n: [p for p, c in edges if c == n] for n in order}
    return from_dict({"cluster": cluster, "node": [{"name": n, "cpus": 1, "parents": parents[n]} for n in order]})


# -- brute force ------------------------------------------------------------------------


def reachable(t, start):
    seen, stack = {start}, [start]
    while stack:
        for w in t.children(stack.pop()):
            if w not in seen:
                seen.add(w)
                stack.append(w)
    return seen


def brute_initiators(t):
    reach = {v: reachable(t, v) for v in t.names}
    # v lies in a source component iff everything that reaches v is reached by v
    in_source = [v for v in t.names if all(v not in reach[u] or u in reach[v] for u in t.names)]
    chosen, out = set(), []
    for v in in_source:  # file order: the first of each component
        component = frozenset(u for u in t.names if u in reach[v] and v in reach[u])
        if component not in chosen:
            chosen.add(component)
            out.append(v)
    return tuple(out)


def brute_shape(t):
    if any(u in reachable(t, v) for u, v in t.edges()):  # edge u->v with v ~> u closes a cycle
        return "cyclic"
    one_parent = all(len(t.parents(v)) <= 1 for v in t.names)
    return "tree" if one_parent and len(t.sources()) == 1 else "dag"


@st.composite
def connected_digraphs(draw, max_nodes=12):
    n = draw(st.integers(1, max_nodes))
    names = [f"v{i}" for i in range(n)]
    edges = set()
    for i in range(1, n):  # a random spanning tree of the undirected view, random directions
        j = draw(st.integers(0, i - 1))
        edges.add((names[j], names[i]) if draw(st.booleans()) else (names[i], names[j]))
    extra = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=2 * n))
    edges |= {(names[a], names[b]) for a, b in extra if a != b}
    order = draw(st.permutations(names))
    return graph(sorted(edges), names=order)


# -- queries ----------------------------------------------------------------------------

SEED = """
[cluster]
name = "seed"
[[node]]
name = "root"
cpus = 4
[[node]]
name = "affixed"
cpus = 2
parents = ["root"]
[[node]]
name = "haywagon"
cpus = 6
parents = ["affixed"]
[[node]]
name = "tubularia"
cpus = 4
parents = ["affixed"]
host = "10.0.0.2"
port = 9000
tasks = 3
"""


def test_defaults_and_ports_in_file_order():
    t = loads(SEED)
    assert t.cluster == Cluster("seed", 1.0, 5.0, "127.0.0.1", 7100)
    assert [n.port for n in t.nodes] == [7100, 7101, 7102, 9000]
    assert t.node("tubularia") == Node("tubularia", 4, ("affixed",), "10.0.0.2", 9000, 3)
    assert t.node("haywagon").tasks == 0
    assert t.endpoint("root") == "tcp://127.0.0.1:7100"
    assert t.endpoint("tubularia") == "tcp://10.0.0.2:9000"
    assert t.path is None
    assert t.names == ("root", "affixed", "haywagon", "tubularia")


def test_explicit_port_does_not_shift_later_nodes():
    t = loads(SEED.replace('parents = ["root"]', 'parents = ["root"]\nport = 8000'))
    assert [n.port for n in t.nodes] == [7100, 8000, 7102, 9000]


def test_cluster_name_defaults_to_file_stem(tmp_path):
    path = tmp_path / "lab.toml"
    path.write_text('[[node]]\nname = "solo"\ncpus = 1\n')
    t = load(path)
    assert t.cluster.name == "lab"
    assert t.path == str(path.resolve())
    assert loads('[[node]]\nname = "solo"\ncpus = 1\n').cluster.name == "cluster"


def test_ipv6_endpoint_is_bracketed():
    t = loads('[cluster]\nhost = "::1"\n[[node]]\nname = "solo"\ncpus = 1\n')
    assert t.endpoint("solo") == "tcp://[::1]:7100"


def test_parents_children_neighbours_are_in_file_order():
    # d lists its parents out of file order; a <-> b is one undirected link
    t = from_dict({"node": [
        {"name": "a", "cpus": 1, "parents": ["b"]},
        {"name": "b", "cpus": 1, "parents": ["a"]},
        {"name": "c", "cpus": 1, "parents": ["a"]},
        {"name": "d", "cpus": 1, "parents": ["c", "a", "b"]},
    ]})
    assert t.node("d").parents == ("c", "a", "b")  # as written
    assert t.parents("d") == ("a", "b", "c")       # file order
    assert t.children("a") == ("b", "c", "d")
    assert t.neighbours("a") == ("b", "c", "d")
    assert t.neighbours("b") == ("a", "d")
    assert t.neighbours("d") == ("a", "b", "c")
    assert t.edges() == [("b", "a"), ("a", "b"), ("a", "c"), ("a", "d"), ("b", "d"), ("c", "d")]
    assert t.sources() == ()
    assert t.shape() == "cyclic"
    assert t.finn_initiators() == ("a",)


def test_finn_initiators_of_a_mixed_graph():
    # A -> B, C <-> D, D -> B: {A} and {C, D} are source components; B is entered.
    t = graph([("A", "B"), ("C", "D"), ("D", "C"), ("D", "B")])
    assert t.finn_initiators() == ("A", "C")
    assert t.sources() == ("A",)
    assert t.shape() == "cyclic"


def test_finn_initiators_of_a_dag_are_its_sources():
    t = graph([("s1", "x"), ("s2", "x"), ("x", "y"), ("s3", "y")])
    assert t.names == ("s1", "x", "s2", "y", "s3")
    assert t.sources() == ("s1", "s2", "s3")
    assert t.finn_initiators() == t.sources()
    assert t.shape() == "dag"
    assert not t.is_tree()


def test_finn_initiator_of_a_strong_graph_is_its_first_node():
    t = graph([("b", "c"), ("c", "a"), ("a", "b"), ("a", "c")], names=["b", "c", "a"])
    assert t.finn_initiators() == ("b",)


def test_single_node():
    t = loads('[[node]]\nname = "solo"\ncpus = 1\n')
    assert t.shape() == "tree" and t.is_tree()
    assert t.sources() == t.finn_initiators() == ("solo",)
    assert t.neighbours("solo") == () and t.edges() == []


def test_membership_length_and_index():
    t = loads(SEED)
    assert "haywagon" in t and "pical" not in t and 3 not in t
    assert len(t) == 4
    assert t.index("haywagon") == 2


def test_topology_is_immutable():
    t = loads(SEED)
    with pytest.raises(AttributeError):
        t.cluster = None
    with pytest.raises(AttributeError):
        del t.nodes
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.nodes[0].cpus = 99
    assert isinstance(t.nodes, tuple) and isinstance(t.parents("affixed"), tuple)


def test_equality_ignores_the_path():
    a = loads(SEED, path="<a>")
    b = loads(SEED, path="<b>")
    assert a == b and hash(a) == hash(b)
    assert a != loads(SEED.replace("cpus = 6", "cpus = 5"))


@settings(max_examples=examples(200))
@given(connected_digraphs())
def test_finn_initiators_and_shape_match_brute_force(t):
    assert t.finn_initiators() == brute_initiators(t)
    assert t.shape() == brute_shape(t)
    assert t.is_tree() == (t.shape() == "tree")
    # in a DAG the source components are exactly the sources
    if t.shape() != "cyclic":
        assert t.finn_initiators() == t.sources()


@settings(max_examples=examples(200))
@given(connected_digraphs())
def test_neighbours_are_the_undirected_view(t):
    for v in t.names:
        expected = {u for u, w in t.edges() if w == v} | {w for u, w in t.edges() if u == v}
        got = t.neighbours(v)
        assert set(got) == expected and len(got) == len(expected)
        assert list(got) == sorted(got, key=t.index)
        assert set(t.parents(v)) == set(t.node(v).parents)
    assert len(t.edges()) == len(set(t.edges())) == t.edge_count


# -- round trip -------------------------------------------------------------------------

hosts = st.sampled_from(["127.0.0.1", "127.0.0.2", "localhost", "::1"])


@settings(max_examples=examples(100))
@given(
    connected_digraphs(max_nodes=8),
    st.data(),
)
def test_round_trip_through_toml(t, data):
    cluster = Cluster(
        name=data.draw(st.text("abcxyz-_", min_size=1, max_size=8)),
        task_time=data.draw(st.floats(0.001, 1e6)),
        rebalance_interval=data.draw(st.sampled_from([0.0, 0.5, 5.0, 1e-9])),
        host=data.draw(hosts),
        base_port=data.draw(st.integers(1, 60000)),
        restart=data.draw(st.sampled_from(["on-failure", "never"])),
        restart_backoff_max=data.draw(st.sampled_from([5.0, 0.25, 30.0])),
        restart_max_crashes=data.draw(st.integers(1, 20)),
        restart_window=data.draw(st.sampled_from([60.0, 1.5, 3600.0])),
        security=data.draw(st.sampled_from(["curve", "none"])),
        nodes_per_process=data.draw(st.sampled_from([1, 2, 1024])),
        record=data.draw(st.booleans()),
        log_level=data.draw(st.sampled_from(["debug", "info", "warning", "error"])),
        log_max_bytes=data.draw(st.sampled_from([4096, 4 * 1024 * 1024, 1 << 30])),
        log_backups=data.draw(st.integers(1, 99)),
    )
    nodes = []
    for i, n in enumerate(t.nodes):
        explicit = data.draw(st.booleans())
        nodes.append(dataclasses.replace(
            n,
            cpus=data.draw(st.integers(1, 64)),
            host=data.draw(hosts) if explicit else cluster.host,
            port=40000 + i if explicit else cluster.base_port + i,
            tasks=data.draw(st.integers(0, 1000)),
        ))
    try:
        original = Topology(cluster, nodes)
    except TopologyError as exc:  # an explicit port may clash with a default one
        assert "is used by both" in str(exc)
        return
    text = dumps(original)
    again = loads(text)
    assert again == original
    assert dumps(again) == text
    assert again.edges() == original.edges()


def test_dumps_leaves_defaults_out_and_adds_a_comment():
    t = loads(SEED)
    text = dumps(t, comment="first line\nsecond line")
    assert text.startswith("# first line\n# second line\n\n[cluster]\n")
    lines = text.splitlines()
    assert [line for line in lines if line.startswith("port =")] == ["port = 9000"]
    assert [line for line in lines if line.startswith("host =")] == ['host = "127.0.0.1"', 'host = "10.0.0.2"']
    assert [line for line in lines if line.startswith("tasks =")] == ["tasks = 3"]
    assert loads(text) == t
