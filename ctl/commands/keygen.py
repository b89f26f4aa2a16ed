"""``ctl keygen [-t TOPOLOGY.toml] [--out DIR] [--json]``: make a cluster's CURVE keys ahead of time.

``ctl start`` makes the keys by itself when every node runs on this host; a cluster on
several hosts needs them made once and shared out (the README's "Security" section says how).

Without ``--out`` (every node on this host): writes ``RUN_DIR/keys``, the cluster's run
directory. It refuses (exit 1) while the cluster runs: its nodes hold the keys there, and
new ones would cut them off from restarted nodes and from ``ctl``; stop it first. It
refuses too if keys are already there: remove them, while the cluster is stopped, to make
new ones.

With ``--out DIR``: writes ``DIR/HOST/CLUSTER/keys`` for every host of the topology, each
with every node's public key, the operator's key pair (ctl and the balancer run there)
and the key pairs of that host's nodes only. Copy ``DIR/HOST/`` to HOST as its
``ECHOFINN_HOME`` (so the keys land in ``$ECHOFINN_HOME/CLUSTER/keys``), modes kept.
Secret key files are 0600, folders 0700. ``--json`` prints ``{"cluster", "keys": {host: folder}}``.
"""

ORDER = 82
HELP = "make a cluster's CURVE keys ahead of time (for a cluster on several hosts: one folder per host)"
DESCRIPTION = __doc__


def add_arguments(p):
    from ctl.common import add_json_option, add_topology_option

    add_topology_option(p)
    p.add_argument(
        "--out", metavar="DIR", help="write one folder per host under DIR instead of this host's run directory"
    )
    add_json_option(p)


def run(args) -> int:
    from pathlib import Path

    from ctl.common import resolve_topology
    from ctl.output import print_json
    from daemon import rundir, security
    from daemon.errors import BadInput, UserError

    topology = resolve_topology(args)
    name = topology.cluster.name
    hosts: dict[str, list[str]] = {}
    for node in topology.nodes:
        hosts.setdefault(node.host, []).append(node.name)
    if args.out:
        out = Path(args.out).absolute()
        for host in hosts:
            if host.startswith(".") or "/" in host:
                raise BadInput(f"{topology.path}: host {host!r} cannot name a folder under {out}")
        targets = {out / host / name / security.KEYS_DIR: names for host, names in hosts.items()}
    else:
        if len(hosts) > 1:
            raise BadInput(
                f"cluster {name} runs on {len(hosts)} hosts ({', '.join(hosts)}): "
                "pass --out DIR to get one folder of keys per host"
            )
        folder = security.keys_dir(rundir.cluster_dir(name, create=True))
        pid = rundir.supervisor_pid(name)
        if pid is not None:
            raise UserError(
                f"cluster {name} is running (supervisor pid {pid}) with the keys in {folder}: its nodes "
                "hold them, and new keys would cut restarted nodes and ctl off from them; "
                f"stop it first (`ctl stop -t {topology.path}`), then make new keys"
            )
        if folder.exists():
            raise UserError(
                f"{folder}: cluster {name} has keys already (it is not running); "
                "to replace them, remove that folder and run `ctl keygen` again"
            )
        targets = {folder: list(topology.names)}
    security.keygen(topology, targets)
    shown = dict(zip(hosts, map(str, targets)))
    if args.json:
        print_json({"cluster": name, "keys": shown})
        return 0
    for host, where in shown.items():
        print(f"{host}: {where}")
    print(
        f"keys of cluster {name}: {len(topology.names)} node pairs and one operator pair, "
        "each host's folder holding only its own nodes' secret keys"
    )
    return 0
