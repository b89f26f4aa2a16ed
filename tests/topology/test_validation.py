"""Every way a topology file can be wrong: the message names the file, the node and the
field, ``ctl check`` exits 2 and prints no traceback."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

import ctl
from ctl.cli import main
from daemon.errors import BadInput
from daemon.topology import TopologyError, UnknownNode, from_dict, load, loads

REPO = Path(os.path.abspath(ctl.__file__)).parent.parent

ROOT = '[[node]]\nname = "root"\ncpus = 4\n'


def node(name, cpus="2", parents="[\"root\"]", extra=""):
    return f'\n[[node]]\nname = "{name}"\ncpus = {cpus}\nparents = {parents}\n{extra}'


# (id, file text, fragments the message must contain)
BAD_FILES = [
    ("unknown-parent", ROOT + node("affixed", parents='["rot"]'),
     ["node 'affixed'", "parent 'rot'", "did you mean 'root'"]),
    ("self-loop", ROOT + node("affixed", parents='["root", "affixed"]'),
     ["node 'affixed'", "'parents'", "itself", "self-loop"]),
    ("duplicate-parent", ROOT + node("affixed", parents='["root", "root"]'),
     ["node 'affixed'", "'parents'", "'root' twice"]),
    ("duplicate-name", ROOT + node("affixed") + node("affixed"),
     ["node 'affixed'", "defined twice", "#2 and #3"]),
    ("duplicate-port-explicit", ROOT + node("affixed", extra="port = 7000") + node("pical", extra="port = 7000"),
     ["port 7000", "'affixed'", "'pical'"]),
    ("duplicate-port-default", ROOT + node("affixed", extra="port = 7100"),
     ["port 7100", "'root'", "'affixed'"]),
    ("operator-port-on-a-node-port", ROOT + node("affixed", extra="port = 8100"),
     ["port 8100", "node 'root' (its operator_port)", "node 'affixed' (its port", "operator_port_offset"]),
    ("operator-port-explicit-clash", ROOT + node("affixed", extra="operator_port = 7100"),
     ["port 7100", "node 'root' (its port)", "node 'affixed' (its operator_port"]),
    ("operator-port-string", ROOT + node("affixed", extra='operator_port = "x"'),
     ["node 'affixed'", "'operator_port'", "1..65535"]),
    ("operator-offset-overflow", "[cluster]\noperator_port_offset = 60000\n" + ROOT,
     ["node 'root'", "7100 + [cluster] operator_port_offset 60000 = 67100", "give the node an operator_port"]),
    ("operator-offset-zero", "[cluster]\noperator_port_offset = 0\n" + ROOT,
     ["[cluster]", "'operator_port_offset'", "non-zero", "got 0"]),
    ("operator-offset-float", "[cluster]\noperator_port_offset = 1.5\n" + ROOT, ["'operator_port_offset'", "got 1.5"]),
    ("cpus-zero", ROOT + node("affixed", cpus="0"), ["node 'affixed'", "'cpus'", "positive integer", "got 0"]),
    ("cpus-negative", ROOT + node("affixed", cpus="-3"), ["node 'affixed'", "'cpus'", "got -3"]),
    ("cpus-bool", ROOT + node("affixed", cpus="true"), ["node 'affixed'", "'cpus'", "got true"]),
    ("cpus-float", ROOT + node("affixed", cpus="2.5"), ["node 'affixed'", "'cpus'", "got 2.5"]),
    ("cpus-string", ROOT + node("affixed", cpus='"4"'), ["node 'affixed'", "'cpus'", '"4" (a string)']),
    ("cpus-missing", ROOT + '\n[[node]]\nname = "affixed"\nparents = ["root"]\n',
     ["node 'affixed'", "'cpus' is missing"]),
    ("name-missing", ROOT + '\n[[node]]\ncpus = 2\n', ["[[node]] #2", "'name' is missing"]),
    ("name-not-string", ROOT + '\n[[node]]\nname = 7\ncpus = 2\n', ["[[node]] #2", "'name'", "got 7"]),
    ("name-empty", ROOT + '\n[[node]]\nname = ""\ncpus = 2\n', ["[[node]] #2", "'name'", "non-empty"]),
    ("name-with-space", ROOT + node("two words"), ["[[node]] #2", "'name'", "A-Z a-z 0-9 - _ ."]),
    ("parents-not-list", ROOT + node("affixed", parents='"root"'), ["node 'affixed'", "'parents'", "list"]),
    ("parents-not-strings", ROOT + node("affixed", parents="[1]"), ["node 'affixed'", "'parents'", "got 1"]),
    ("host-not-string", ROOT + node("affixed", extra="host = 5"), ["node 'affixed'", "'host'", "got 5"]),
    ("port-string", ROOT + node("affixed", extra='port = "7101"'), ["node 'affixed'", "'port'", "1..65535"]),
    ("port-too-big", ROOT + node("affixed", extra="port = 70000"), ["node 'affixed'", "'port'", "got 70000"]),
    ("port-zero", ROOT + node("affixed", extra="port = 0"), ["node 'affixed'", "'port'", "got 0"]),
    ("port-bool", ROOT + node("affixed", extra="port = true"), ["node 'affixed'", "'port'", "got true"]),
    ("tasks-negative", ROOT + node("affixed", extra="tasks = -1"), ["node 'affixed'", "'tasks'", ">= 0"]),
    ("tasks-bool", ROOT + node("affixed", extra="tasks = false"), ["node 'affixed'", "'tasks'", "got false"]),
    ("task-time-zero", "[cluster]\ntask_time = 0\n" + ROOT, ["[cluster]", "'task_time'", "> 0", "got 0"]),
    ("task-time-string", '[cluster]\ntask_time = "1"\n' + ROOT, ["[cluster]", "'task_time'"]),
    ("task-time-nan", "[cluster]\ntask_time = nan\n" + ROOT, ["[cluster]", "'task_time'", "nan"]),
    ("task-time-bool", "[cluster]\ntask_time = true\n" + ROOT, ["[cluster]", "'task_time'", "got true"]),
    ("rebalance-negative", "[cluster]\nrebalance_interval = -1.0\n" + ROOT,
     ["[cluster]", "'rebalance_interval'", ">= 0"]),
    ("cluster-name-empty", '[cluster]\nname = ""\n' + ROOT, ["[cluster]", "'name'"]),
    ("cluster-name-int", "[cluster]\nname = 5\n" + ROOT, ["[cluster]", "'name'", "got 5"]),
    ("rebalance-string", '[cluster]\nrebalance_interval = "5s"\n' + ROOT,
     ["[cluster]", "'rebalance_interval'", '"5s" (a string)']),
    ("cluster-host-empty", '[cluster]\nhost = ""\n' + ROOT, ["[cluster]", "'host'"]),
    ("base-port-zero", "[cluster]\nbase_port = 0\n" + ROOT, ["[cluster]", "'base_port'", "got 0"]),
    ("base-port-float", "[cluster]\nbase_port = 7100.0\n" + ROOT, ["[cluster]", "'base_port'", "got 7100.0"]),
    ("base-port-overflow", "[cluster]\nbase_port = 65535\n" + ROOT + node("affixed"),
     ["node 'affixed'", "base_port 65535", "65536", "above 65535"]),
    ("cluster-not-table", "cluster = 5\n" + ROOT, ["'cluster' must be a table"]),
    ("restart-unknown", '[cluster]\nrestart = "always"\n' + ROOT,
     ["[cluster]", "'restart'", '"on-failure" or "never"', '"always" (a string)']),
    ("restart-bool", "[cluster]\nrestart = true\n" + ROOT, ["[cluster]", "'restart'", "got true"]),
    ("restart-backoff-zero", "[cluster]\nrestart_backoff_max = 0\n" + ROOT,
     ["[cluster]", "'restart_backoff_max'", "> 0", "got 0"]),
    ("restart-backoff-string", '[cluster]\nrestart_backoff_max = "5s"\n' + ROOT,
     ["[cluster]", "'restart_backoff_max'", '"5s" (a string)']),
    ("restart-crashes-zero", "[cluster]\nrestart_max_crashes = 0\n" + ROOT,
     ["[cluster]", "'restart_max_crashes'", "positive integer", "got 0"]),
    ("restart-crashes-float", "[cluster]\nrestart_max_crashes = 2.5\n" + ROOT,
     ["[cluster]", "'restart_max_crashes'", "got 2.5"]),
    ("restart-window-negative", "[cluster]\nrestart_window = -1\n" + ROOT,
     ["[cluster]", "'restart_window'", "> 0", "got -1"]),
    ("restart-key-typo", "[cluster]\nrestart_windwo = 10\n" + ROOT, ["restart_windwo", "restart_window"]),
    ("per-process-zero", "[cluster]\nnodes_per_process = 0\n" + ROOT,
     ["[cluster]", "'nodes_per_process'", "from 1 to 1024", "got 0"]),
    ("per-process-too-many", "[cluster]\nnodes_per_process = 1025\n" + ROOT, ["'nodes_per_process'", "got 1025"]),
    ("per-process-float", "[cluster]\nnodes_per_process = 2.0\n" + ROOT, ["'nodes_per_process'", "got 2.0"]),
    ("per-process-bool", "[cluster]\nnodes_per_process = true\n" + ROOT, ["'nodes_per_process'", "got true"]),
    ("record-string", "[cluster]\nrecord = \"yes\"\n" + ROOT, ["[cluster]", "'record'", "true or false (the default)", "got \"yes\""]),
    ("record-int", "[cluster]\nrecord = 1\n" + ROOT, ["'record'", "got 1"]),
    ("log-level-unknown", "[cluster]\nlog_level = \"verbose\"\n" + ROOT,
     ["[cluster]", "'log_level'", '"debug", "info", "warning", "error"', 'got "verbose"']),
    ("log-level-upper", "[cluster]\nlog_level = \"INFO\"\n" + ROOT, ["'log_level'", 'got "INFO"']),
    ("log-max-bytes-small", "[cluster]\nlog_max_bytes = 100\n" + ROOT,
     ["[cluster]", "'log_max_bytes'", "from 4096 to 1073741824", "got 100"]),
    ("log-max-bytes-string", "[cluster]\nlog_max_bytes = \"4MB\"\n" + ROOT, ["'log_max_bytes'", '"4MB" (a string)']),
    ("log-backups-zero", "[cluster]\nlog_backups = 0\n" + ROOT,
     ["[cluster]", "'log_backups'", "from 1 to 99", "got 0"]),
    ("log-backups-float", "[cluster]\nlog_backups = 1.5\n" + ROOT, ["'log_backups'", "got 1.5"]),
    ("node-single-brackets", '[node]\nname = "root"\ncpus = 1\n', ["'node'", "[[node]]"]),
    ("node-not-table", "node = [1]\n", ["[[node]] #1", "expected a table"]),
    ("not-connected", ROOT + node("affixed") + node("pical", parents="[]") + node("haywagon", parents='["pical"]'),
     ["not connected", "2 separate pieces", "{root, affixed}", "{pical, haywagon}"]),
    ("unknown-top-key", "nodes = 3\n" + ROOT, ["unknown key 'nodes'", "top level", "did you mean 'node'"]),
    ("unknown-cluster-key", "[cluster]\ntask_tme = 1.0\n" + ROOT,
     ["unknown key 'task_tme'", "[cluster]", "did you mean 'task_time'"]),
    ("unknown-node-key", ROOT + node("affixed", parents='["root"]\nparent = ["root"]'),
     ["unknown key 'parent'", "node 'affixed'", "did you mean 'parents'"]),
    ("no-nodes", '[cluster]\nname = "empty"\n', ["no nodes"]),
    ("empty-file", "", ["no nodes"]),
    ("empty-node-array", "node = []\n", ["no nodes"]),
    ("toml-syntax", '[cluster]\nname = "x"\nbase_port 7100\n' + ROOT,
     ["invalid TOML", "Expected '=' after a key", "(at line 3, column"]),
]


@pytest.mark.parametrize("text, fragments", [c[1:] for c in BAD_FILES], ids=[c[0] for c in BAD_FILES])
def test_bad_file_is_reported_with_file_node_and_field(tmp_path, capsys, text, fragments):
    path = tmp_path / "bad.toml"
    path.write_text(text)

    with pytest.raises(TopologyError) as caught:
        load(path)
    message = str(caught.value)
    assert message.startswith(str(path) + ": ")
    for fragment in fragments:
        assert fragment in message
    assert caught.value.exit_code == 2

    assert main(["check", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"ctl check: error: {message}\n"


def test_disconnected_message_shortens_big_pieces():
    nodes = [{"name": f"n{i}", "cpus": 1, "parents": [f"n{i - 1}"] if i % 10 else []} for i in range(60)]
    with pytest.raises(TopologyError) as caught:
        from_dict({"node": nodes}, path="big.toml")
    message = str(caught.value)
    assert "6 separate pieces" in message
    assert "{n0, n1, n2, ... (10 nodes)}" in message
    assert "and 2 more" in message
    assert "n40" not in message


def test_missing_file(tmp_path, capsys):
    path = tmp_path / "nope.toml"
    assert main(["check", str(path)]) == 2
    assert capsys.readouterr().err == f"ctl check: error: {path}: no such file\n"


def test_directory_instead_of_file(tmp_path, capsys):
    assert main(["check", str(tmp_path)]) == 2
    assert f"{tmp_path}: is a directory" in capsys.readouterr().err


def test_unreadable_file(tmp_path, capsys, monkeypatch):
    # Root reads any file whatever its mode bits, so make open() refuse instead.
    path = tmp_path / "secret.toml"
    path.write_text(ROOT)

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    import daemon.topology
    monkeypatch.setattr(daemon.topology.os, "open", refuse)
    assert main(["check", str(path)]) == 2
    assert f"{path}: permission denied" in capsys.readouterr().err


def test_not_utf8(tmp_path, capsys):
    path = tmp_path / "latin1.toml"
    path.write_bytes(ROOT.replace("root", "r\xe9seau").encode("latin-1"))
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: not UTF-8" in err
    assert "0xe9" in err


def test_byte_order_mark_is_accepted(tmp_path):
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf" + ROOT.encode())
    assert load(path).names == ("root",)


def test_loads_and_from_dict_name_their_source():
    with pytest.raises(TopologyError, match=r"^<string>: node 'a': field 'cpus'"):
        loads('[[node]]\nname = "a"\ncpus = 0\n')
    with pytest.raises(TopologyError, match=r"^<dict>: node 'a': field 'cpus'"):
        from_dict({"node": [{"name": "a", "cpus": 0}]})
    with pytest.raises(TopologyError, match=r"^<dict>: expected a table"):
        from_dict([])


def test_unknown_node_lookup_is_a_topology_error_and_a_key_error():
    topology = loads(ROOT + node("haywagon"), path="lab.toml")
    with pytest.raises(UnknownNode) as caught:
        topology.node("hay")
    assert isinstance(caught.value, KeyError)
    assert isinstance(caught.value, BadInput)
    assert str(caught.value) == "lab.toml: no node named 'hay' (did you mean 'haywagon'?)"
    for query in (topology.parents, topology.children, topology.neighbours, topology.endpoint):
        with pytest.raises(TopologyError, match="no node named 'rot'"):
            query("rot")


@pytest.mark.e2e  # starts a process (tests/conftest.py)
def test_real_ctl_process_prints_the_message_not_a_traceback(tmp_path):
    path = tmp_path / "typo.toml"
    path.write_text(ROOT + node("affixed", parents='["rot"]'))
    result = subprocess.run(
        [sys.executable, "-m", "ctl", "check", str(path)],
        cwd=REPO, capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == (
        f"ctl check: error: {path}: node 'affixed': parent 'rot' is not a node in this topology "
        "(did you mean 'root'?)\n"
    )
