"""Run one cluster across machines under an MPI launcher: ``mpiexec``, ``mpirun``, ``srun``.

``python -m daemon.mpi TOPOLOGY --publish FILE [--advertise ADDR] [--ports any|file]``,
started once per rank by the launcher (without one it runs as a single rank)::

    mpiexec -n 3 python -m daemon.mpi topologies/demo.toml --publish live-demo.toml
    srun -K -n 16 --mpi=pmi2 python -m daemon.mpi big.toml --publish live-big.toml
    ctl echo -t live-demo.toml

Theory of operation:

- MPI starts the processes and tells them apart; ZeroMQ does the rest. Each rank is an
  ordinary :class:`daemon.cluster.supervisor.Supervisor` (same start, reaping, stop and death
  signals as ``ctl start``) given an explicit share of the nodes: rank r of K runs the
  r-th of K contiguous blocks of the topology's nodes in file order. The share does not
  depend on hosts, so several ranks may share one machine.
- Endpoints are real, not assumed. Before anything is exchanged each rank reserves two
  ports for each of its nodes, its inbox's and its operator socket's (daemon/node.py),
  by binding TCP sockets on the address it advertises (port 0 = any free port, or the
  file's ports with ``--ports file``). The reservation is held
  (bound with SO_REUSEADDR, not listening, so the node's ZeroMQ ROUTER can still bind
  the same port) until the nodes say they are bound. One allgather then carries every
  rank's host, address, ports and any error; each rank writes the same resolved topology
  (every node's host, port and operator_port replaced) to its run directory and starts its nodes on
  it. One rank's error stops every rank, and rank 0 prints them all.
- A launcher that started several tasks without telling MPI about them (``srun`` without
  ``--mpi=pmi2`` on a site whose ``MpiDefault`` is ``none``: every task is rank 0 of 1)
  is refused before anything starts, with exit 2: each task would otherwise run the
  whole cluster on its own. Slurm's ``SLURM_STEP_NUM_TASKS`` says how many tasks the step
  has; a batch script's own shell has none, so ``python -m daemon.mpi`` run there
  directly is one rank, as anywhere else.
- The advertised address is, in this order: ``--advertise ADDR``; the environment
  variable ``ECHOFINN_ADVERTISE``; 127.0.0.1 if the launcher put every rank on this
  machine (MPI's shared-memory split spans the world); the IPv4 address of the
  interface that holds the default route (read from /proc/net/route: no packet sent,
  no name looked up); the first IPv4 address of an interface that is up and not a
  loopback, in name order. A machine has several interfaces: when the guess is wrong,
  say which with the option or the variable. An address that means this machine only
  (loopback) is refused when the ranks run on several machines.
- Once every rank's nodes are ready (a second gather of yes/no), rank 0 writes the
  resolved topology to FILE (atomically), so ``ctl echo|submit|finn|rebalance -t FILE``
  work from any machine that reaches the addresses (``ctl status|top|stop`` on rank 0's,
  see the run directories below). FILE is removed when the cluster stops. Rank 0 alone runs the balancing rounds (``rebalance_interval``).
- Then MPI goes quiet: no collective runs while the cluster serves. A thread waits for
  a STOP message from any rank with a sleeping test (one MPI_Test every
  :data:`WATCH_INTERVAL` seconds, never a spinning MPI_Wait), so an idle rank uses no
  CPU. Every wait on MPI in this module sleeps between tests in the same way, because
  MPICH's blocking calls spin and would steal the CPU that starting nodes need.
- Stopping. A rank stops on SIGTERM/SIGINT/SIGHUP (``mpiexec`` forwards SIGTERM to every
  rank; ``scancel`` signals every process of the job step, nodes and burners too, and a
  node stops once however often it is signalled (daemon/node.py); a rank whose launcher
  process dies gets SIGTERM through PR_SET_PDEATHSIG), or on a STOP from another rank. It
  stops its nodes like any supervisor, sends STOP to every other rank once and waits, sleeping,
  for theirs (K-1 messages each way: that is the closing barrier), then finalizes MPI.
  A rank that is killed outright takes its nodes with it (their death signal) and the
  launcher stops the other ranks: mpiexec (hydra) does so by itself, srun when asked
  with ``-K``/``--kill-on-bad-exit=1`` (without it Slurm lets the other ranks run on).
  The survivors wait at most :data:`LEAVE_TIMEOUT` for the dead rank's STOP, then exit
  without MPI_Finalize.
- MPI's shared-memory files (/dev/shm/mpich_shm_*; :data:`SHM_PREFIXES` also names Open
  MPI's, not tried) would be left behind by killed ranks. After the first barrier
  (every rank out of MPI_Init) and again after the last collective of the start, each
  rank unlinks the /dev/shm files it has mapped: the mappings stay valid, and the
  memory is freed when the last rank exits, however it exits. A rank killed inside
  MPI_Init can still leave one behind.
- CURVE keys travel with the launch: rank 0 makes a fresh set (daemon/security.py
  ``share_files``) and one allgather hands it to every rank, which keeps the keyring,
  the public keys, the operator's pair and its own nodes' pairs (MPI's own transport
  carries them: the launch is as trusted as the launcher).

Run directories, on each rank's machine: rank 0 uses the cluster's usual one,
``$ECHOFINN_HOME/<cluster>/``, so that on its machine ``ctl status|top|stop -t FILE``
find it (``ctl stop`` stops rank 0, whose STOP stops the others); rank r > 0 uses
``$ECHOFINN_HOME/<cluster>.rank-<r>/``. Each holds the supervisor log, the node logs,
cluster.json, the resolved topology and the keys.

A launch writes everything it depends on, whatever an earlier ``ctl start`` or launch of
the cluster left there (one that stopped, crashed or ran other ranks): each rank first
refuses a run directory whose supervisor still runs (``ctl start``'s, or a rank of
another launch: daemon/rundir.py ``folder_supervisor_pid``), then replaces its keys
folder with the launch's (``security.write_files``: no key of an earlier set survives),
writes the resolved topology and, as any supervisor, clears the journals of its nodes
and writes cluster.json and its pid file. Rank 0 removes a published FILE left by a
launch that did not stop (a published topology whose cluster is not running) before the
start, so nobody reads stale endpoints in it, and refuses a FILE that is not one.
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path

import psutil

from daemon import rundir, security
from daemon.errors import BadInput, UserError
from daemon.lifecycle import PR_SET_PDEATHSIG, _prctl
from daemon.cluster.record import ClusterState
from daemon.cluster.supervisor import STOP_GRACE, Supervisor
from daemon.topology import Topology, dumps, load

ADVERTISE_ENV = "ECHOFINN_ADVERTISE"
WATCH_INTERVAL = 0.5  # seconds between two tests for a STOP while the cluster serves
POLL_FIRST, POLL_MAX = 0.001, 0.05  # sleeping waits: first pause, longest pause
LEAVE_TIMEOUT = STOP_GRACE + 5.0  # seconds to wait for the other ranks' STOP at the end
STOP_TAG = 11
SHM_DIR = "/dev/shm"
SHM_PREFIXES = ("mpich_shm_", "vader_segment", "sm_segment", "psm2_shm")


# --- pure parts: the split, the address, the resolved topology ------------------------------


def share(names: tuple[str, ...] | list[str], rank: int, size: int) -> list[str]:
    """Rank ``rank``'s nodes: the rank-th of ``size`` contiguous blocks, sizes differing
    by at most one (the first ``len % size`` blocks are the larger)."""
    n = len(names)
    return list(names[rank * n // size:(rank + 1) * n // size])


def default_route_interface(route_table: str) -> str | None:
    """The interface of the IPv4 default route in /proc/net/route's text, or None."""
    for line in route_table.splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 8 and fields[1] == "00000000" and fields[7] == "00000000":
            return fields[0]
    return None


def guess_address(route_table: str, addrs: dict, stats: dict) -> str | None:
    """The documented guess (module docstring), from /proc/net/route's text and psutil's
    ``net_if_addrs()`` and ``net_if_stats()``: the default route's interface, else the
    first up non-loopback interface in name order. None if there is no such address."""

    def ipv4(iface: str) -> str | None:
        for addr in addrs.get(iface, ()):
            if addr.family == socket.AF_INET and not ipaddress.ip_address(addr.address).is_loopback:
                return addr.address
        return None

    iface = default_route_interface(route_table)
    if iface is not None and ipv4(iface):
        return ipv4(iface)
    for iface in sorted(addrs):
        stat = stats.get(iface)
        if stat is not None and stat.isup and ipv4(iface):
            return ipv4(iface)
    return None


def choose_address(option: str | None, env: dict, one_machine: bool) -> tuple[str, str]:
    """(address, where it came from), in the order of the module docstring. Raises
    BadInput for an address that is not an IPv4 literal."""
    if option:
        chosen, source = option, "--advertise"
    elif env.get(ADVERTISE_ENV):
        chosen, source = env[ADVERTISE_ENV], ADVERTISE_ENV
    elif one_machine:
        return "127.0.0.1", "every rank on this machine"
    else:
        try:
            with open("/proc/net/route") as f:
                table = f.read()
        except OSError:
            table = ""
        guess = guess_address(table, psutil.net_if_addrs(), psutil.net_if_stats())
        if guess is None:
            raise UserError(f"no address to advertise: this machine has no IPv4 address besides loopback; "
                            f"pass --advertise ADDR or set {ADVERTISE_ENV}")
        return guess, "guessed from the interfaces"
    try:
        address = ipaddress.ip_address(chosen)
    except ValueError:
        raise BadInput(f"{source}: {chosen!r} is not an IPv4 address (the nodes bind to it, and no name is looked up)") from None
    if address.version != 4:
        raise BadInput(f"{source}: {chosen} is an IPv6 address; the nodes bind IPv4 addresses only")
    return chosen, source


def lone_rank_error(size: int, env: dict) -> str | None:
    """Why this process must not run as a rank of ``size``, or None: the launcher started
    several tasks (``SLURM_STEP_NUM_TASKS`` in ``env``) but MPI sees a world of one."""
    try:
        tasks = int(env.get("SLURM_STEP_NUM_TASKS", "1"))
    except ValueError:
        return None  # not Slurm's: nothing to say
    if size != 1 or tasks <= 1:
        return None
    return (f"srun started {tasks} tasks but MPI sees each as rank 0 of 1: srun gave MPI no way to join them "
            f"(the site's MpiDefault is none?); launch with `srun --mpi=pmi2` (README.md, \"On a Slurm site\")")


def resolve(topology: Topology, endpoints: dict[str, tuple], path: str | None = None) -> Topology:
    """The topology with every node's host and port replaced by ``endpoints[name]``:
    (host, port) or (host, port, operator port)."""
    nodes = [dataclasses.replace(n, host=endpoints[n.name][0], port=endpoints[n.name][1],
                                 operator_port=endpoints[n.name][2] if len(endpoints[n.name]) > 2 else n.operator_port)
             for n in topology.nodes]
    cluster = dataclasses.replace(topology.cluster, host=nodes[0].host)
    return Topology(cluster, nodes, path, source=path)


# --- this machine ------------------------------------------------------------------------


def machine_id() -> str:
    """What tells two machines apart: the host name and the network namespace (several
    namespaces of one kernel are several machines to the network)."""
    try:
        netns = os.readlink("/proc/self/ns/net")
    except OSError:
        netns = "?"
    return f"{socket.gethostname()} {netns}"


class Reservation:
    """Ports held for this rank's nodes: one bound, not listening, SO_REUSEADDR socket
    each, so no other process gets the port before the node binds it. ``wanted``: node
    -> port, ``operator_wanted``: node -> operator port (0: any free one);
    :attr:`ports` and :attr:`operator_ports` say which they got."""

    def __init__(self, address: str, wanted: dict[str, int], operator_wanted: dict[str, int] | None = None):
        self.sockets: list[socket.socket] = []
        self.ports: dict[str, int] = {}
        self.operator_ports: dict[str, int] = {}
        try:
            for held, port_of in ((self.ports, wanted), (self.operator_ports, operator_wanted or {})):
                self._hold(address, port_of, held)
        except BaseException:
            self.release()
            raise

    def _hold(self, address: str, wanted: dict[str, int], held: dict[str, int]) -> None:
        for name, port in wanted.items():
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((address, port))
            except OSError as exc:
                what = f"port {port}" if port else "a port"
                raise UserError(f"node {name}: cannot bind {what} on {address}"
                                + (" for its operator socket" if held is self.operator_ports else "")
                                + f": {exc.strerror}"
                                + (" (is it an address of this machine?)" if exc.errno == 99 else "")) from None
            held[name] = sock.getsockname()[1]

    def release(self) -> None:
        for sock in self.sockets:
            sock.close()
        self.sockets = []


def mapped_shm_files() -> set[str]:
    """The MPI runtime's /dev/shm files this process has mapped and that still exist."""
    found = set()
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.rstrip("\n").split(None, 5)[-1] if line.count(" ") >= 5 else ""
                if path.startswith(SHM_DIR + "/") and not path.endswith("(deleted)"):
                    if os.path.basename(path).startswith(SHM_PREFIXES):
                        found.add(path)
    except OSError:
        pass
    return found


def unlink_shm(paths: set[str]) -> None:
    for path in paths:
        try:
            os.unlink(path)
        except OSError:
            pass  # another rank of this machine was first


# --- MPI, always with sleeping waits ------------------------------------------------------


class World:
    """COMM_WORLD as this module uses it: every wait sleeps between tests."""

    def __init__(self, comm):
        from mpi4py import MPI

        self.MPI = MPI
        self.comm = comm
        comm.Set_errhandler(MPI.ERRORS_RETURN)  # a dead peer raises here, not MPI_Abort
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()
        self.shm: set[str] = set()
        self.agreed = False  # passed the start's agreement
        self._got_stop = False
        self._stop_request = None  # the watcher's receive
        self._watcher: threading.Thread | None = None
        self.watching = threading.Event()

    @staticmethod
    def wait(test, timeout: float | None = None) -> bool:
        """Call ``test()`` until it is true, sleeping between calls (1 ms doubling up to
        50 ms). False if ``timeout`` passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = POLL_FIRST
        while not test():
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(pause)
            pause = min(pause * 2, POLL_MAX)
        return True

    def barrier(self) -> None:
        request = self.comm.Ibarrier()
        self.wait(request.Test)

    def allgather(self, obj) -> list:
        """A sleeping barrier first, so the allgather itself only meets ranks already there."""
        self.barrier()
        return self.comm.allgather(obj)

    def one_machine(self) -> bool:
        """True if the launcher placed every rank on this machine. The first call after
        MPI_Init: past its barrier every rank has mapped the runtime's shared memory."""
        self.barrier()
        self.unlink_shm()
        local = self.comm.Split_type(self.MPI.COMM_TYPE_SHARED)
        try:
            return local.Get_size() == self.size
        finally:
            local.Free()

    def unlink_shm(self) -> None:
        """Every rank has passed a barrier since these files were made: unlink them."""
        self.shm |= mapped_shm_files()
        unlink_shm(self.shm)

    # -- quiet phase ------------------------------------------------------------------

    def watch(self, on_stop) -> None:
        """Call ``on_stop(rank)`` (from a thread) when another rank sends STOP."""
        if self.size == 1:
            return
        self._stop_request = self.comm.irecv(source=self.MPI.ANY_SOURCE, tag=STOP_TAG)
        self.watching.set()

        def run():
            status = self.MPI.Status()
            while self.watching.is_set():
                done, _ = self._stop_request.test(status)
                if done:
                    self._stop_request, self._got_stop = None, True
                    if self.watching.is_set():
                        on_stop(status.Get_source())
                    return
                time.sleep(WATCH_INTERVAL)

        self._watcher = threading.Thread(target=run, name="mpi-watch", daemon=True)
        self._watcher.start()

    def leave(self) -> bool:
        """Send STOP to every other rank and receive one from each, sleeping, then finalize.
        False, without MPI_Finalize (which would wait for them), if a rank did not answer
        within LEAVE_TIMEOUT or MPI reported an error: a killed rank never answers."""
        self.watching.clear()
        if self._watcher is not None:
            self._watcher.join()
        try:
            requests = [self.comm.isend(self.rank, dest=other, tag=STOP_TAG)
                        for other in range(self.size) if other != self.rank]
            expected = self.size - 1 - self._got_stop
            if self._stop_request is not None:  # the watcher's receive, still open
                requests.append(self._stop_request)
                expected -= 1
            requests += [self.comm.irecv(source=self.MPI.ANY_SOURCE, tag=STOP_TAG) for _ in range(expected)]
            done = self.wait(lambda: self.MPI.Request.Testall(requests), LEAVE_TIMEOUT)
        except self.MPI.Exception:
            done = False
        unlink_shm(self.shm)
        if done:
            self.MPI.Finalize()
        return done


# --- one rank's supervisor ---------------------------------------------------------------


class RankSupervisor(Supervisor):
    """A supervisor of one rank: its share of the nodes, ports held until the nodes bind,
    the ranks' agreement before serving, balancing at rank 0 only."""

    def __init__(self, world: World, topology: Topology, run_dir: Path, nodes: list[str],
                 reservation: Reservation, publish: Path, progress):
        super().__init__(topology, run_dir, progress, nodes=nodes)
        self.world = world
        self.reservation = reservation
        self.publish = publish
        self.published = False

    def start(self) -> bool:
        try:
            ok = super().start()
        finally:
            self.reservation.release()
        everyone = self.world.allgather(ok)
        self.world.agreed = True
        self.world.unlink_shm()
        if not all(everyone):
            if ok:
                failed = [str(r) for r, fine in enumerate(everyone) if not fine]
                self.progress(f"error ranks {', '.join(failed)} could not start their nodes; stopping")
            self.state = ClusterState.FAILED
            return False
        self.world.watch(self._stop_from)
        if self.world.rank == 0:
            tmp = self.publish.with_name(f".{self.publish.name}.{os.getpid()}.tmp")
            try:
                tmp.write_text(Path(self.topology.path).read_text())
                os.replace(tmp, self.publish)
            except OSError as exc:
                self.progress(f"error --publish {self.publish}: cannot write it: {exc.strerror}; stopping")
                self.state = ClusterState.FAILED
                return False
            self.published = True
            took = time.time() - psutil.Process().create_time()
            self.progress(f"published {len(self.topology)} {self.world.size} {took:.2f}")
        return True

    def stop(self) -> None:
        self.world.watching.clear()  # stopping already: a STOP from a rank adds nothing
        super().stop()

    def balance(self) -> None:
        if self.world.rank == 0:
            super().balance()

    def _stop_from(self, rank: int) -> None:
        if self.stopping:
            return
        self.log.info("rank %d stopped: stopping", rank)
        os.kill(os.getpid(), signal.SIGTERM)  # into the supervisor's own stop path


# --- python -m daemon.mpi ------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m daemon.mpi",
        description="Run a cluster across the ranks of an MPI launcher (mpiexec -n K ..., srun ...): "
                    "each rank runs a share of the nodes; rank 0 writes the resolved topology to FILE "
                    "once every node is ready. Stop with SIGTERM to the launcher (Ctrl-C, scancel).",
    )
    parser.add_argument("topology", help="the cluster's topology file (hosts and ports are replaced)")
    parser.add_argument("--publish", required=True, metavar="FILE",
                        help="where rank 0 writes the resolved topology, for `ctl ... -t FILE`")
    parser.add_argument("--advertise", metavar="ADDR",
                        help=f"IPv4 address this rank's nodes bind and advertise (default: ${ADVERTISE_ENV}, "
                             "then 127.0.0.1 if every rank is on this machine, then a guess from the interfaces)")
    parser.add_argument("--ports", choices=("any", "file"), default="any",
                        help="'any' free port per node (default) or the ports the topology file gives")
    return parser.parse_args(argv)


def prepare(world: World, args: argparse.Namespace, one_machine: bool) -> dict:
    """This rank's half of the exchange: its nodes, address and held ports. Raises UserError.
    No collective in here: a rank that fails must not leave the others waiting in one."""
    topology = load(os.path.abspath(args.topology))
    if world.size > len(topology):
        raise BadInput(f"{args.topology}: {world.size} ranks for {len(topology)} nodes; "
                       f"start at most {len(topology)} ranks")
    folder = Path(args.publish).absolute().parent
    if world.rank == 0 and not (folder.is_dir() and os.access(folder, os.W_OK)):
        raise BadInput(f"--publish {args.publish}: the folder {folder} does not exist or is not writable")
    publish = Path(args.publish).absolute()
    if world.rank == 0 and (publish.exists() or publish.is_symlink()):
        remove_stale_publish(publish)
    mine = share(topology.names, world.rank, world.size)
    address, source = choose_address(args.advertise, os.environ, one_machine)
    wanted = {name: (topology.node(name).port if args.ports == "file" else 0) for name in mine}
    operator_wanted = {name: (topology.operator_port(name) if args.ports == "file" else 0) for name in mine}
    return {"topology": topology, "nodes": mine, "address": address, "source": source,
            "reservation": Reservation(address, wanted, operator_wanted)}


def resolved_by(cluster: str) -> str:
    """The first words of a resolved topology's header (:func:`main`): how a published
    file is recognised."""
    return f"# {cluster}: resolved by daemon.mpi from "


def remove_stale_publish(path: Path) -> None:
    """Remove ``path``, the published topology of a launch that did not stop (SIGKILLed):
    its endpoints are gone, and a client must not read them while this launch starts.
    UserError, leaving it, if it is not a published topology or its cluster is running."""
    try:
        published = load(path)
        with open(path, "rb") as f:
            first = f.readline(4096).decode("utf-8", "replace")
    except (UserError, OSError):
        published = first = None
    if published is None or not first.startswith(resolved_by(published.cluster.name)):
        raise BadInput(f"--publish {path}: the file exists and is not a topology published by daemon.mpi; "
                       "choose another file (the launch would overwrite it)")
    if rundir.is_running(published.cluster.name):
        raise UserError(f"--publish {path}: it is the published topology of cluster {published.cluster.name}, which "
                        f"is running; stop it (`ctl stop -t {path}`) or choose another file")
    path.unlink(missing_ok=True)


def check_addresses(gathered: list[dict]) -> list[str]:
    """Errors for loopback addresses when the ranks run on several machines."""
    machines = {g["machine"] for g in gathered}
    if len(machines) == 1:
        return []
    return [f"rank {g['rank']} on {g['host']} advertises {g['address']} ({g['source']}), which other "
            f"machines cannot reach; pass --advertise ADDR or set {ADVERTISE_ENV}"
            for g in gathered if g.get("address") and ipaddress.ip_address(g["address"]).is_loopback]


def group_errors(errors: list[tuple]) -> list[tuple[str, str]]:
    """(message, "rank R on HOST: " or "ranks 0, 1, 2: ") per distinct message, in rank
    order: a bad file read by every rank is said once."""
    grouped: dict[str, list] = {}
    for rank, host, message, _ in errors:
        grouped.setdefault(message, []).append((rank, host))
    said = []
    for message, where in grouped.items():
        if where[0][0] is None:
            said.append((message, ""))
        elif len(where) == 1:
            said.append((message, f"rank {where[0][0]} on {where[0][1]}: "))
        else:
            said.append((message, f"ranks {', '.join(str(r) for r, _ in where)}: "))
    return said


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        from mpi4py import MPI
    except ImportError as exc:
        print(f"daemon.mpi: error: mpi4py is not installed ({exc}); pip install 'echofinn[mpi]'", file=sys.stderr)
        return 2
    _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)  # the launcher's process dies: stop like on SIGTERM
    world = World(MPI.COMM_WORLD)
    lone = lone_rank_error(world.size, os.environ)
    if lone:
        # Every task says it: under srun -K the first to exit ends the others, maybe
        # before they could speak.
        print(f"daemon.mpi: error: {lone}", file=sys.stderr)
        MPI.Finalize()
        return 2
    host = socket.gethostname()

    def say(line: str) -> None:
        print(f"daemon.mpi: rank {world.rank} on {host}: {line}", file=sys.stderr, flush=True)

    mine: dict = {}
    error, code = None, 0
    one_machine = world.one_machine()  # collective: every rank, whatever fails next
    try:
        mine = prepare(world, args, one_machine)
    except UserError as exc:  # a bad topology file too (TopologyError)
        error, code = str(exc), exc.exit_code
    gathered = world.allgather({
        "rank": world.rank, "host": host, "machine": machine_id(), "pid": os.getpid(),
        "address": mine.get("address"), "source": mine.get("source"),
        "ports": mine["reservation"].ports if mine else {},
        "operator_ports": mine["reservation"].operator_ports if mine else {}, "error": error, "code": code,
    })
    errors = [(g["rank"], g["host"], g["error"], g["code"]) for g in gathered if g["error"]]
    errors += [(None, None, e, 2) for e in check_addresses(gathered)]
    if errors:
        if mine:
            mine["reservation"].release()
        if world.rank == 0:
            for message, where in group_errors(errors):
                print(f"daemon.mpi: error: {where}{message}", file=sys.stderr)
        world.barrier()
        MPI.Finalize()
        return max(c for *_, c in errors)

    topology: Topology = mine["topology"]
    endpoints = {name: (g["address"], port, g["operator_ports"][name]) for g in gathered for name, port in g["ports"].items()}
    run_dir = rundir.cluster_dir(topology.cluster.name)  # rank 0: `ctl stop|status|top -t FILE` find it
    if world.rank:
        run_dir = run_dir.with_name(f"{run_dir.name}.rank-{world.rank}")
    publish = Path(args.publish).absolute()
    code, supervisor = 1, None
    # CURVE keys travel with one more allgather: rank 0 makes the cluster's key pairs and
    # every rank keeps the public keys, the operator's pair and its own nodes' pairs
    # (MPI's own transport carries them: the launch is as trusted as the launcher).
    if topology.cluster.security == security.CURVE:
        files = world.allgather(security.share_files(topology) if world.rank == 0 else None)[0]
    try:
        run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        rundir.private_dir(run_dir)
        other = rundir.folder_supervisor_pid(run_dir)
        if other is not None and other != os.getpid():
            how = f"`ctl stop -t {topology.path}`" if world.rank == 0 else "SIGTERM to the launcher that started it"
            raise UserError(f"cluster {topology.cluster.name}: {run_dir} is in use by a running supervisor "
                            f"(pid {other}); stop it first ({how})")
        if topology.cluster.security == security.CURVE:  # no key of an earlier launch or start survives
            security.write_files(run_dir, security.for_host(files, mine["nodes"]))
        resolved_path = run_dir / "topology.toml"
        comment = [f"{resolved_by(topology.cluster.name)[2:]}{topology.path}, {world.size} ranks"]
        comment += [f"rank {g['rank']} on {g['host']} (pid {g['pid']}, {g['address']}): {', '.join(g['ports'])}"
                    for g in gathered]
        resolved_path.write_text(dumps(resolve(topology, endpoints), "\n".join(comment)))
        resolved = load(resolved_path)

        def progress(line: str) -> None:
            word, _, rest = line.partition(" ")
            if word == "error":
                say(rest)
            elif word == "published":
                nodes, ranks, seconds = rest.split()
                ranks = f"{ranks} rank" + ("s" if ranks != "1" else "")
                print(f"cluster {topology.cluster.name}: {nodes} nodes on {ranks} ready {seconds} s after "
                      f"rank 0 started; "
                      f"reach it with `ctl echo -t {args.publish}`", flush=True)

        supervisor = RankSupervisor(world, resolved, run_dir, mine["nodes"], mine["reservation"], publish, progress)
        code = supervisor.run()
    except UserError as exc:
        say(str(exc))
        code = exc.exit_code
        if not world.agreed:
            world.allgather(False)  # the others wait for this rank's start
    finally:
        mine["reservation"].release()
        if supervisor is not None and supervisor.published:
            publish.unlink(missing_ok=True)
        if not world.leave():
            say(f"a rank did not answer the stop within {LEAVE_TIMEOUT:.0f} s (killed?); leaving without MPI_Finalize")
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code or 1)  # mpi4py's exit hook would call MPI_Finalize and wait for it
    return code


if __name__ == "__main__":
    raise SystemExit(main())
