"""Topology files: load, validate and write the cluster's directed graph of nodes.

Theory of operation:

A topology is a TOML file (read with the standard library's ``tomllib``, written with
``tomli_w``) with one ``[cluster]`` table and one ``[[node]]`` table per node daemon::

    [cluster]
    name = "demo"             # default: the file's stem
    task_time = 1.0           # default cost of one task, seconds (> 0)
    rebalance_interval = 5.0  # seconds between balancing rounds; 0 = off (>= 0)
    host = "127.0.0.1"        # default host of every node
    base_port = 7100          # a node without a port gets base_port + its index in the file
    operator_port_offset = 1000  # a node without an operator_port gets its port + this
    restart = "on-failure"    # restart a node that exits on its own; "never": leave it dead
    restart_backoff_max = 5.0 # restart delays double from 0.1 s up to this (> 0)
    restart_max_crashes = 5   # this many exits within restart_window: FATAL, no more restarts
    restart_window = 60.0     # seconds (> 0)
    security = "curve"        # or "none": no authentication (daemon/security.py)
    nodes_per_process = 1     # >1: each daemon process serves that many nodes (daemon/node.py NodeHost)
    record = false            # true: every node keeps its latest steps (daemon/trace/recorder.py)
                              # and writes a recording of them for replay (daemon/recording.py)
    log_level = "info"        # or "debug" (also each wave a node joined), "warning", "error" (daemon/logs.py)
    log_max_bytes = 4194304   # a log (a node's, the supervisor's) is rotated at this size (4096..2**30)
    log_backups = 2           # ... keeping this many rotated files, NAME.log.1 the newest (1..99)

    [[node]]
    name = "root"
    cpus = 4                  # required, a positive integer
    parents = []              # edges parent -> child; several parents = DAG; cycles allowed
    # optional: port (1..65535), operator_port (1..65535), host, tasks (queued at start, >= 0)

Each node listens on two ports (daemon/node.py): ``port``, its inbox, where only the
cluster's nodes are let in, and ``operator_port``, where only operators are (``ctl``,
the supervisor's balancer). Every (host, port) of either kind is one node's, once.

Loading happens in two layers, each reporting the first problem it finds as a
:class:`TopologyError` whose message starts with the file path and names the node and
field:

1. ``from_dict`` checks keys and types field by field (unknown keys get a close-match
   suggestion from difflib) and fills in defaults.
2. The :class:`Topology` constructor checks the graph: unique names, known parents, no
   self-loops or repeated parents, unique host:port pairs over both kinds of port
   (each in 1..65535), weak connectivity. It then
   precomputes adjacency lists, so that the queries hot paths make (``parents``,
   ``children``, ``neighbours``) are tuple look-ups. Everything is O(N + E): the
   simulator builds 100,000-node topologies.

Two views of one graph serve the two waves:

- Echo (Tel, *Introduction to Distributed Algorithms*, 6.2.3) runs on the undirected
  view: ``neighbours(p)`` = parents ∪ children. It needs the view connected, hence the
  weak-connectivity check.
- Finn (Finn 1979; Tel 6.2.6) runs on the directed graph: ``parents`` are the
  in-neighbours, ``children`` the out-neighbours. A node hears only from in-neighbours,
  so one node of every *source component* — a strongly connected component that no edge
  enters from outside — must initiate, or its descendants wait forever.
  ``finn_initiators`` names them, using Tarjan's SCC algorithm (Tarjan 1972), O(N + E).

Every order here is file order (or the order of a node's ``parents`` list), never the
iteration order of a set of strings, which changes from run to run.
"""

from __future__ import annotations

import difflib
import math
import os
import stat
import tomllib
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any, Iterable

from daemon.errors import BadInput

DEFAULT_TASK_TIME = 1.0
DEFAULT_REBALANCE_INTERVAL = 5.0
DEFAULT_HOST = "127.0.0.1"
DEFAULT_BASE_PORT = 7100
DEFAULT_OPERATOR_PORT_OFFSET = 1000
RESTART_POLICIES = ("on-failure", "never")
DEFAULT_RESTART = "on-failure"
DEFAULT_RESTART_BACKOFF_MAX = 5.0
DEFAULT_RESTART_MAX_CRASHES = 5
DEFAULT_RESTART_WINDOW = 60.0
MAX_NODES_PER_PROCESS = 1024
LOG_LEVELS = ("debug", "info", "warning", "error")  # daemon/logs.py
DEFAULT_LOG_LEVEL = "info"
DEFAULT_LOG_MAX_BYTES = 4 * 1024 * 1024  # a few MB of a node's story, times 1 + log_backups files
MIN_LOG_MAX_BYTES, MAX_LOG_MAX_BYTES = 4096, 1 << 30
DEFAULT_LOG_BACKUPS = 2
MAX_LOG_BACKUPS = 99

TOP_LEVEL_KEYS = ("cluster", "node")
CLUSTER_KEYS = ("name", "task_time", "rebalance_interval", "host", "base_port", "operator_port_offset",
                "restart", "restart_backoff_max", "restart_max_crashes", "restart_window", "security", "nodes_per_process", "record",
                "log_level", "log_max_bytes", "log_backups")
SECURITY_MODES = ("curve", "none")  # daemon/security.py
NODE_KEYS = ("name", "cpus", "parents", "host", "port", "operator_port", "tasks")

# A node name is a ZeroMQ routing id (at most 255 bytes), a word people type on the
# command line and, like the cluster's name, part of a path in the run directory
# (daemon/rundir.py): short, from a safe alphabet, never "." or "..".
MAX_NAME_LENGTH = 64
NAME_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")
# A topology file is read whole; anything bigger is not one (and a FIFO or a device is
# refused before a byte is read).
MAX_FILE_SIZE = 64 * 1024 * 1024
# How much of each disconnected piece an error message shows.
PIECES_SHOWN = 4
NAMES_SHOWN_PER_PIECE = 3


class TopologyError(BadInput):
    """A topology file (or dict) is wrong. The message starts with the file path."""


class UnknownNode(TopologyError, KeyError):
    """A node name that the topology does not have. Also a ``KeyError``, so code that
    treats the topology as a mapping can catch it as one."""

    __str__ = Exception.__str__  # KeyError would quote the whole message


@dataclass(frozen=True)
class Node:
    name: str
    cpus: int
    parents: tuple[str, ...]  # as listed in the file
    host: str
    port: int  # the inbox: nodes only
    tasks: int = 0
    operator_port: int | None = None  # operators only; None: port + [cluster] operator_port_offset


@dataclass(frozen=True)
class Cluster:
    name: str
    task_time: float = DEFAULT_TASK_TIME
    rebalance_interval: float = DEFAULT_REBALANCE_INTERVAL
    host: str = DEFAULT_HOST
    base_port: int = DEFAULT_BASE_PORT
    # the supervisor's restart policy (daemon/cluster/process.py)
    restart: str = DEFAULT_RESTART
    restart_backoff_max: float = DEFAULT_RESTART_BACKOFF_MAX
    restart_max_crashes: int = DEFAULT_RESTART_MAX_CRASHES
    restart_window: float = DEFAULT_RESTART_WINDOW
    security: str = "curve"
    # how many nodes one daemon process serves (daemon/node.py NodeHost; the supervisor
    # groups its local nodes in file order): 1, a process per node, is the default
    nodes_per_process: int = 1
    # every node records its steps in its flight recorder (daemon/trace/recorder.py) and
    # writes a recording of its core's inputs to the run directory for ``ctl sim replay``
    # (daemon/recording.py): off unless asked for, since both cost (BENCHMARKS.md, "The
    # flight recorder", "The recording for replay")
    record: bool = False
    # a node's operator port is its port + this, unless the node gives its own
    operator_port_offset: int = DEFAULT_OPERATOR_PORT_OFFSET
    # what the nodes and the supervisor log, and the size at which each log is rotated,
    # keeping log_backups older files (daemon/logs.py)
    log_level: str = DEFAULT_LOG_LEVEL
    log_max_bytes: int = DEFAULT_LOG_MAX_BYTES
    log_backups: int = DEFAULT_LOG_BACKUPS


class Topology:
    """The validated graph of one cluster. Immutable; compare with ``==`` (cluster and
    nodes, not the path it came from).

    Build one with :func:`load`, :func:`loads` or :func:`from_dict`; the constructor
    itself checks the graph but trusts the field values of ``Node`` and ``Cluster``.
    Raises :class:`TopologyError`.
    """

    # Set once by __init__ (through object.__setattr__: the class refuses assignment).
    cluster: Cluster
    nodes: tuple[Node, ...]
    path: str | None
    source: str
    names: tuple[str, ...]

    def __init__(self, cluster: Cluster, nodes: Iterable[Node], path: str | None = None, *, source: str | None = None):
        nodes = tuple(nodes)
        src = source or path or "<topology>"
        _set = object.__setattr__
        _set(self, "cluster", cluster)
        _set(self, "nodes", nodes)
        _set(self, "path", path)
        _set(self, "source", src)  # how error messages name the origin
        _set(self, "names", tuple(n.name for n in nodes))
        if not nodes:
            raise TopologyError(f"{src}: no nodes; add at least one [[node]] table with a name and cpus")

        index: dict[str, int] = {}
        for i, node in enumerate(nodes):
            if node.name in index:
                first = index[node.name]
                raise TopologyError(
                    f"{src}: node '{node.name}' is defined twice ([[node]] #{first + 1} and #{i + 1}); "
                    "node names must be unique"
                )
            index[node.name] = i
        _set(self, "_index", index)

        # Adjacency as index lists, filled in file order, so every query below comes out
        # in file order without sorting strings.
        parent_ids: list[list[int]] = [[] for _ in nodes]
        child_ids: list[list[int]] = [[] for _ in nodes]
        for i, node in enumerate(nodes):
            seen: set[str] = set()
            for parent in node.parents:
                if parent == node.name:
                    raise TopologyError(
                        f"{src}: node '{node.name}': field 'parents' lists the node itself; "
                        "self-loops are not allowed"
                    )
                if parent in seen:
                    raise TopologyError(
                        f"{src}: node '{node.name}': field 'parents' lists '{parent}' twice"
                    )
                seen.add(parent)
                j = index.get(parent)
                if j is None:
                    raise TopologyError(
                        f"{src}: node '{node.name}': parent '{parent}' is not a node in this topology"
                        + _did_you_mean(parent, self.names)
                    )
                parent_ids[i].append(j)
                child_ids[j].append(i)  # i rises, so each child list is in file order
        for ids in parent_ids:
            ids.sort()  # file order of the parents, whatever order the file listed them in

        endpoints: dict[tuple[str, int], tuple[str, str]] = {}  # (host, port) -> (node, field)
        offset = cluster.operator_port_offset
        for node in nodes:
            operator_port = node.port + offset if node.operator_port is None else node.operator_port
            if not 1 <= operator_port <= 65535:
                raise TopologyError(
                    f"{src}: node '{node.name}': no operator_port given, and port {node.port} + [cluster] "
                    f"operator_port_offset {offset} = {operator_port} is not a port (1..65535); "
                    "change operator_port_offset or give the node an operator_port"
                )
            for field, port in (("port", node.port), ("operator_port", operator_port)):
                key = (node.host, port)
                other = endpoints.get(key)
                if other is not None:
                    both = (f"node '{other[0]}' and node '{node.name}'" if field == other[1] == "port" else
                            f"node '{other[0]}' (its {other[1]}) and node '{node.name}' (its {field}; an operator_port "
                            "not given is the node's port + [cluster] operator_port_offset)")
                    raise TopologyError(f"{src}: port {port} on host {node.host} is used by both {both}; "
                                        "give one of them another port")
                endpoints[key] = (node.name, field)

        names = self.names
        name_of = names.__getitem__
        _set(self, "_parents", tuple([tuple(map(name_of, ids)) for ids in parent_ids]))
        _set(self, "_children", tuple([tuple(map(name_of, ids)) for ids in child_ids]))
        _set(self, "_neighbours", tuple([
            tuple(map(name_of, _union_sorted(ps, cs))) for ps, cs in zip(parent_ids, child_ids)
        ]))
        _set(self, "_parent_ids", parent_ids)
        _set(self, "_child_ids", child_ids)

        pieces = _weak_components(parent_ids, child_ids)
        if len(pieces) > 1:
            shown = []
            for piece in pieces[:PIECES_SHOWN]:
                first = ", ".join(names[j] for j in piece[:NAMES_SHOWN_PER_PIECE])
                more = f", ... ({len(piece)} nodes)" if len(piece) > NAMES_SHOWN_PER_PIECE else ""
                shown.append(f"{{{first}{more}}}")
            if len(pieces) > PIECES_SHOWN:
                shown.append(f"and {len(pieces) - PIECES_SHOWN} more")
            raise TopologyError(
                f"{src}: the graph is not connected: it falls into {len(pieces)} separate pieces "
                f"{' '.join(shown)}; echo waves need every node reachable, so give a node of each "
                "piece a parent in another"
            )

    # Immutability: attributes are set once, in __init__.
    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"Topology is immutable (tried to set {name!r})")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Topology is immutable (tried to delete {name!r})")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Topology):
            return NotImplemented
        return self.cluster == other.cluster and self.nodes == other.nodes

    def __hash__(self) -> int:
        return hash((self.cluster, self.nodes))

    def __repr__(self) -> str:
        return (
            f"Topology(name={self.cluster.name!r}, nodes={len(self.nodes)}, "
            f"edges={self.edge_count}, shape={self.shape()!r}, path={self.path!r})"
        )

    def __len__(self) -> int:
        return len(self.nodes)

    def __contains__(self, name: object) -> bool:
        return name in self._index

    # -- look-ups ----------------------------------------------------------------------

    def index(self, name: str) -> int:
        """The node's position in the file (0-based): a stable integer id."""
        try:
            return self._index[name]
        except (KeyError, TypeError):
            raise UnknownNode(
                f"{self.source}: no node named {name!r}" + _did_you_mean(str(name), self.names)
            ) from None

    def node(self, name: str) -> Node:
        return self.nodes[self.index(name)]

    def parents(self, name: str) -> tuple[str, ...]:
        """In-neighbours, in file order."""
        return self._parents[self.index(name)]

    def children(self, name: str) -> tuple[str, ...]:
        """Out-neighbours, in file order."""
        return self._children[self.index(name)]

    def neighbours(self, name: str) -> tuple[str, ...]:
        """The undirected view (echo's): parents ∪ children, each once, in file order."""
        return self._neighbours[self.index(name)]

    def endpoint(self, name: str) -> str:
        """The node's inbox, where the cluster's nodes connect."""
        node = self.node(name)
        return _endpoint(node.host, node.port)

    def operator_port(self, name: str) -> int:
        node = self.node(name)
        return node.port + self.cluster.operator_port_offset if node.operator_port is None else node.operator_port

    def operator_endpoint(self, name: str) -> str:
        """The node's operator port, where operators connect (``ctl``, the balancer)."""
        return _endpoint(self.node(name).host, self.operator_port(name))

    @cached_property
    def edge_count(self) -> int:
        return sum(len(p) for p in self._parents)

    def edges(self) -> list[tuple[str, str]]:
        """Every edge (parent, child): children in file order, each one's parents in file order."""
        return [(p, child) for child, parents in zip(self.names, self._parents) for p in parents]

    def sources(self) -> tuple[str, ...]:
        """Nodes without parents, in file order."""
        return self._sources

    @cached_property
    def _sources(self) -> tuple[str, ...]:
        return tuple(name for name, parents in zip(self.names, self._parents) if not parents)

    # -- shape -------------------------------------------------------------------------

    @cached_property
    def _components(self) -> list[int]:
        """Strongly connected component number of every node (Tarjan 1972)."""
        return _strong_components(self._child_ids)

    def finn_initiators(self) -> tuple[str, ...]:
        """One node — the first in file order — of every source component: a strongly
        connected component that no edge enters from another component. These are the
        nodes that must initiate a Finn wave (Tel 6.2.6) for every node to decide. For a
        DAG they are the sources; for a strongly connected graph, the first node."""
        return self._finn_initiators

    @cached_property
    def _finn_initiators(self) -> tuple[str, ...]:
        comp = self._components
        entered = [False] * (max(comp) + 1)
        for child, parents in enumerate(self._parent_ids):
            for parent in parents:
                if comp[parent] != comp[child]:
                    entered[comp[child]] = True
        chosen: set[int] = set()
        initiators = []
        for i, c in enumerate(comp):  # file order, so the first node of each component wins
            if not entered[c] and c not in chosen:
                chosen.add(c)
                initiators.append(self.names[i])
        return tuple(initiators)

    def is_tree(self) -> bool:
        """An out-tree: one source, every other node exactly one parent. (The graph is
        connected, so N − 1 edges with one parent each cannot close a cycle.)"""
        return self.shape() == "tree"

    def is_acyclic(self) -> bool:
        # Self-loops are rejected, so a cycle means a strong component of two or more.
        return max(self._components) + 1 == len(self.nodes)

    def shape(self) -> str:
        """"tree", "dag" or "cyclic"."""
        return self._shape

    @cached_property
    def _shape(self) -> str:
        if len(self._sources) == 1 and all(len(p) <= 1 for p in self._parents):
            return "tree"
        return "dag" if self.is_acyclic() else "cyclic"


# -- graph algorithms on index lists ----------------------------------------------------


def _union_sorted(a: list[int], b: list[int]) -> list[int]:
    """Sorted union of two index lists (an edge both ways is one undirected link)."""
    if not b:
        return a
    if not a:
        return b
    return sorted(set(a).union(b))  # integers: the order is the sort's, not the set's


def _weak_components(parent_ids: list[list[int]], child_ids: list[list[int]]) -> list[list[int]]:
    """Pieces of the undirected view, each sorted, ordered by their first node."""
    n = len(parent_ids)
    piece_of = [-1] * n
    pieces: list[list[int]] = []
    for start in range(n):
        if piece_of[start] != -1:
            continue
        number = len(pieces)
        piece_of[start] = number
        stack = [start]
        members = []
        while stack:
            v = stack.pop()
            members.append(v)
            for w in parent_ids[v]:
                if piece_of[w] == -1:
                    piece_of[w] = number
                    stack.append(w)
            for w in child_ids[v]:
                if piece_of[w] == -1:
                    piece_of[w] = number
                    stack.append(w)
        members.sort()
        pieces.append(members)
    return pieces


def _strong_components(child_ids: list[list[int]]) -> list[int]:
    """Tarjan's algorithm, iterative (a 100,000-node path would overflow recursion).
    Returns the component number of each node."""
    n = len(child_ids)
    order = [-1] * n  # discovery number
    low = [0] * n
    on_stack = [False] * n
    comp = [-1] * n
    stack: list[int] = []
    counter = 0
    components = 0
    for root in range(n):
        if order[root] != -1:
            continue
        work = [(root, 0)]
        order[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack[root] = True
        while work:
            v, k = work[-1]
            children = child_ids[v]
            if k < len(children):
                work[-1] = (v, k + 1)
                w = children[k]
                if order[w] == -1:
                    order[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack[w] = True
                    work.append((w, 0))
                elif on_stack[w] and order[w] < low[v]:
                    low[v] = order[w]
                continue
            work.pop()
            if work:
                u = work[-1][0]
                if low[v] < low[u]:
                    low[u] = low[v]
            if low[v] == order[v]:
                while True:
                    w = stack.pop()
                    on_stack[w] = False
                    comp[w] = components
                    if w == v:
                        break
                components += 1
    return comp


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    choices = list(choices)
    close = difflib.get_close_matches(word, choices, n=1)
    if not close and word:
        # A truncated name ("hay" for "haywagon") is too short for difflib's ratio.
        close = [c for c in choices if c.startswith(word)][:1]
    return f" (did you mean '{close[0]}'?)" if close else ""


# -- reading ------------------------------------------------------------------------------


def load(path: str | os.PathLike) -> Topology:
    """Read and validate a topology file: a regular file of at most :data:`MAX_FILE_SIZE`
    bytes (a FIFO or a device is refused before anything is read). Raises
    :class:`TopologyError`."""
    shown = os.fspath(path)
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer
        fd = os.open(shown, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise TopologyError(f"{shown}: no such file") from None
    except PermissionError:
        raise TopologyError(f"{shown}: permission denied; cannot read the topology file") from None
    except OSError as exc:
        raise TopologyError(f"{shown}: cannot read: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise TopologyError(f"{shown}: is a directory, not a topology file")
        if not stat.S_ISREG(st.st_mode):
            raise TopologyError(f"{shown}: is {_file_kind(st.st_mode)}, not a regular file; a topology file must be one")
        if st.st_size > MAX_FILE_SIZE:
            raise TopologyError(f"{shown}: {st.st_size} bytes; a topology file may have at most {MAX_FILE_SIZE} "
                                f"({MAX_FILE_SIZE >> 20} MiB)")
        with os.fdopen(fd, "rb", closefd=False) as f:
            raw = f.read(MAX_FILE_SIZE + 1)  # the file may have grown since fstat
    except OSError as exc:
        raise TopologyError(f"{shown}: cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if len(raw) > MAX_FILE_SIZE:
        raise TopologyError(f"{shown}: more than {MAX_FILE_SIZE} bytes; a topology file may have at most "
                            f"{MAX_FILE_SIZE >> 20} MiB")
    try:
        text = raw.decode("utf-8-sig")  # tolerate the BOM some editors write
    except UnicodeDecodeError as exc:
        raise TopologyError(
            f"{shown}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
            "TOML files must be UTF-8"
        ) from None
    return _parse(text, shown, os.path.abspath(shown))


def _file_kind(mode: int) -> str:
    for test, kind in ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return kind
    return "not a regular file"


def loads(text: str, path: str = "<string>") -> Topology:
    """Parse and validate TOML text; ``path`` names it in error messages (and, unless it
    is a placeholder in angle brackets, becomes ``Topology.path``)."""
    return _parse(text, path, _real_path(path))


def from_dict(data: dict, path: str = "<dict>") -> Topology:
    """Validate a dict shaped like the TOML file (``{"cluster": {...}, "node": [...]}``)."""
    return _build(data, path, _real_path(path))


def _real_path(path: str) -> str | None:
    return None if path.startswith("<") and path.endswith(">") else os.path.abspath(path)


def _parse(text: str, shown: str, real: str | None) -> Topology:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TopologyError(f"{shown}: invalid TOML: {exc}") from None
    return _build(data, shown, real)


def _default_cluster_name(shown: str) -> str:
    if shown.startswith("<"):
        return "cluster"
    stem = os.path.splitext(os.path.basename(shown))[0]
    return stem or "cluster"


def _build(data: Any, src: str, real: str | None) -> Topology:
    if not isinstance(data, dict):
        raise TopologyError(f"{src}: expected a table with [cluster] and [[node]], got {_kind(data)}")
    _check_keys(data, TOP_LEVEL_KEYS, src, "at the top level")

    raw_cluster = data.get("cluster", {})
    if not isinstance(raw_cluster, dict):
        raise TopologyError(f"{src}: 'cluster' must be a table ([cluster]), got {_kind(raw_cluster)}")
    cluster = _cluster(raw_cluster, src)

    raw_nodes = data.get("node")
    if raw_nodes is None:
        raise TopologyError(f"{src}: no nodes; add at least one [[node]] table with a name and cpus")
    if not isinstance(raw_nodes, list):
        raise TopologyError(
            f"{src}: 'node' must be an array of tables, written [[node]] (two brackets), got {_kind(raw_nodes)}"
        )
    nodes = [_node(raw, i, cluster, src) for i, raw in enumerate(raw_nodes)]
    return Topology(cluster, nodes, real, source=src)


def _cluster(raw: dict, src: str) -> Cluster:
    _check_keys(raw, CLUSTER_KEYS, src, "in [cluster]")
    where = f"{src}: [cluster]"
    name = raw.get("name", _default_cluster_name(src))
    _need_name(name, where, "name")
    task_time = _need_number(raw.get("task_time", DEFAULT_TASK_TIME), where, "task_time", positive=True)
    interval = _need_number(
        raw.get("rebalance_interval", DEFAULT_REBALANCE_INTERVAL), where, "rebalance_interval", positive=False
    )
    host = _need_host(raw.get("host", DEFAULT_HOST), where, "host")
    base_port = _need_port(raw.get("base_port", DEFAULT_BASE_PORT), where, "base_port")
    offset = raw.get("operator_port_offset", DEFAULT_OPERATOR_PORT_OFFSET)
    if not _is_int(offset) or not -65534 <= offset <= 65534 or offset == 0:
        raise TopologyError(f"{where}: field 'operator_port_offset' must be a non-zero integer from -65534 to 65534 "
                            f"(a node's operator port is its port + this), got {_show(offset)}")
    restart = raw.get("restart", DEFAULT_RESTART)
    if restart not in RESTART_POLICIES:
        raise TopologyError(f"{where}: field 'restart' must be " + " or ".join(f'"{p}"' for p in RESTART_POLICIES)
                            + f", got {_show(restart)}")
    backoff_max = _need_number(raw.get("restart_backoff_max", DEFAULT_RESTART_BACKOFF_MAX), where,
                               "restart_backoff_max", positive=True)
    max_crashes = raw.get("restart_max_crashes", DEFAULT_RESTART_MAX_CRASHES)
    if not _is_int(max_crashes) or max_crashes < 1:
        raise TopologyError(f"{where}: field 'restart_max_crashes' must be a positive integer, got {_show(max_crashes)}")
    window = _need_number(raw.get("restart_window", DEFAULT_RESTART_WINDOW), where, "restart_window", positive=True)
    security = raw.get("security", SECURITY_MODES[0])
    if security not in SECURITY_MODES:
        raise TopologyError(f"{where}: field 'security' must be \"curve\" (the default) or \"none\", got {_show(security)}")
    per_process = raw.get("nodes_per_process", 1)
    if not _is_int(per_process) or not 1 <= per_process <= MAX_NODES_PER_PROCESS:
        raise TopologyError(f"{where}: field 'nodes_per_process' must be an integer from 1 to {MAX_NODES_PER_PROCESS}, "
                            f"got {_show(per_process)}")
    record = raw.get("record", False)
    if type(record) is not bool:
        raise TopologyError(f"{where}: field 'record' must be true or false (the default), got {_show(record)}")
    log_level = raw.get("log_level", DEFAULT_LOG_LEVEL)
    if log_level not in LOG_LEVELS:
        raise TopologyError(f"{where}: field 'log_level' must be " + ", ".join(f'"{v}"' for v in LOG_LEVELS)
                            + f" (default \"{DEFAULT_LOG_LEVEL}\"), got {_show(log_level)}")
    max_bytes = raw.get("log_max_bytes", DEFAULT_LOG_MAX_BYTES)
    if not _is_int(max_bytes) or not MIN_LOG_MAX_BYTES <= max_bytes <= MAX_LOG_MAX_BYTES:
        raise TopologyError(f"{where}: field 'log_max_bytes' must be an integer from {MIN_LOG_MAX_BYTES} to "
                            f"{MAX_LOG_MAX_BYTES} (bytes; default {DEFAULT_LOG_MAX_BYTES}), got {_show(max_bytes)}")
    backups = raw.get("log_backups", DEFAULT_LOG_BACKUPS)
    if not _is_int(backups) or not 1 <= backups <= MAX_LOG_BACKUPS:
        raise TopologyError(f"{where}: field 'log_backups' must be an integer from 1 to {MAX_LOG_BACKUPS} "
                            f"(rotated files kept; default {DEFAULT_LOG_BACKUPS}), got {_show(backups)}")
    return Cluster(name, task_time, interval, host, base_port, restart, backoff_max, max_crashes, window, security,
                   per_process, record, offset, log_level, max_bytes, backups)


def _node(raw: Any, i: int, cluster: Cluster, src: str) -> Node:
    where = f"{src}: [[node]] #{i + 1}"
    if not isinstance(raw, dict):
        raise TopologyError(f"{where}: expected a table, got {_kind(raw)}")
    if "name" not in raw:
        raise TopologyError(f"{where}: field 'name' is missing")
    name = raw["name"]
    _need_name(name, where, "name")
    where = f"{src}: node '{name}'"
    _check_keys(raw, NODE_KEYS, src, f"in node '{name}'")

    if "cpus" not in raw:
        raise TopologyError(f"{where}: field 'cpus' is missing; say how many CPUs it has, e.g. cpus = 4")
    cpus = raw["cpus"]
    if not _is_int(cpus) or cpus < 1:
        raise TopologyError(f"{where}: field 'cpus' must be a positive integer, got {_show(cpus)}")

    parents = raw.get("parents", [])
    if not isinstance(parents, list):
        raise TopologyError(f"{where}: field 'parents' must be a list of node names, got {_show(parents)}")
    for p in parents:
        if not isinstance(p, str):
            raise TopologyError(f"{where}: field 'parents' must hold node names (strings), got {_show(p)}")

    host = _need_host(raw["host"], where, "host") if "host" in raw else cluster.host
    if "port" in raw:
        port = _need_port(raw["port"], where, "port")
    else:
        port = cluster.base_port + i
        if port > 65535:
            raise TopologyError(
                f"{where}: no port given, and base_port {cluster.base_port} + index {i} = {port} "
                "is above 65535; lower [cluster] base_port or give the node a port"
            )
    operator_port = _need_port(raw["operator_port"], where, "operator_port") if "operator_port" in raw else None
    tasks = raw.get("tasks", 0)
    if not _is_int(tasks) or tasks < 0:
        raise TopologyError(f"{where}: field 'tasks' must be an integer >= 0, got {_show(tasks)}")
    return Node(name, cpus, tuple(parents), host, port, tasks, operator_port)


def _check_keys(table: dict, allowed: tuple[str, ...], src: str, where: str) -> None:
    for key in table:  # dict order is file order
        if key not in allowed:
            raise TopologyError(
                f"{src}: unknown key '{key}' {where}"
                + _did_you_mean(key, allowed)
                + f"; allowed: {', '.join(allowed)}"
            )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # bool is an int subclass


def _need_name(value: Any, where: str, field: str) -> None:
    if not isinstance(value, str) or not value:
        raise TopologyError(f"{where}: field '{field}' must be a non-empty string, got {_show(value)}")
    if len(value) > MAX_NAME_LENGTH or not NAME_ALPHABET.issuperset(value) or value.startswith("."):
        raise TopologyError(
            f"{where}: field '{field}' = {value!r} must be at most {MAX_NAME_LENGTH} characters "
            "from A-Z a-z 0-9 - _ . and not start with '.'"
        )


def _need_host(value: Any, where: str, field: str) -> str:
    if not isinstance(value, str) or not value or any(c.isspace() for c in value):
        raise TopologyError(
            f"{where}: field '{field}' must be a host name or address such as \"127.0.0.1\", got {_show(value)}"
        )
    return value


def _need_port(value: Any, where: str, field: str) -> int:
    if not _is_int(value) or not 1 <= value <= 65535:
        raise TopologyError(f"{where}: field '{field}' must be an integer port 1..65535, got {_show(value)}")
    return value


def _need_number(value: Any, where: str, field: str, positive: bool) -> float:
    bound = "> 0" if positive else ">= 0"
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or (value <= 0 if positive else value < 0):
        raise TopologyError(f"{where}: field '{field}' must be a number of seconds {bound}, got {_show(value)}")
    return float(value)


def _endpoint(host: str, port: int) -> str:
    host = f"[{host}]" if ":" in host else host  # IPv6 literal
    return f"tcp://{host}:{port}"


def _kind(value: Any) -> str:
    return {dict: "a table", list: "an array", str: "a string", bool: "a boolean",
            int: "an integer", float: "a float"}.get(type(value), type(value).__name__)


def _show(value: Any) -> str:
    """A value as the TOML file would spell it, with its kind when that helps."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}" (a string)'
    if isinstance(value, (dict, list)):
        return _kind(value)
    return repr(value)


# -- writing ------------------------------------------------------------------------------


def recording(topology: Topology) -> Topology:
    """``topology`` with ``[cluster] record = true``, whatever its file says (``ctl start
    --record``: the supervisor and every node it starts are told so on their command line)."""
    if topology.cluster.record:
        return topology
    return Topology(replace(topology.cluster, record=True), topology.nodes, topology.path, source=topology.source)


def to_dict(topology: Topology) -> dict:
    """The TOML-shaped dict; fields equal to their defaults are left out, so that
    ``from_dict(to_dict(t)) == t`` and files stay short."""
    c = topology.cluster
    cluster = {
        "name": c.name,
        "task_time": c.task_time,
        "rebalance_interval": c.rebalance_interval,
        "host": c.host,
        "base_port": c.base_port,
    }
    for key, default in (("restart", DEFAULT_RESTART), ("restart_backoff_max", DEFAULT_RESTART_BACKOFF_MAX),
                         ("restart_max_crashes", DEFAULT_RESTART_MAX_CRASHES), ("restart_window", DEFAULT_RESTART_WINDOW)):
        if getattr(c, key) != default:
            cluster[key] = getattr(c, key)
    if c.security != Cluster.security:
        cluster["security"] = c.security
    if c.nodes_per_process != Cluster.nodes_per_process:
        cluster["nodes_per_process"] = c.nodes_per_process
    if c.record != Cluster.record:
        cluster["record"] = c.record
    if c.operator_port_offset != Cluster.operator_port_offset:
        cluster["operator_port_offset"] = c.operator_port_offset
    for key in ("log_level", "log_max_bytes", "log_backups"):
        if getattr(c, key) != getattr(Cluster, key):
            cluster[key] = getattr(c, key)
    nodes = []
    for i, n in enumerate(topology.nodes):
        entry: dict[str, Any] = {"name": n.name, "cpus": n.cpus, "parents": list(n.parents)}
        if n.host != c.host:
            entry["host"] = n.host
        if n.port != c.base_port + i:
            entry["port"] = n.port
        if n.operator_port is not None and n.operator_port != n.port + c.operator_port_offset:
            entry["operator_port"] = n.operator_port
        if n.tasks:
            entry["tasks"] = n.tasks
        nodes.append(entry)
    return {"cluster": cluster, "node": nodes}


def dumps(topology: Topology, comment: str | None = None) -> str:
    """TOML text for the topology; ``loads(dumps(t)) == t``. ``comment`` (several lines
    allowed) goes on top as ``#`` lines."""
    import tomli_w

    body = tomli_w.dumps(to_dict(topology))
    if not comment:
        return body
    header = "".join(f"# {line}".rstrip() + "\n" for line in comment.splitlines())
    return header + "\n" + body
