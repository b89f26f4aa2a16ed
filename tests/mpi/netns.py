"""Three "machines" on one kernel for the MPI tests: network namespaces joined by a
bridge, each with its own host name, and a launcher agent that enters them.

Safety (the project's rule for multi-host tests):

1. Before anything else, a blackhole route for the test subnet in the root namespace:
   nothing this machine's own stack sends to the subnet can leave, whatever happens.
2. The bridge lives in a fourth namespace (the "switch"), so the root namespace has no
   link on the subnet at all; every process of the test (mpiexec, ranks, nodes, ctl)
   runs inside one of the three host namespaces.
3. Only the addresses created here (``10.<a>.<b>.1-3``) are ever targeted.
4. :meth:`Lab.close` deletes the namespaces, the route and the per-namespace files, and
   runs on failure too (the fixture's finalizer); it is safe to call twice.

``ip netns exec NS`` bind-mounts ``/etc/netns/NS/hosts`` over ``/etc/hosts``, which is
how each namespace resolves the other hosts' names; ``unshare --uts`` gives each process
started in a namespace that namespace's host name.
"""

from __future__ import annotations

import os
import random
import shlex
import shutil
import subprocess
from pathlib import Path

AGENT = Path(__file__).with_name("netns_agent.py")
HOSTS_ENV = "ECHOFINN_TEST_NETNS"  # "ADDR=NS=HOSTNAME,..." for the agent


def unavailable() -> str | None:
    """Why namespaces cannot be made here, or None."""
    if os.geteuid() != 0:
        return "needs root: creates network namespaces, a bridge and a route"
    for tool in ("ip", "unshare"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed (iproute2, util-linux)"
    probe = f"efprobe{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"`ip netns add` does not work here: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "delete", probe], capture_output=True)
    return None


def open_lab(tag: str, first_octet: int) -> "Lab":
    """A :class:`Lab` opened on a subnet ``10.<first_octet>.<random>.0/24`` that no other
    run of a test holds (its blackhole route exists already: tried again elsewhere).
    The caller closes it (:meth:`Lab.close`), on failure too."""
    for _ in range(5):
        candidate = Lab(tag, (first_octet, random.randint(1, 254)))
        try:
            return candidate.open()
        except BaseException as exc:
            candidate.close()  # whatever part of it was made
            if not (isinstance(exc, subprocess.CalledProcessError) and "File exists" in (exc.stderr or "")):
                raise
    raise RuntimeError(f"no free test subnet in 10.{first_octet}.0.0/16")


def lab_fixture(what: str, tag: str, first_octet: int):
    """The body of a pytest fixture giving an open :class:`Lab` (skipped with the reason
    when namespaces cannot be made here), closed afterwards, on failure too:
    ``yield from netns.lab_fixture(...)``."""
    import pytest

    why = unavailable()
    if why:
        pytest.skip(f"{what}: {why}")
    made = open_lab(tag, first_octet)
    try:
        yield made
    finally:
        problems = made.close()
    assert not problems, problems


def run(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, text=True)


class Lab:
    """Three host namespaces h1..h3 (addresses .1-.3 on eth0, host names) and a switch."""

    def __init__(self, tag: str, subnet_octets: tuple[int, int]):
        a, b = subnet_octets
        self.subnet = f"10.{a}.{b}.0/24"
        self.tag = tag
        self.switch = f"ef{tag}sw"
        self.hosts = [(f"10.{a}.{b}.{i}", f"ef{tag}h{i}", f"efhost{i}-{tag}") for i in (1, 2, 3)]
        self.route = False
        self.made: list[str] = []

    @property
    def addresses(self) -> list[str]:
        return [addr for addr, _, _ in self.hosts]

    def open(self) -> "Lab":
        run("ip", "route", "add", "blackhole", self.subnet)  # first of all (see the docstring)
        self.route = True
        run("ip", "netns", "add", self.switch)
        self.made.append(self.switch)
        run("ip", "-n", self.switch, "link", "add", "br0", "type", "bridge")
        run("ip", "-n", self.switch, "link", "set", "br0", "up")
        hosts_file = "127.0.0.1 localhost\n" + "".join(f"{addr} {name}\n" for addr, _, name in self.hosts)
        for i, (addr, ns, name) in enumerate(self.hosts, 1):
            run("ip", "netns", "add", ns)
            self.made.append(ns)
            etc = Path("/etc/netns") / ns
            etc.mkdir(parents=True, exist_ok=True)
            (etc / "hosts").write_text(hosts_file)
            run("ip", "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", f"p{i}", "netns", self.switch)
            run("ip", "-n", self.switch, "link", "set", f"p{i}", "master", "br0", "up")
            run("ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", "eth0")
            run("ip", "-n", ns, "link", "set", "eth0", "up")
            run("ip", "-n", ns, "link", "set", "lo", "up")
        return self

    def close(self) -> list[str]:
        """Delete everything made; returns what could not be deleted."""
        problems = []
        for ns in reversed(self.made):
            done = subprocess.run(["ip", "netns", "delete", ns], capture_output=True, text=True)
            if done.returncode != 0:
                problems.append(f"ip netns delete {ns}: {done.stderr.strip()}")
            shutil.rmtree(Path("/etc/netns") / ns, ignore_errors=True)
        self.made = []
        if self.route:
            done = subprocess.run(["ip", "route", "del", "blackhole", self.subnet], capture_output=True, text=True)
            if done.returncode != 0:
                problems.append(f"ip route del blackhole {self.subnet}: {done.stderr.strip()}")
            self.route = False
        return problems

    def agent_env(self) -> str:
        return ",".join(f"{addr}={ns}={name}" for addr, ns, name in self.hosts)

    def inside(self, i: int, command: list[str]) -> list[str]:
        """``command`` run in host namespace ``i`` (1-3) under its host name."""
        _, ns, name = self.hosts[i - 1]
        return ["ip", "netns", "exec", ns, "unshare", "--uts", "sh", "-c",
                f"hostname {shlex.quote(name)} && exec \"$@\"", "sh", *command]

    def launcher_args(self) -> list[str]:
        """mpiexec's options: the agent as its ssh, the three hosts by address."""
        return ["-launcher", "ssh", "-launcher-exec", str(AGENT), "-localhost", self.hosts[0][0], "-hosts", ",".join(self.addresses)]
