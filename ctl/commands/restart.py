"""``ctl restart NODE... [-t CLUSTER] [--json]``: stop a node's process and start it again; its queue survives.

Like ``supervisorctl restart NAME``: the cluster's supervisor sends the node's process
SIGTERM (SIGKILL after its grace period), and once it is reaped starts a new one with the
same arguments; the node recovers its queued tasks from its journal in the run
directory. Its neighbours keep serving meanwhile (a wave in flight names it missing, as
it would a dead node). Returns once every named node is RUNNING again — its new process
said ready, so it answers — printing each as it gets there; exit 1 naming a node that
is unknown (with the cluster's nodes) or did not start (with how its process ended).

With ``[cluster] nodes_per_process`` above 1 a process serves several nodes: name all of
them (the error says which); a restart takes them down together.
A node stopped (``ctl stop NODE``) or FATAL is simply started. ``--json``: as
``ctl stop NODE`` (the cluster, the action, and per node its state before and after,
pid and restarts).
"""

from __future__ import annotations

ORDER = 92
HELP = "restart nodes of the running cluster one process at a time; their queues survive"
DESCRIPTION = __doc__


def add_arguments(p):
    from ctl.nodecontrol import add_node_arguments

    add_node_arguments(p, "restart")


def run(args) -> int:
    from ctl.nodecontrol import run as act

    return act(args, "restart", args.nodes)
