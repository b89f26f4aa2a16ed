"""Keys (daemon/security.py) and the run directory's checks (daemon/rundir.py), in-process.

The end-to-end attacks are in tests/e2e/test_security.py; here: what is written where,
with which modes, what is refused and how the refusal reads, and the Gate's rules."""

import os
import shutil
import stat

import pytest
import zmq

from ctl.cli import main
from daemon import rundir, security
from daemon.errors import BadInput, UserError
from daemon.topology import loads

SEED = """
[cluster]
name = "lab"
[[node]]
name = "root"
cpus = 4
[[node]]
name = "leaf"
cpus = 2
parents = ["root"]
"""


def two_hosts():
    return loads(SEED.replace('cpus = 2\n', 'cpus = 2\nhost = "192.0.2.7"\n'), path="/x/lab.toml")


def mode(path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_ensure_keys_makes_private_pairs_for_every_node_and_the_operator(tmp_path):
    topology = loads(SEED)
    folder = security.ensure_keys(tmp_path, topology, ["root", "leaf"])
    assert folder == tmp_path / "keys"
    assert mode(folder) == mode(folder / "nodes") == 0o700
    for secret in ("operator.key_secret", "nodes/root.key_secret", "nodes/leaf.key_secret"):
        assert mode(folder / secret) == 0o600
    keys = security.ClusterKeys.load(tmp_path, topology, "leaf")
    assert keys.own_public == keys.nodes["leaf"] and len(keys.own_secret) == 40
    ids = keys.user_ids()
    assert sorted(ids.values()) == ["node:leaf", "node:root", "operator"]
    before = (folder / "nodes/root.key").read_bytes()
    security.ensure_keys(tmp_path, topology, ["root", "leaf"])  # existing keys are kept
    assert (folder / "nodes/root.key").read_bytes() == before


def test_preloaded_public_keys_spare_each_node_reading_every_key_file(tmp_path, monkeypatch):
    """The supervisor reads the public keys once (security.preload) and the nodes it forks
    read only their own pair: a node restarted after another node's public key file went
    still starts, and its User-Id table is the supervisor's own. Its own pair is still
    checked."""
    monkeypatch.setattr(security, "_preloaded", {})
    topology = loads(SEED)
    folder = security.ensure_keys(tmp_path, topology, ["root", "leaf"])
    expected = security.ClusterKeys.load(tmp_path, topology, "leaf").user_ids()
    security.preload(tmp_path, topology)
    (folder / "nodes/root.key").unlink()
    keys = security.ClusterKeys.load(tmp_path, topology, "leaf")
    assert keys.user_ids() == expected and keys.user_ids() is keys.user_ids()
    (folder / "nodes/leaf.key_secret").write_bytes((folder / "operator.key_secret").read_bytes())
    with pytest.raises(security.KeyProblem, match=r"leaf.key_secret: does not match"):
        security.ClusterKeys.load(tmp_path, topology, "leaf")
    monkeypatch.setattr(security, "_preloaded", {})  # without the preload, every file is read
    with pytest.raises(security.KeyProblem, match=r"root.key: no such key file"):
        security.ClusterKeys.load(tmp_path, topology, "operator")


def test_a_cluster_on_several_hosts_gets_its_keys_from_keygen(tmp_path, capsys):
    topology = two_hosts()
    with pytest.raises(security.KeyProblem, match=r"several hosts .* lacks the keys of operator, root, leaf; .*ctl keygen"):
        security.ensure_keys(tmp_path / "run", topology, ["root"])
    out = tmp_path / "out"
    here, there = out / "127.0.0.1/lab/keys", out / "192.0.2.7/lab/keys"
    security.keygen(topology, {here: ["root"], there: ["leaf"]})
    assert sorted(p.name for p in (here / "nodes").iterdir()) == ["leaf.key", "root.key", "root.key_secret"]
    assert sorted(p.name for p in (there / "nodes").iterdir()) == ["leaf.key", "leaf.key_secret", "root.key"]
    assert (here / "nodes/leaf.key").read_bytes() == (there / "nodes/leaf.key").read_bytes()
    assert (here / "operator.key_secret").read_bytes() == (there / "operator.key_secret").read_bytes()
    assert mode(there / "nodes/leaf.key_secret") == 0o600 and mode(there) == 0o700
    # each host's folder is what ctl start there needs
    security.ensure_keys(out / "192.0.2.7" / "lab", topology, ["leaf"])
    assert security.ClusterKeys.load(out / "192.0.2.7" / "lab", topology, "leaf").nodes["root"]
    with pytest.raises(security.KeyProblem, match="no such key file"):
        security.ClusterKeys.load(out / "192.0.2.7" / "lab", topology, "root")
    with pytest.raises(UserError, match="already exists"):
        security.keygen(topology, {here: ["root"]})


def test_ctl_keygen(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ECHOFINN_HOME", str(tmp_path / "home"))
    path = tmp_path / "lab.toml"
    path.write_text(SEED)
    assert main(["keygen", "-t", str(path)]) == 0
    assert (tmp_path / "home/lab/keys/nodes/leaf.key_secret").exists()
    assert "lab" in capsys.readouterr().out
    assert main(["keygen", "-t", str(path)]) == 1  # never overwrites keys silently
    assert "already" in capsys.readouterr().err
    path.write_text(SEED.replace('cpus = 2\n', 'cpus = 2\nhost = "192.0.2.7"\n'))
    assert main(["keygen", "-t", str(path), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "192.0.2.7" in out and str(tmp_path / "out" / "192.0.2.7" / "lab" / "keys") in out
    path.write_text(SEED.replace('cpus = 2\n', 'cpus = 2\nhost = "192.0.2.8"\n'))
    assert main(["keygen", "-t", str(path)]) == 2  # several hosts: --out is needed
    assert "--out" in capsys.readouterr().err


def test_secret_keys_must_be_private_regular_files(tmp_path):
    topology = loads(SEED)
    folder = security.ensure_keys(tmp_path, topology, ["root", "leaf"])
    secret = folder / "nodes/root.key_secret"
    os.chmod(secret, 0o644)
    with pytest.raises(security.KeyProblem, match=r"root.key_secret: the secret key is open to other users \(mode 0644\); `chmod 600"):
        security.ClusterKeys.load(tmp_path, topology, "root")
    os.chmod(secret, 0o600)
    os.rename(secret, folder / "elsewhere")
    secret.symlink_to(folder / "elsewhere")
    with pytest.raises(security.KeyProblem, match="root.key_secret: cannot read the key file"):
        security.ClusterKeys.load(tmp_path, topology, "root")
    secret.unlink()
    secret.write_bytes((folder / "operator.key_secret").read_bytes())
    os.chmod(secret, 0o600)
    with pytest.raises(security.KeyProblem, match="does not match"):
        security.ClusterKeys.load(tmp_path, topology, "root")
    (folder / "nodes/leaf.key").write_text("garbage\n")
    with pytest.raises(security.KeyProblem, match="leaf.key: not a CURVE certificate"):
        security.ClusterKeys.load(tmp_path, topology, "operator")


def test_keys_already_there_must_be_this_clusters_of_one_set(tmp_path, monkeypatch):
    """What a run directory holds is checked before it is used, by ``ctl start`` and the
    supervisor (ensure_keys) and by ctl and each node (ClusterKeys.load); each refusal
    names the file, what differs and how to start afresh."""
    monkeypatch.setattr(security, "_preloaded", {})
    topology, both = loads(SEED), ["root", "leaf"]
    lab, other = tmp_path / "lab", tmp_path / "other"
    lab.mkdir()
    other.mkdir()
    security.ensure_keys(other, loads(SEED.replace('name = "lab"', 'name = "other"')), both)
    afresh = rf"while the cluster is not running, remove {lab / 'keys'} and `ctl start` makes a new set"

    shutil.copytree(other / "keys", lab / "keys")  # keys of another cluster, copied in
    for use in (lambda: security.ensure_keys(lab, topology, both), lambda: security.ClusterKeys.load(lab, topology, "operator")):
        with pytest.raises(security.KeyProblem, match=rf"^{lab / 'keys'}: these are the keys of cluster 'other', not of lab .*: {afresh}"):
            use()

    shutil.rmtree(lab / "keys")
    security.ensure_keys(lab, topology, both)
    shutil.copyfile(other / "keys/nodes/leaf.key", lab / "keys/nodes/leaf.key")  # one key of another set
    with pytest.raises(security.KeyProblem, match=rf"^{lab / 'keys/nodes/leaf.key'}: not the key of this set "
                                                  r"\(.*keyring.json records another key for leaf\); the folder mixes two sets"):
        security.ensure_keys(lab, topology, both)

    shutil.rmtree(lab / "keys")
    security.ensure_keys(lab, topology, both)
    secret = lab / "keys/nodes/leaf.key_secret"
    secret.write_bytes((other / "keys/nodes/leaf.key_secret").read_bytes())
    with pytest.raises(security.KeyProblem, match=rf"^{secret}: does not match .*leaf.key; the folder mixes two sets of keys: {afresh}"):
        security.ClusterKeys.load(lab, topology, "leaf")  # the node's own check, as it starts

    shutil.rmtree(lab / "keys")
    security.ensure_keys(lab, topology, both)
    (lab / "keys" / security.KEYRING).unlink()  # keys made by hand, or by an older echofinn
    with pytest.raises(security.KeyProblem, match=rf"^{lab / 'keys'}: holds keys but no keyring.json naming the cluster"):
        security.ensure_keys(lab, topology, both)

    shutil.rmtree(lab / "keys")  # starting afresh: a new set, with its keyring
    security.ensure_keys(lab, topology, both)
    grown = loads(SEED + '[[node]]\nname = "twig"\ncpus = 1\nparents = ["leaf"]\n')
    security.ensure_keys(lab, grown, [*both, "twig"])  # a node more: its pair joins the keyring
    assert security.ClusterKeys.load(lab, grown, "twig").nodes.keys() == {"root", "leaf", "twig"}


def test_write_files_leaves_exactly_the_launchs_keys(tmp_path):
    """An MPI rank's keys (daemon/mpi.py): the launch's set, this host's share of it, in
    place of everything the folder held."""
    topology = two_hosts()
    security.ensure_keys(tmp_path, loads(SEED), ["root", "leaf"])  # an earlier start's set
    (tmp_path / "keys/nodes/stale.key").write_text("from long ago\n")
    (tmp_path / ".keys.99999.new").mkdir()  # a writer killed halfway
    files = security.share_files(topology)
    security.write_files(tmp_path, security.for_host(files, ["leaf"]))
    assert security.read_files(tmp_path) == {k: v for k, v in files.items() if k not in ("nodes/root.key_secret",)}
    assert mode(tmp_path / "keys") == 0o700 and mode(tmp_path / "keys/nodes/leaf.key_secret") == 0o600
    assert security.ClusterKeys.load(tmp_path, topology, "leaf").nodes["root"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keys"]  # nothing left beside it


I, O = security.INBOX, security.OPERATORS
GATE_CASES = [
    # socket, user id, routing id, message type, admitted
    (I, "node:root", b"root", "transfer", True),
    (I, "node:root", b"root", "wave", True),
    (I, "node:pical", b"root", "transfer", False),  # a node's key under another node's name
    (I, "node:root", b"ctl-1", "transfer", False),  # ... or under an operator's
    (I, "node:root", b"root", "submit", False),  # a node sends no operator message
    (I, "operator", b"ctl-1", "submit", False),  # operators have a socket of their own
    (I, "operator", b"root", "transfer", False),
    (O, "operator", b"ctl-1", "submit", True),
    (O, "operator", b"ctl-1", "move", True),
    (O, "operator", b"ctl-1", "ping", True),
    (O, "operator", b"root", "ping", False),  # the operator key under a node's name
    (O, "operator", b"ctl-1", "transfer", False),
    (O, "operator", b"ctl-1", "wave", False),
    (O, "node:root", b"ctl-1", "ping", False),  # a node's key at the operator socket
    (I, None, b"root", "transfer", False),
    (O, "", b"ctl-1", "ping", False),
]


@pytest.mark.parametrize("role, user_id, ident, kind, admitted", GATE_CASES)
def test_gate(role, user_id, ident, kind, admitted):
    gate = security.Gate(["root", "pical"])
    assert (gate.refusal(role, user_id, ident, kind) is None) == admitted


@pytest.mark.parametrize("role, ident, kind, admitted", [
    (I, b"root", "transfer", True), (I, b"ctl-1", "ping", False), (I, b"root", "ping", False),
    (O, b"ctl-1", "ping", True), (O, b"root", "ping", False), (O, b"ctl-1", "transfer", False),
])
def test_without_keys_the_gate_still_keeps_the_sockets_roles_apart(role, ident, kind, admitted):
    """security = "none": no User-Id, but a node's name is refused at the operator socket
    and anything but a node's at the inbox, so an operator never displaces a node's link."""
    gate = security.Gate(["root", "pical"], authenticated=False)
    assert (gate.refusal(role, None, ident, kind) is None) == admitted


def test_the_refusal_of_a_node_name_at_the_operator_socket_names_the_rule():
    why = security.Gate(["root", "pical"]).refusal(O, "operator", b"pical", "ping")
    assert "'pical' is a node's name" in why and "any routing id but a node's" in why


def test_a_failed_handshake_says_who_refused_whose_key():
    assert security.handshake_refusal(zmq.EVENT_HANDSHAKE_FAILED_AUTH, "north", "mill") == ("mill", "north")
    assert security.handshake_refusal(zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL, "mill", "north") == ("mill", "north")
    assert security.handshake_refusal(zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL, "mill", "north") == ("mill", "north")
    assert security.handshake_refusal(zmq.EVENT_HANDSHAKE_SUCCEEDED, "mill", "north") is None
    from daemon.core.snapshot import refusal_text

    assert refusal_text("mill", "north") == "mill refused north's key (a stale or foreign key)"
    assert refusal_text("mill", security.OPERATOR) == "mill refused the operator key (a stale or foreign key)"


def test_a_handshake_watch_names_a_refusal_once_and_not_a_peer_that_died_mid_handshake():
    import errno

    watch = security.HandshakeWatch("mill")
    auth, vague, ok = zmq.EVENT_HANDSHAKE_FAILED_AUTH, zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL, zmq.EVENT_HANDSHAKE_SUCCEEDED
    assert watch.event("north", auth, 400) == "refused" and watch.refused == {"north": ("north", "mill")}
    assert watch.event("north", auth, 400) == "failed"  # said once
    assert watch.event("north", ok, 0) == "accepted" and watch.refused == {}
    # a peer that dropped the handshake once (killed in the middle): no word on keys
    assert watch.event("north", vague, errno.ECONNRESET) == "failed" and watch.refused == {}
    assert watch.event("north", ok, 0) is None
    assert watch.event("north", vague, errno.ETIMEDOUT) is None  # a stopped peer: no word on keys
    said = [watch.event("north", vague, errno.EPIPE) for _ in range(4)]
    assert said == ["failed", "failed", "refused", "failed"] and watch.refused == {"north": ("mill", "north")}


def test_every_message_a_node_handles_is_someones_to_send():
    from daemon import wire
    from daemon.core.messages import KIND
    from daemon.core.node import NodeCore

    handled = {KIND[t] for t in NodeCore._HANDLERS}
    assert security.OPERATOR_MESSAGES | security.NODE_MESSAGES == handled
    assert not security.OPERATOR_MESSAGES & security.NODE_MESSAGES
    assert handled <= set(wire.SCHEMA)


def test_none_needs_insecure_off_loopback():
    security.check_mode(loads(SEED.replace('name = "lab"', 'name = "lab"\nsecurity = "none"')), False)
    exposed = loads(SEED.replace('name = "lab"', 'name = "lab"\nsecurity = "none"')
                    .replace("cpus = 2\n", 'cpus = 2\nhost = "10.1.2.3"\n'), path="/x/lab.toml")
    with pytest.raises(BadInput, match=r"node leaf on host 10.1.2.3 open to anyone .* --insecure"):
        security.check_mode(exposed, False)
    security.check_mode(exposed, True)
    security.check_mode(two_hosts(), False)  # curve: nothing to refuse


# --- the run directory -------------------------------------------------------------------


@pytest.fixture
def home(tmp_path, monkeypatch):
    path = tmp_path / "home"
    monkeypatch.setenv("ECHOFINN_HOME", str(path))
    return path


def test_run_directories_are_made_private(home):
    run = rundir.cluster_dir("lab", create=True)
    assert run == home / "lab" and mode(home) == mode(run) == 0o700


def test_a_base_writable_by_others_is_refused(home):
    home.mkdir()
    os.chmod(home, 0o777)
    with pytest.raises(UserError, match=rf"^{home}: other users may write in it \(mode 0777\)"):
        rundir.cluster_dir("lab", create=True)
    with pytest.raises(UserError, match="other users may write"):
        rundir.current_cluster()  # readers refuse it too


def test_a_base_owned_by_someone_else_is_refused(home):
    if os.getuid() != 0:
        pytest.skip("making a folder owned by another user needs root")
    home.mkdir(mode=0o700)
    os.chown(home, 65534, 65534)
    with pytest.raises(UserError, match=rf"^{home}: belongs to uid 65534, not to you"):
        rundir.cluster_dir("lab", create=True)


def test_symlinks_are_not_followed(home, tmp_path):
    elsewhere = tmp_path / "planted"
    elsewhere.mkdir(mode=0o700)
    home.symlink_to(elsewhere)
    with pytest.raises(UserError, match=rf"^{home}: is a symbolic link"):
        rundir.cluster_dir("lab", create=True)
    home.unlink()
    home.mkdir(mode=0o700)
    (home / "lab").symlink_to(elsewhere)
    with pytest.raises(UserError, match=rf"^{home / 'lab'}: is a symbolic link"):
        rundir.cluster_dir("lab", create=True)
    assert list(elsewhere.iterdir()) == []


def test_ctl_start_names_the_bad_base(home, tmp_path, capsys):
    home.mkdir()
    os.chmod(home, 0o757)
    path = tmp_path / "lab.toml"
    path.write_text(SEED.replace('[cluster]', '[cluster]\nbase_port = 29990'))
    try:
        assert main(["start", str(path)]) == 1
    finally:
        if (home / "lab" / "supervisor.pid").exists():  # started after all: stop it, by pid
            os.chmod(home, 0o700)
            main(["stop", "-t", str(path)])
    err = capsys.readouterr().err
    assert err.startswith(f"ctl start: error: {home}: other users may write in it (mode 0757)")
    assert not (home / "lab").exists()
