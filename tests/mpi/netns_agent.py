#!/usr/bin/env python3
"""The MPI tests' launcher agent: mpiexec calls it as it would call ssh
(``AGENT [-x] HOST COMMAND...``); it runs COMMAND in HOST's network namespace under HOST's
host name, replacing itself (no process in between), from the map in $ECHOFINN_TEST_NETNS
(``ADDR=NAMESPACE=HOSTNAME,...``, written by tests/mpi/netns.py). An unknown host is
refused: the agent reaches only namespaces the test made."""

import os
import shlex
import sys


def main(argv: list[str]) -> int:
    args = [a for a in argv if a != "-x"]
    if len(args) < 2:
        print(f"netns_agent: usage: AGENT [-x] HOST COMMAND..., got {argv}", file=sys.stderr)
        return 2
    host, command = args[0], " ".join(args[1:])  # like ssh: the remote shell parses the words
    hosts = {}
    for entry in os.environ.get("ECHOFINN_TEST_NETNS", "").split(","):
        if entry.count("=") == 2:
            addr, ns, name = entry.split("=")
            hosts[addr] = hosts[name] = (ns, name)
    if host not in hosts:
        print(f"netns_agent: {host} is not one of the test's hosts {sorted(hosts)}", file=sys.stderr)
        return 255
    ns, name = hosts[host]
    os.execvp("ip", ["ip", "netns", "exec", ns, "unshare", "--uts", "sh", "-c",
                     f"hostname {shlex.quote(name)} && exec {command}"])


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
