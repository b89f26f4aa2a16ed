"""A topology as integer ids, the form the simulator runs on.

Node ``i`` is the ``i``-th node of the topology file. Integer ids make the simulator
fast (small-int sets and list look-ups instead of string hashing) and keep every order
independent of Python's per-process string-hash randomisation: the simulated run is a
function of the seed alone. Names come back only in reports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the simulator takes any object with Topology's query methods
    from daemon.topology import Topology


class IndexedGraph:
    """Adjacency of one topology by node index, each list in file order.

    ``ins[i]`` are i's parents (Finn's in-neighbours), ``outs[i]`` its children,
    ``neighbours[i]`` the undirected view (echo's), ``cpus[i]`` its CPU count.
    """

    __slots__ = ("topology", "names", "ins", "outs", "neighbours", "cpus", "_index")

    def __init__(self, topology: "Topology"):
        self.topology = topology
        self.names: tuple[str, ...] = tuple(topology.names)
        index = {name: i for i, name in enumerate(self.names)}
        self._index = index
        # sorted(): file order whatever order the topology's queries return
        self.ins = [sorted(index[p] for p in topology.parents(n)) for n in self.names]
        self.outs = [sorted(index[c] for c in topology.children(n)) for n in self.names]
        self.neighbours = [sorted(index[q] for q in topology.neighbours(n)) for n in self.names]
        self.cpus = [topology.node(n).cpus for n in self.names]

    def __len__(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        """The id of node ``name``; raises the topology's error (which names the file
        and suggests a close name) for a node it does not have."""
        i = self._index.get(name)
        if i is None:
            return self.topology.index(name)  # raises UnknownNode, a BadInput
        return i

    @property
    def edge_count(self) -> int:
        """Directed edges parent → child."""
        return sum(len(o) for o in self.outs)

    @property
    def link_count(self) -> int:
        """Links of the undirected view (a pair of opposite edges is one link)."""
        return sum(len(n) for n in self.neighbours) // 2

    def finn_initiators(self) -> list[int]:
        """One node per source component, from ``Topology.finn_initiators()``."""
        return [self._index[n] for n in self.topology.finn_initiators()]


def generated(nodes: int, shape: str, run_seed: int) -> "Topology":
    """The topology that ``ctl sim ... --nodes N --shape S --seed RUN_SEED`` simulates:
    ``topogen.generate`` with the run's ``topology`` sub-seed, so that the network's
    draws and the topology's never share a stream. Raises BadInput for bad arguments."""
    from daemon.sim.seeds import TOPOLOGY, subseed
    from daemon.topogen import generate

    return generate(nodes, shape, subseed(run_seed, TOPOLOGY))
