"""Which nodes of a topology run on this host.

Kept apart, and light (socket, ipaddress, psutil), because ``ctl start``, ``ctl status``
and ``ctl stop`` need it before anything else and must not import the supervisor (and
with it the zygote, the node daemon and ZeroMQ) to learn it.

A host is this one if it is a loopback or unspecified address, ``localhost``, this
machine's host name, or an address of one of its interfaces. Names are never looked up in
DNS: a start must not hang on a resolver.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import TYPE_CHECKING

import psutil

if TYPE_CHECKING:
    from daemon.topology import Topology


def local_addresses() -> set[str]:
    """Names and addresses that mean this host."""
    names = {"localhost", socket.gethostname()}
    for addrs in psutil.net_if_addrs().values():
        for addr in addrs:
            if addr.family in (socket.AF_INET, socket.AF_INET6):
                names.add(addr.address.split("%")[0])
    return names


def is_local_host(host: str, local: set[str] | None = None) -> bool:
    """True if a node on ``host`` runs on this machine. Names are not looked up in DNS:
    a start must not hang on a resolver; give such nodes an address or this host's name."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None and (address.is_loopback or address.is_unspecified):
        return True
    return host in (local_addresses() if local is None else local)


def local_nodes(topology: Topology) -> list[str]:
    """The nodes this host's supervisor runs, in file order."""
    local = local_addresses()
    return [n.name for n in topology.nodes if is_local_host(n.host, local)]
