"""Authentication: every cluster speaks CURVE unless its topology opts out.

Theory of operation (README.md, "Security"):

- **Keys.** Each node has a CURVE key pair, and so do the cluster's operators (``ctl``, the
  supervisor's balancer, ``ctl top``): one shared operator pair. They live in the run
  directory, ``<run>/keys/`` (mode 0700)::

      keys/operator.key            the operator's public key
      keys/operator.key_secret     its key pair (mode 0600)
      keys/nodes/<node>.key        each node's public key
      keys/nodes/<node>.key_secret each node's key pair (0600; only on the node's host)
      keys/keyring.json            the cluster they were made for and every public key

  The files are pyzmq certificates (``zmq.auth.create_certificates``). ``ctl start``
  creates whatever is missing when every node runs on this host; a cluster spread over
  several hosts gets its keys ahead of time from ``ctl keygen -t TOPOLOGY --out DIR``;
  an MPI launch makes a fresh set and every rank replaces its folder with its share
  (:func:`write_files`).
- **Keys are checked before they are used.** Every set is made with its keyring. Before
  the keys are used (:func:`ensure_keys` at ``ctl start``, :func:`preload` in the
  supervisor, :meth:`ClusterKeys.load` in ``ctl``), the keyring must name this cluster
  and every public key file must be the one it records, and each secret key must match
  its public key (the operator's at ``ctl start``, a node's as it loads it), so that keys
  copied from another cluster, or a folder mixing two sets, are refused with a
  KeyProblem naming the file, what differs and what to do, instead of a CURVE handshake
  that fails in silence. A folder of keys without a keyring (made by hand, or by an
  older echofinn) is refused the same way. The checks read no file twice: the
  supervisor checks and preloads the public keys from the copy of the folder it keeps.
- **Who may connect.** Every node listens on two sockets, each a CURVE server with a
  ZAP domain of its own (``inbox/<node>``, ``operators/<node>``; :func:`zap_domain`): the
  inbox admits only the nodes' keys, the operator socket only the operator key. One ZAP
  handler per process (pyzmq's ``zmq.auth`` thread) decides for both and gives each
  connection a User-Id: ``node:<name>`` for a node's key, ``operator`` for the operator's.
  A client without a key the socket admits never completes the handshake: nothing it
  sends reaches the node. ``ZMQ_ZAP_ENFORCE_DOMAIN`` makes libzmq refuse everyone if the
  handler is missing. Every refusal is recorded (:class:`KeyRefusal`: which node, which
  socket, the key, from which address), for the node to log and count.
- **Who may say what.** The routing id of a DEALER is chosen by its owner, so it proves
  nothing. :class:`Gate` compares it with the socket it came in on and with the
  message's User-Id property (read with ``Frame.get("User-Id")``): on the inbox, a node's
  name with that node's key and node-to-node messages only; on the operator socket, the
  operator key under any name that is no node's, with operator messages
  (:data:`OPERATOR_MESSAGES`) only. Everything else is dropped and counted; an operator is
  told why. So no client, whatever routing id it sets, can take a node's route in an
  inbox (``ROUTER_HANDOVER`` hands a name only to a client of the same role) nor be taken
  for a node.
  With ``security = "none"`` the sockets still keep the roles apart (an operator never
  displaces a node's link), but nothing proves a routing id.
- **Clients check servers too.** Every DEALER is a CURVE client that knows the public
  key of the node it connects to, so a process squatting a node's port cannot pose as
  that node either. A handshake that fails says which side refused (the socket
  monitor's events, :class:`HandshakeWatch`): ``HANDSHAKE_FAILED_AUTH`` is the server's
  ZAP refusing the client's key; repeated failures without detail, the server dropping
  the connection, are the server refusing a client that holds a key for it that is not
  its own (the client, in effect, refused the server's key). Either way a key is stale or
  foreign, and the nodes and ``ctl`` say so by name rather than reporting silence.

``security = "none"`` in ``[cluster]`` turns all of this off (plain TCP, routing ids
trusted); ``ctl start`` refuses it for a node on a non-loopback host unless
``--insecure`` is given.
"""

from __future__ import annotations

import collections
import errno
import ipaddress
import os
import stat
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import zmq
from zmq.utils import z85

from daemon.core import messages
from daemon.core.snapshot import STALE
from daemon.errors import BadInput, UserError

CURVE, NONE = "curve", "none"  # [cluster] security (daemon/topology.py)

KEYS_DIR = "keys"
NODES_DIR = "nodes"
KEYRING = "keyring.json"  # in KEYS_DIR: {"cluster", "operator", "nodes": {name: public key}}
OPERATOR = "operator"
OPERATOR_USER = "operator"
NODE_USER = "node:"  # + the node's name: node names cannot contain ':'
INBOX, OPERATORS = "inbox", "operators"  # a node's two sockets (daemon/node.py)

# The messages each role may send a node (the rest of daemon/wire.py's SCHEMA are
# answers, which only nodes send and only operators read).
# who may send what: the node core's own rule (daemon/core/messages.py), by type name
OPERATOR_MESSAGES = frozenset(messages.KIND[t] for t in messages.OPERATOR_REQUESTS)
NODE_MESSAGES = frozenset(messages.KIND[t] for t in messages.NODE_MESSAGES)


class KeyProblem(UserError):
    """A key is missing, unreadable or not private enough (the message names the file)."""


# --- key files -----------------------------------------------------------------------------


def keys_dir(run_dir: str | os.PathLike) -> Path:
    return Path(run_dir) / KEYS_DIR


def _public_file(folder: Path, who: str) -> Path:
    return folder / (f"{OPERATOR}.key" if who == OPERATOR else f"{NODES_DIR}/{who}.key")


def _secret_file(folder: Path, who: str) -> Path:
    return folder / (f"{OPERATOR}.key_secret" if who == OPERATOR else f"{NODES_DIR}/{who}.key_secret")


def _private_dir(path: Path) -> None:
    """Create ``path`` (0700) if missing; refuse a symlink, another owner or loose modes."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as exc:
        raise KeyProblem(f"{path}: cannot open the key folder: {exc.strerror} (a symbolic link or not a folder?)") from None
    try:
        st = os.fstat(fd)
    finally:
        os.close(fd)
    _check_private(path, st, "key folder", 0o077)


def _check_private(path: Path, st: os.stat_result, what: str, forbidden: int) -> None:
    if st.st_uid != os.getuid():
        raise KeyProblem(f"{path}: the {what} belongs to uid {st.st_uid}, not to you (uid {os.getuid()})")
    if st.st_mode & forbidden:
        want = "700" if stat.S_ISDIR(st.st_mode) else "600"
        raise KeyProblem(f"{path}: the {what} is open to other users (mode {stat.S_IMODE(st.st_mode):04o}); "
                         f"`chmod {want} {path}`")


def _read_key(path: Path, secret: bool) -> tuple[bytes, bytes | None]:
    """(public, secret) from a pyzmq certificate; a secret one must be a private regular file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        raise KeyProblem(f"{path}: no such key file") from None
    except OSError as exc:
        raise KeyProblem(f"{path}: cannot read the key file: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode) or st.st_size > 4096:
            raise KeyProblem(f"{path}: not a key file (a regular file of at most 4 KiB)")
        if secret:
            _check_private(path, st, "secret key", 0o077)
        text = f.read(4096)
    return _parse_key(path, text, secret)


def _parse_key(path: Path, text: bytes, secret: bool) -> tuple[bytes, bytes | None]:
    """(public, secret) from the text of a pyzmq certificate; KeyProblem naming ``path``."""
    public = secret_key = None
    for line in text.splitlines():
        key, _, value = line.strip().partition(b"=")
        value = value.strip(b" \t'\"")
        if key.strip() == b"public-key":
            public = value
        elif key.strip() == b"secret-key":
            secret_key = value
    if public is None or len(public) != 40 or (secret and (secret_key is None or len(secret_key) != 40)):
        raise KeyProblem(f"{path}: not a CURVE certificate (expected {'public-key and secret-key' if secret else 'public-key'} "
                         "of 40 Z85 characters)")
    return public, secret_key


def _write_pair(folder: Path, who: str) -> None:
    import zmq.auth

    target = _public_file(folder, who).parent
    public, secret = zmq.auth.create_certificates(target, who)
    # the folder is 0700 and ours, so nobody could open them before this
    os.chmod(secret, 0o600)
    os.chmod(public, 0o644)


def _have(folder: Path, who: str, secret: bool) -> bool:
    return (_secret_file if secret else _public_file)(folder, who).exists()


def ensure_keys(run_dir: str | os.PathLike, topology, local: list[str]) -> Path:
    """Make sure ``run_dir/keys`` holds what this host needs, and that it is this
    cluster's: every public key, the operator's key pair and the key pairs of the
    ``local`` nodes, as its keyring records them (:func:`check_keyring`), the operator's
    secret matching its public key (each node checks its own when it loads it). Missing
    pairs are created (and the keyring brought up to date) when every node runs here;
    otherwise KeyProblem says how to get them."""
    folder = keys_dir(run_dir)
    everyone = [OPERATOR, *topology.names]
    keyring = check_keyring(folder, topology)
    missing = [who for who in everyone if not _have(folder, who, who == OPERATOR or who in local)]
    if OPERATOR not in missing:
        _check_pair(folder, OPERATOR, (keyring or {}).get(OPERATOR))
    if missing:
        if len(local) < len(topology.names):
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            raise KeyProblem(
                f"cluster {topology.cluster.name} runs on several hosts and {folder} lacks the keys of {shown}; "
                f"make them once with `ctl keygen -t {topology.path} --out DIR` and copy each host's folder "
                "to that host (see README.md, Security)")
        _private_dir(folder)
        _private_dir(folder / NODES_DIR)
        for who in missing:
            _write_pair(folder, who)
        _write_keyring(folder, topology.cluster.name,
                       {who: _read_key(_public_file(folder, who), False)[0] for who in everyone})
    return folder


def _check_pair(folder: Path, who: str, public: bytes | None = None, pair: tuple | None = None) -> None:
    """KeyProblem unless ``who``'s secret key file (or its ``pair``, read already) holds
    the pair of its public key."""
    secret_file = _secret_file(folder, who)
    if public is None:
        public = _read_key(_public_file(folder, who), False)[0]
    if (pair or _read_key(secret_file, True))[0] != public:
        raise KeyProblem(f"{secret_file}: does not match {_public_file(folder, who)}; the folder mixes two sets "
                         f"of keys: {_start_afresh(folder)}")


def _start_afresh(folder: Path) -> str:
    return (f"while the cluster is not running, remove {folder} and `ctl start` makes a new set "
            "(a cluster on several hosts: `ctl keygen --out DIR`, README.md, Security)")


def _write_keyring(folder: Path, cluster: str, publics: dict[str, bytes]) -> None:
    from daemon.rundir import write_json_atomic

    write_json_atomic(folder / KEYRING, {
        "cluster": cluster,
        "operator": publics[OPERATOR].decode(),
        "nodes": {who: key.decode() for who, key in publics.items() if who != OPERATOR},
    })


def check_keyring(folder: Path, topology, files: dict[str, bytes] | None = None) -> dict[str, bytes] | None:
    """{who: public key} as ``folder``'s keyring records them, after checking that it
    names this cluster and that every public key file of the topology's nodes and the
    operator that exists is the one it records. None if the folder holds no key at all.
    With ``files`` (:func:`read_files` of the folder), they are checked instead of the
    folder. Raises KeyProblem naming the file and what differs."""
    import json

    path = folder / KEYRING
    try:
        if files is not None:
            if KEYRING not in files:
                raise FileNotFoundError
            record = json.loads(files[KEYRING])
        else:
            with open(path, "rb") as f:
                record = json.loads(f.read(1 << 24))
    except FileNotFoundError:
        if not (folder.is_dir() and any(p.is_file() for p in folder.rglob("*.key*"))):
            return None
        raise KeyProblem(f"{folder}: holds keys but no {KEYRING} naming the cluster they were made for "
                         f"(made by hand, or by an older echofinn): {_start_afresh(folder)}") from None
    except (OSError, ValueError) as exc:
        raise KeyProblem(f"{path}: cannot read the keyring: {exc}") from None
    name = topology.cluster.name
    if type(record) is not dict or type(record.get("nodes")) is not dict or type(record.get("operator")) is not str:
        raise KeyProblem(f"{path}: not a keyring (expected cluster, operator and nodes): {_start_afresh(folder)}")
    if record.get("cluster") != name:
        raise KeyProblem(f"{folder}: these are the keys of cluster {record.get('cluster')!r}, not of {name} "
                         f"(copied from another cluster's run directory?): {_start_afresh(folder)}")
    recorded = {OPERATOR: record["operator"], **record["nodes"]}
    keys = {}
    for who in (OPERATOR, *topology.names):
        public_file = _public_file(folder, who)
        if files is not None:
            text = files.get(str(public_file.relative_to(folder)))
            if text is None:
                continue
            public = _parse_key(public_file, text, False)[0]
        elif not public_file.exists():
            continue
        else:
            public = _read_key(public_file, False)[0]
        if recorded.get(who) != public.decode():
            said = f"records another key for {who}" if who in recorded else f"has no key for {who}"
            raise KeyProblem(f"{public_file}: not the key of this set ({path} {said}); the folder mixes two sets "
                             f"of keys: {_start_afresh(folder)}")
        keys[who] = public
    return keys


def keygen(topology, targets: dict[Path, list[str]]) -> None:
    """One fresh set of keys, shared out: each folder of ``targets`` (a ``keys`` folder,
    which must not exist yet; its parents are made private) gets every public key, the
    operator's pair, and the pairs of the nodes it maps to."""
    import shutil
    import tempfile

    for folder in targets:
        if folder.exists():
            raise UserError(f"{folder}: already exists; choose another --out (keys are never replaced in place, "
                            "and a cluster may be running with these)")
    scratch = next(iter(targets)).parent
    scratch.mkdir(mode=0o700, parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch, prefix=".keygen-") as tmp:
        master = Path(tmp) / KEYS_DIR
        _private_dir(master)
        _private_dir(master / NODES_DIR)
        for who in [OPERATOR, *topology.names]:
            _write_pair(master, who)
        _write_keyring(master, topology.cluster.name,
                       {who: _read_key(_public_file(master, who), False)[0] for who in [OPERATOR, *topology.names]})
        for folder, names in targets.items():
            folder.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            _private_dir(folder)
            _private_dir(folder / NODES_DIR)
            shutil.copyfile(master / KEYRING, folder / KEYRING)
            for who in [OPERATOR, *topology.names]:
                shutil.copyfile(_public_file(master, who), _public_file(folder, who))
                if who == OPERATOR or who in names:
                    fd = os.open(_secret_file(folder, who), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
                    with os.fdopen(fd, "wb") as f:
                        f.write(_secret_file(master, who).read_bytes())


def share_files(topology) -> dict[str, bytes]:
    """A fresh set of the cluster's key files (every pair and the keyring) as {path
    inside ``keys/``: contents}: what an MPI launch hands every rank (daemon/mpi.py)
    before each keeps what it needs (:func:`for_host`, :func:`write_files`)."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="echofinn-keys-") as tmp:
        folder = Path(tmp) / KEYS_DIR
        keygen(topology, {folder: list(topology.names)})
        return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def for_host(files: dict[str, bytes], local: list[str]) -> dict[str, bytes]:
    """The part of :func:`share_files`' set one host keeps: the keyring, every public
    key, the operator's pair and the pairs of its ``local`` nodes."""
    secrets = {str(_secret_file(Path(), who)) for who in (OPERATOR, *local)}
    return {path: data for path, data in files.items() if not path.endswith("_secret") or path in secrets}


def read_files(run_dir: str | os.PathLike) -> dict[str, bytes]:
    """The key files in ``run_dir/keys``, as :func:`share_files` gives them: what the
    supervisor keeps to write them again if they go or change while it runs."""
    folder = keys_dir(run_dir)
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def write_files(run_dir: str | os.PathLike, files: dict[str, bytes]) -> Path:
    """Make ``run_dir/keys`` hold exactly ``files`` (as :func:`read_files` gives them;
    secret files 0600, folders 0700), whatever it held before: they are written to a new
    folder beside it, which then takes its place, so no key of an earlier set survives
    and no reader sees half of the new one."""
    import shutil

    folder = keys_dir(run_dir)
    if folder.is_symlink():
        raise KeyProblem(f"{folder}: is a symbolic link; echofinn does not follow links here (remove it)")
    fresh = folder.with_name(f".{KEYS_DIR}.{os.getpid()}.new")
    old = folder.with_name(f".{KEYS_DIR}.{os.getpid()}.old")
    for leftover in folder.parent.glob(f".{KEYS_DIR}.*"):  # of this call, or of a writer killed halfway
        if leftover.name.endswith((".new", ".old")) and leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover, ignore_errors=True)
    _private_dir(fresh)
    _private_dir(fresh / NODES_DIR)
    for name, data in files.items():
        path = fresh / name
        if path.parent != fresh and path.parent != fresh / NODES_DIR:
            raise KeyProblem(f"{folder}: {name!r} is no key file's name")
        secret = name.endswith("_secret")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600 if secret else 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    try:
        os.rename(folder, old)
    except FileNotFoundError:
        old = None
    os.rename(fresh, folder)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return folder


@dataclass(frozen=True)
class ClusterKeys:
    """The keys one process holds: every public key, and its own key pair."""

    folder: Path
    nodes: dict[str, bytes]  # node -> public key (Z85)
    operator: bytes
    own_public: bytes
    own_secret: bytes

    @classmethod
    def load(cls, run_dir: str | os.PathLike, topology, who: str) -> "ClusterKeys":
        """Keys for ``who``: a node's name or :data:`OPERATOR`. Raises KeyProblem.

        The public keys come from :func:`preload`'s copy if this process (or the
        supervisor it was forked from) made one for this folder and topology; otherwise
        every node's public key file is read. Only ``who``'s own pair is always read."""
        folder = keys_dir(run_dir)
        if not folder.is_dir():
            raise KeyProblem(f"{folder}: no keys for cluster {topology.cluster.name}; `ctl start` makes them "
                             f"(or `ctl keygen -t {topology.path or 'TOPOLOGY'}`)")
        publics = _preloaded.get((str(folder), tuple(topology.names)))
        if publics is None:
            publics = _read_publics(folder, topology)
        nodes, operator, _ = publics
        pair = _read_key(_secret_file(folder, who), True)
        _check_pair(folder, who, operator if who == OPERATOR else nodes[who], pair)
        return cls(folder, nodes, operator, *pair)

    def user_ids(self) -> dict[bytes, str]:
        """Public key (32 raw bytes, as ZAP gives it) -> User-Id."""
        publics = _preloaded.get((str(self.folder), tuple(self.nodes)))
        if publics is not None and publics[0] == self.nodes and publics[1] == self.operator:
            return publics[2]
        return _user_ids(self.nodes, self.operator)


def _user_ids(nodes: dict[str, bytes], operator: bytes) -> dict[bytes, str]:
    ids = {z85.decode(key): NODE_USER + name for name, key in nodes.items()}
    ids[z85.decode(operator)] = OPERATOR_USER
    return ids


def _read_publics(folder: Path, topology, files: dict[str, bytes] | None = None
                  ) -> tuple[dict[str, bytes], bytes, dict[bytes, str] | None]:
    checked = check_keyring(folder, topology, files) or {}  # this cluster's keys, of one set

    def public(who: str) -> bytes:
        return checked[who] if who in checked else _read_key(_public_file(folder, who), False)[0]  # no such file

    return {name: public(name) for name in topology.names}, public(OPERATOR), None


# (folder, node names) -> (node -> public key, operator's public key, user ids)
_preloaded: dict[tuple[str, tuple[str, ...]], tuple[dict[str, bytes], bytes, dict[bytes, str]]] = {}


def preload(run_dir: str | os.PathLike, topology, files: dict[str, bytes] | None = None) -> None:
    """Read the cluster's public keys once, for :meth:`ClusterKeys.load` in this process
    and in the processes it forks. The supervisor calls it before forking its nodes
    (daemon/zygote.py): each node would otherwise read every node's public key file and
    decode every key again — a million files and a second of CPU per thousand nodes, at
    a thousand nodes. ``files``: the folder as :func:`read_files` gave it, so that it is
    not read again. Raises KeyProblem like :meth:`ClusterKeys.load`."""
    folder = keys_dir(run_dir)
    nodes, operator, _ = _read_publics(folder, topology, files)
    _preloaded[(str(folder), tuple(topology.names))] = (nodes, operator, _user_ids(nodes, operator))


# --- sockets ---------------------------------------------------------------------------


def zap_domain(role: str, node: str) -> str:
    """The ZAP domain of node ``node``'s socket ``role`` (:data:`INBOX` or :data:`OPERATORS`)."""
    return f"{role}/{node}"


def make_server(sock: zmq.Socket, keys: ClusterKeys, role: str, node: str) -> None:
    """Make node ``node``'s socket ``role`` a CURVE server; call before bind."""
    sock.curve_secretkey = keys.own_secret
    sock.curve_publickey = keys.own_public
    sock.curve_server = True
    sock.zap_domain = zap_domain(role, node).encode()
    sock.setsockopt(zmq.ZAP_ENFORCE_DOMAIN, 1)  # no ZAP handler: nobody gets in


def make_client(sock: zmq.Socket, keys: ClusterKeys, server: str) -> None:
    """Make a DEALER a CURVE client of node ``server`` (either of its sockets); call before connect."""
    sock.curve_secretkey = keys.own_secret
    sock.curve_publickey = keys.own_public
    sock.curve_serverkey = keys.nodes[server]


# The monitor events of a DEALER's handshakes (daemon/node.py, daemon/operator.py).
HANDSHAKE_EVENTS = (zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_HANDSHAKE_FAILED_AUTH
                    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL)


def handshake_refusal(event: int, client: str, server: str) -> tuple[str, str] | None:
    """(who refused, whose key) for a failed handshake ``event`` of ``client``'s DEALER
    connected to ``server``; None for a handshake that succeeded. Measured with libzmq
    4.3.5: a client key the server's ZAP refuses gives the client FAILED_AUTH (status
    400), once (libzmq does not retry after an ERROR command); a server whose key is not
    the one the client holds cannot open the client's HELLO and drops the connection:
    FAILED_NO_DETAIL on the client (errno EPIPE or ECONNRESET), retried every 100 ms."""
    if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
        return None
    if event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
        return server, client
    return client, server


class HandshakeWatch:
    """What one client's DEALERs' handshake events say about its links, peer by peer
    (daemon/node.py for a node's, daemon/operator.py for the operator's).

    A ZAP refusal (FAILED_AUTH) or a protocol failure is a refused key at once. A failure
    "without detail" is also what a peer killed in mid-handshake gives, so it counts as
    a refused key only after :attr:`AFTER` in a row with the dropped-connection errno a
    server gives a HELLO it cannot open (each retried 100 ms later by libzmq); a
    handshake that succeeds clears the peer."""

    AFTER = 3
    DROPPED = frozenset({errno.EPIPE, errno.ECONNRESET})

    def __init__(self, client: str):
        self.client = client
        self.refused: dict[str, tuple[str, str]] = {}  # peer -> (who refused, whose key)
        self._streak: dict[str, int] = {}

    def event(self, peer: str, event: int, value: int) -> str | None:
        """Take one monitor event of the DEALER to ``peer``; returns "failed" for a failed
        handshake about a key, "refused" when that makes the link newly refused,
        "accepted" when a handshake succeeds on a link that was refused, else None."""
        pair = handshake_refusal(event, self.client, peer)
        if pair is None:
            self._streak.pop(peer, None)
            return "accepted" if self.refused.pop(peer, None) is not None else None
        if event == zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL:
            if value not in self.DROPPED:
                return None  # a timeout or a local error: no word on keys
            self._streak[peer] = streak = self._streak.get(peer, 0) + 1
            if streak < self.AFTER:
                return "failed"
        if self.refused.get(peer) == pair:
            return "failed"
        self.refused[peer] = pair
        return "refused"

    def read(self, peer: str, monitor: zmq.Socket):
        """Every event ``monitor`` (the DEALER to ``peer``'s) holds, taken in; yields
        what :meth:`event` says of each."""
        from zmq.utils.monitor import parse_monitor_message

        while True:
            try:
                message = parse_monitor_message(monitor.recv_multipart(zmq.DONTWAIT))
            except zmq.Again:
                return
            yield self.event(peer, message["event"], message["value"])


class KeyRefusal(NamedTuple):
    """One key a node's ZAP handler refused: at node ``node``'s socket ``role``, the
    key ``key`` (Z85) from ``address``; ``owner`` names whose key it is if the cluster
    knows it (``node:<name>`` or ``operator``: a key at the wrong socket), else None."""

    node: str
    role: str
    address: str
    key: str
    owner: str | None

    def text(self) -> str:
        where = "inbox" if self.role == INBOX else "operator port"
        if self.owner == OPERATOR_USER:
            who, why = "the operator key", "operators connect to the operator port"
        elif self.owner is not None:
            who, why = f"node {self.owner[len(NODE_USER):]}'s key", "nodes connect to the inbox"
        else:
            who, why = f"an unknown key {self.key[:8]}…", STALE
        return f"{self.node} refused {who} from {self.address} at its {where} ({why})"


def recv_with_user_id(sock: zmq.Socket, flags: int = 0) -> tuple[list[bytes], str | None]:
    """One message from a ROUTER and the User-Id the ZAP handler gave its connection.

    The property lives on libzmq's message, so the routing id frame is received as a
    Frame (``copy=False``); the body too, whose ``more`` flag saves asking the socket.
    Measured (BENCHMARKS.md, "What CURVE costs") no dearer than ``recv_multipart()``;
    ``recv_multipart(copy=False)`` cost twice as much. Raises zmq.Again like ``recv``
    (``flags``: zmq.DONTWAIT, or 0 to block)."""
    ident = sock.recv(flags, copy=False)
    user_id = ident.get("User-Id")
    body = sock.recv(copy=False)
    frames = [ident.bytes, body.bytes]
    if body.more:  # not one of ours: handle() counts it as garbage
        frames += sock.recv_multipart()
    return frames, user_id


def start_authenticator(ctx: zmq.Context, keys: ClusterKeys, served: list[str]):
    """Start the ZAP handler thread of this process, which serves the nodes ``served``;
    returns it (``.stop()`` it before the context is terminated). Its ``refusals`` (a deque, filled by the handler's thread,
    read by the node's loop) holds a :class:`KeyRefusal` for every key it refused."""
    from zmq.auth.thread import ThreadAuthenticator

    ids = keys.user_ids()
    node_keys = set(keys.nodes.values())  # Z85, as the callback gets them
    owners = {key: NODE_USER + name for name, key in keys.nodes.items()}
    owners[keys.operator] = OPERATOR_USER
    admitted = {INBOX: node_keys, OPERATORS: {keys.operator}}
    refusals: collections.deque = collections.deque(maxlen=1024)
    address = [""]  # of the request being decided (one at a time, on the handler's thread)

    class ClusterAuthenticator(ThreadAuthenticator):
        def curve_user_id(self, client_public_key: bytes) -> str:
            return ids[client_public_key]  # raw key, admitted below

        async def handle_zap_message(self, msg: list[bytes]) -> None:
            address[0] = msg[3].decode(errors="replace") if len(msg) > 3 else "?"
            await super().handle_zap_message(msg)

    class Admit:
        @staticmethod
        def callback(domain: str, z85_key: bytes) -> bool:
            role, _, node = domain.partition("/")
            if z85_key in admitted.get(role, ()):
                return True
            refusals.append(KeyRefusal(node, role, address[0], z85_key.decode(errors="replace"), owners.get(z85_key)))
            return False

    auth = ClusterAuthenticator(ctx)
    for node in served:  # one domain per socket: a refusal names the node and the socket
        for role in (INBOX, OPERATORS):
            auth.configure_curve_callback(zap_domain(role, node), credentials_provider=Admit())  # other domains: denied
    auth.refusals = refusals
    auth.start()
    return auth


# --- who may say what ------------------------------------------------------------------------


@lru_cache(maxsize=16)
def node_idents(names: tuple[str, ...]) -> dict[bytes, str]:
    """Routing id -> the User-Id a node's key gets, for every node: one table per process
    (read only), made before the supervisor forks its nodes (daemon/node.py ``warm``)."""
    return {name.encode(): NODE_USER + name for name in names}


class Gate:
    """Decides whether a message may be handled, from the socket it came in on, its
    routing id, its User-Id (None without CURVE: then only the socket and the routing id
    are checked) and its type."""

    def __init__(self, node_names, authenticated: bool = True):
        self.node_idents = node_idents(tuple(node_names))
        self.authenticated = authenticated

    def refusal(self, role: str, user_id: str | None, ident: bytes, kind: str, shown: str | None = None) -> str | None:
        """None if the message may be handled, else why not (said to an operator).
        ``shown``: what the text calls the message (a wave frame by its wave message
        type, e.g. ``echo``; default ``kind``)."""
        said = kind if shown is None else shown
        claimed = self.node_idents.get(ident)
        if role == OPERATORS:
            if claimed is not None:
                return (f"routing id {ident.decode()!r} is a node's name: an operator may take any routing id "
                        "but a node's (a node's name is its own, at every node's inbox)")
            if self.authenticated and user_id != OPERATOR_USER:
                return f"key {user_id!r} is not the operator key"
            if kind not in OPERATOR_MESSAGES:
                return f"an operator cannot send {said!r}"
            return None
        if claimed is None:
            return (f"routing id {ident[:64]!r} is no node's: a node's inbox takes nodes only; "
                    "operators connect to the node's operator port")
        if self.authenticated and claimed != user_id:
            return f"key {user_id!r} cannot speak as {ident!r}"
        if kind not in NODE_MESSAGES:
            return f"a node cannot send {said!r}"
        return None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_mode(topology, insecure: bool) -> None:
    """BadInput if the cluster turns authentication off for a node on a non-loopback host
    without ``insecure``."""
    if topology.cluster.security != NONE or insecure:
        return
    exposed = [n for n in topology.nodes if not is_loopback(n.host)]
    if exposed:
        n = exposed[0]
        raise BadInput(f"{topology.path}: [cluster] security = \"none\" leaves node {n.name} on host {n.host} "
                       "open to anyone on its network; use security = \"curve\" (the default), or pass --insecure "
                       "if you mean it")
