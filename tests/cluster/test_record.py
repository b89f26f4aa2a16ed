"""``cluster.json``'s schema (daemon/cluster/record.py): a record written then read is the
same record, the file has the keys ``ctl`` and the tests read, and a damaged file gives
an error naming the file and the field. Real files in a temporary folder."""

from __future__ import annotations

import json

import pytest

from daemon import rundir
from daemon.cluster.process import ProcessState
from daemon.cluster.record import (
    ClusterRecord,
    ClusterState,
    DamagedRecord,
    NodeEntry,
    RestartEntry,
    SupervisorEntry,
    from_json,
)


def full_record() -> ClusterRecord:
    return ClusterRecord(
        cluster="lab", topology="/x/lab.toml", run_dir="/run/lab", state=ClusterState.RUNNING,
        restart_policy="on-failure",
        restart=RestartEntry(policy="on-failure", first_backoff=0.1, backoff_max=5.0, max_crashes=5, window=60.0),
        started_at=1_700_000_000.25, stopped_at=None,
        supervisor=SupervisorEntry(pid=100, create_time=1_700_000_000.0, log="/run/lab/supervisor.log"),
        nodes={
            "root": NodeEntry(pid=101, create_time=1_700_000_000.5, endpoint="tcp://127.0.0.1:5000",
                              operator_endpoint="tcp://127.0.0.1:6000", log="/run/lab/root.log",
                              state=ProcessState.RUNNING, since=1_700_000_001.0, restarts=0),
            "leaf": NodeEntry(pid=102, endpoint="tcp://127.0.0.1:5001", state=ProcessState.BACKOFF,
                              since=1_700_000_002.0, restarts=2, last_exit="killed by SIGKILL", exit_status=-9),
        },
        remote_nodes=["far"],
    )


def test_a_record_written_then_read_is_the_same(tmp_path):
    record = full_record()
    rundir.write_record(tmp_path, record)
    back = rundir.read_record(tmp_path)
    assert back == record
    assert back.state is ClusterState.RUNNING and back.nodes["leaf"].state is ProcessState.BACKOFF
    assert list(back.nodes) == ["root", "leaf"]  # file order kept


def test_the_file_has_the_documented_keys_in_order(tmp_path):
    rundir.write_record(tmp_path, full_record())
    doc = json.loads((tmp_path / rundir.CLUSTER_FILE).read_text())
    assert list(doc) == ["cluster", "topology", "run_dir", "state", "restart_policy", "restart", "started_at",
                         "stopped_at", "supervisor", "nodes", "remote_nodes"]
    assert list(doc["restart"]) == ["policy", "first_backoff", "backoff_max", "max_crashes", "window"]
    assert list(doc["supervisor"]) == ["pid", "create_time", "log"]
    assert list(doc["nodes"]["root"]) == ["pid", "create_time", "endpoint", "operator_endpoint", "log", "state",
                                          "since", "restarts", "last_exit", "exit_status", "error"]
    assert doc["state"] == "running" and doc["nodes"]["leaf"]["state"] == "BACKOFF"  # plain strings on disk


def test_a_missing_file_is_no_record(tmp_path):
    assert rundir.read_record(tmp_path) is None


def test_missing_and_null_fields_take_their_defaults(tmp_path):
    (tmp_path / rundir.CLUSTER_FILE).write_text('{"cluster": "lab", "supervisor": null, "nodes": {"a": {"pid": 7}}}')
    record = rundir.read_record(tmp_path)
    assert record == ClusterRecord(cluster="lab", nodes={"a": NodeEntry(pid=7)})
    assert record.supervisor.pid is None and record.nodes["a"].restarts == 0 and record.remote_nodes == []


def test_unknown_keys_are_ignored():
    assert from_json({"cluster": "lab", "later": {"x": 1}}, "f") == ClusterRecord(cluster="lab")


@pytest.mark.parametrize("doc, problem", [
    ([1, 2], "expected a JSON object, got list"),
    ({"cluster": 5}, "field 'cluster' must be a string, got int"),
    ({"nodes": ["root"]}, "field 'nodes' must be an object, got list"),
    ({"supervisor": "me"}, "field 'supervisor' must be an object, got str"),
    ({"state": "dancing"}, "field 'state' must be one of starting, running, stopping, stopped, failed, got str"),
    ({"started_at": "noon"}, "field 'started_at' must be a number, got str"),
    ({"remote_nodes": ["a", 3]}, "field 'remote_nodes' must be a list of strings, got list"),
    ({"supervisor": {"pid": "12"}}, "supervisor: pid must be a positive integer, got '12'"),
    ({"supervisor": {"pid": 0}}, "supervisor: pid must be a positive integer, got 0"),
    ({"supervisor": {"create_time": "x"}}, "supervisor: create_time must be a number, got 'x'"),
    ({"restart": {"max_crashes": 2.5}}, "restart: max_crashes must be an integer, got 2.5"),
    ({"nodes": {"root": []}}, "node 'root' must be an object, got list"),
    ({"nodes": {"root": {"pid": True}}}, "node 'root': pid must be a positive integer, got True"),
    ({"nodes": {"root": {"state": "running"}}},
     "node 'root': state must be one of STARTING, RUNNING, BACKOFF, FATAL, STOPPING, STOPPED, got 'running'"),
    ({"nodes": {"root": {"restarts": "2"}}}, "node 'root': restarts must be an integer, got '2'"),
    ({"nodes": {"root": {"endpoint": 5000}}}, "node 'root': endpoint must be a string, got 5000"),
])
def test_a_damaged_record_names_the_file_and_the_field(tmp_path, doc, problem):
    path = tmp_path / rundir.CLUSTER_FILE
    path.write_text(json.dumps(doc))
    with pytest.raises(DamagedRecord) as caught:
        rundir.read_record(tmp_path)
    assert str(caught.value) == f"{path}: not a cluster record: {problem}"


def test_a_file_that_is_not_json_names_the_file(tmp_path):
    path = tmp_path / rundir.CLUSTER_FILE
    path.write_text("{not json")
    with pytest.raises(DamagedRecord, match=f"^{path}: cannot read the cluster record: Expecting property name"):
        rundir.read_record(tmp_path)


def test_live_states_are_those_a_supervisor_leaves_before_it_exits():
    assert {s for s in ClusterState if s.live} == {ClusterState.STARTING, ClusterState.RUNNING, ClusterState.STOPPING}
