"""The supervisor (daemon/cluster/supervisor.py) without a cluster: how it groups its
nodes into processes, and the record it would write. Its life on real processes is
tests/e2e (test_lifecycle.py, test_process_faults.py, test_faults.py,
test_nodes_per_process.py)."""

from __future__ import annotations

import pytest

from daemon.cluster.process import ProcessState, SupervisedProcess
from daemon.cluster.record import ClusterState, from_json
from daemon.cluster.supervisor import Supervisor
from daemon.topology import loads


def topology(n: int, per_process: int):
    nodes = "".join(f'[[node]]\nname = "n{i}"\ncpus = 1\nparents = [{f"{chr(34)}n{(i - 1) // 2}{chr(34)}" if i else ""}]\n'
                    for i in range(n))
    return loads(f'[cluster]\nname = "g"\nnodes_per_process = {per_process}\n{nodes}', path="/nonexistent/g.toml")


@pytest.mark.parametrize("n, k, sizes", [(1, 1, [1]), (7, 1, [1] * 7), (7, 3, [3, 3, 1]), (8, 4, [4, 4]), (5, 9, [5])])
def test_nodes_are_grouped_in_file_order(tmp_path, n, k, sizes):
    t = topology(n, k)
    groups = Supervisor(t, tmp_path / "run").groups(list(t.names))
    assert [len(g) for g in groups] == sizes
    assert [name for g in groups for name in g] == list(t.names)  # each once, in file order


def test_the_record_names_every_node_of_a_process_and_reads_back(tmp_path):
    t = topology(5, 2)
    supervisor = Supervisor(t, tmp_path / "run")
    for group in supervisor.groups(list(t.names)):  # as _spawn fills it, without a process started
        p = SupervisedProcess({n: t.endpoint(n) for n in group}, tmp_path / f"{group[0]}.log")
        supervisor.process_of.update(dict.fromkeys(group, p))
    record = supervisor.record()
    assert record.state == ClusterState.STARTING and list(record.nodes) == list(t.names)
    assert all(e.state == ProcessState.STARTING for e in record.nodes.values())
    assert len(supervisor.processes) == 3  # 2 + 2 + 1
    assert record.nodes["n2"].endpoint == t.endpoint("n2") and record.nodes["n2"].log == str(tmp_path / "n2.log")
    # n2 and n3 share a process; each logs to its own file, the process prints to n2's (daemon/logs.py)
    assert record.nodes["n3"].log == str(tmp_path / "n3.log")
    assert record.remote_nodes == [] and record.restart.max_crashes == t.cluster.restart_max_crashes
    assert from_json(record.to_json(), "cluster.json") == record
