"""The operator's side of the protocol: inject waves, submit work, run a balancing round.

Waves of any kind (daemon/core/wave.py, daemon/plugins.py) go through one method,
:meth:`Operator.wave`: the kind refuses a topology it cannot run on (its ``refuse``
sentence), every node is pinged first (a decision needs the route back), the wave is
started (``wave.start``) at the kind's initiators, and the decisions (``wave.decided``)
are collected until the kind's ``deciders`` are in or the deadline, naming the nodes
that stay silent. :meth:`Operator.echo`, :meth:`Operator.finn` and
:meth:`Operator.rebalance` are thin over the same start-and-collect
(:meth:`Operator._run_wave`), their results as before.

``ctl`` and the supervisor's balancing timer both speak through :class:`Operator`. It is
a client of the cluster (ARCHITECTURE.md, "Sockets"): one DEALER per node it talks to,
each with the operator's unique routing id, connected to that node's operator socket
(its ``operator_port``, daemon/topology.py), never to the inbox where nodes talk to each
other. Nodes answer through their operator ROUTER to that routing id, which is why the
operator pings a node (and gets the pong) before it asks that node for anything that is
answered later, such as a Finn decision: the pong proves the node's ROUTER knows the
route back. A node refuses a routing id that is a node's name there, and says so. Every
request carries an id (:meth:`Operator._next_id`) and a reply or an error is taken only
with its request's id, so an answer to an earlier call that came late is never taken for
this one's.

Every call has a deadline, its sends included: a send never blocks. It is tried with
``DONTWAIT``; if the node's queue is full (the peer is stuck or gone and its high-water
mark is reached) the socket is polled for writability until the call's deadline, then
the node counts as silent (:class:`WaveTimeout`). A frame this operator would make
larger than ``wire.MAX_FRAME`` is refused before it is sent (a node would drop the
connection). A wave that does not come back in time raises :class:`WaveTimeout`, naming
the nodes that do not answer a ping.

Traces (daemon/trace/recorder.py): :meth:`Operator.trace` asks every node for its
recorded steps of some waves (``trace.get``) in parallel, with one deadline for all,
and merges the answers into one trace dict; the nodes that do not answer in time are
named in its ``missing``. :meth:`Operator.last_wave` asks every node which waves it saw
last and picks the newest by its id's start stamp.

With CURVE (the default, daemon/security.py) each DEALER is a CURVE client holding the
cluster's operator key, found in the run directory; nodes then accept operator messages
from it and nothing else. Each DEALER's socket monitor tells a refused handshake from
silence: a node that refuses the operator key, or a node whose key is not the one the
run directory holds, is named as such (:meth:`Operator.why`) wherever the operator would
otherwise say "no answer" (three sockets a node: the operator's context allows as many); an incomplete echo also gathers the refusals the nodes
themselves report (``refused`` in its result: daemon/core/snapshot.py ``refused_keys``).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import threading
import time

import zmq

from daemon import plugins, rundir, security, wire
from daemon.core import plan
from daemon.core.snapshot import imbalance, refusal_text, refused_keys
from daemon.core.wave import Graph
from daemon.errors import BadInput, UserError
from daemon.sockets import configure_socket
from daemon.topology import Topology
from daemon.trace import recorder


class WaveTimeout(UserError):
    """A wave or a request got no answer in time; ``unreachable`` names silent nodes,
    ``refused`` the refused handshakes the operator saw ([who refused, whose key])."""

    def __init__(self, message: str, unreachable: list[str] | None = None, refused: list | None = None):
        super().__init__(message)
        self.unreachable = unreachable or []
        self.refused = refused or []


class NodeError(UserError):
    """A node answered with an error message."""


# Signals that ctl turns into exceptions (ctl/cli.py): Ctrl-C, SIGTERM, SIGHUP.
_UNWINDING = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}


@contextlib.contextmanager
def _signals_deferred():
    """Hold the stop signals back (they arrive when the block ends) in the main thread,
    where Python runs signal handlers. pyzmq registers a new socket with its context only
    after creating it: an exception raised in between left a socket that
    ``Context.destroy`` does not know, and ``term`` then waited for it forever (ctl demo
    hung on SIGHUP)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held = signal.pthread_sigmask(signal.SIG_BLOCK, _UNWINDING)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


def _rounded(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def _wave_id(kind: str) -> str:
    return wire.new_wave_id(kind, time.time_ns(), secrets.token_hex(3))


def _count(value) -> int:
    """A count a node reported (0 for anything but a non-negative integer)."""
    return value if type(value) is int and value >= 0 else 0


def _stream_values(stream) -> list:
    """The values of a decision's result stream (bytes); [] if it is not one."""
    try:
        return wire.unpack_stream(stream)[0] if type(stream) is bytes else []
    except wire.WireError:
        return []


class Operator:
    """A client of one cluster; not thread-safe (use it from one thread)."""

    def __init__(self, topology: Topology, timeout: float = 5.0, run_dir=None):
        """``run_dir`` holds the operator key (default: the cluster's run directory).
        Raises KeyProblem if the cluster authenticates and the key is missing."""
        self.keys = None
        if topology.cluster.security == security.CURVE:
            run_dir = rundir.cluster_dir(topology.cluster.name) if run_dir is None else run_dir
            self.keys = security.ClusterKeys.load(run_dir, topology, security.OPERATOR)
        self.topology = topology
        self.timeout = timeout
        self.ident = f"ctl-{os.getpid()}-{secrets.token_hex(4)}".encode()
        self.epoch = time.time_ns()
        self.ctx = zmq.Context()
        # a DEALER a node and, with CURVE, its monitor (a PAIR here and one inside libzmq):
        # three sockets a node, past libzmq's default of 1,023 a context at 341 nodes
        self.ctx.set(zmq.MAX_SOCKETS, max(self.ctx.get(zmq.MAX_SOCKETS), 3 * len(topology.names) + 16))
        self.socks: dict[str, zmq.Socket] = {}
        self.by_sock: dict[zmq.Socket, str] = {}
        self.poller = zmq.Poller()
        self.seq = 0
        self.answered: set[str] = set()  # nodes that have answered a ping: their route back exists
        self.trace_errors: dict[str, str] = {}  # node -> why it gave no trace, in the latest fetch
        self.monitors: dict[str, zmq.Socket] = {}  # node -> its DEALER's handshake monitor (CURVE)
        self.handshakes = security.HandshakeWatch(security.OPERATOR)
        self.refused = self.handshakes.refused  # node -> (who refused, whose key), until a handshake succeeds

    def close(self) -> None:
        self.ctx.destroy(linger=0)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- plumbing ----------------------------------------------------------------

    def _sock(self, name: str) -> zmq.Socket:
        sock = self.socks.get(name)
        if sock is None:
            self.topology.node(name)  # names an unknown node
            with _signals_deferred():  # tracked by the context before a signal can unwind
                sock = self.ctx.socket(zmq.DEALER)
            configure_socket(sock)
            sock.setsockopt(zmq.IDENTITY, self.ident)
            if self.keys is not None:
                security.make_client(sock, self.keys, name)
                with _signals_deferred():
                    self.monitors[name] = sock.get_monitor_socket(security.HANDSHAKE_EVENTS)
            sock.connect(self.topology.operator_endpoint(name))
            self.socks[name] = sock
            self.by_sock[sock] = name
            self.poller.register(sock, zmq.POLLIN)
        return sock

    def _send(self, name: str, kind: str, deadline: float | None = None, /, **fields) -> None:
        """Send one message to node ``name`` without ever blocking past ``deadline``
        (default: this operator's timeout from now); WaveTimeout naming the node if its
        queue stays full, UserError if the frame is too large to send at all."""
        frame = wire.encode(kind, self.epoch, **fields)
        if len(frame) > wire.MAX_FRAME:
            raise UserError(f"node {name}: a {kind} message of {len(frame)} bytes exceeds the "
                            f"{wire.MAX_FRAME}-byte frame limit; ask for less at once")
        sock = self._sock(name)
        if deadline is None:
            deadline = time.monotonic() + self.timeout
        while True:
            try:
                sock.send(frame, zmq.DONTWAIT)
                return
            except zmq.Again:
                pass
            left = deadline - time.monotonic()
            if left <= 0 or not sock.poll(max(1, int(left * 1000)), zmq.POLLOUT):
                why = self.why(name)
                raise WaveTimeout(f"node {name} ({self.topology.operator_endpoint(name)}) takes no {kind} message within "
                                  f"{self.timeout:g} s: " + (why if why else "its queue is full; is it stuck?"), [name])

    def _send_each(self, sends, deadline: float) -> list[str]:
        """Send ``(name, kind, fields)`` messages, each within ``deadline``; returns the
        names whose queue stayed full (the rest went out)."""
        stuck = []
        for name, kind, fields in sends:
            if name in stuck:
                continue
            try:
                self._send(name, kind, deadline, **fields)
            except WaveTimeout:
                stuck.append(name)
        return stuck

    def _collect(self, deadline: float, accept) -> None:
        """Receive until ``accept(node, msg)`` returns True or the deadline passes (then
        raise WaveTimeout). Messages ``accept`` returns False for are dropped."""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise WaveTimeout("no answer in time")
            for sock, _ in self.poller.poll(max(1, int(left * 1000))):
                for msg in self._waiting(sock):
                    if accept(self.by_sock[sock], msg):
                        return

    @staticmethod
    def _waiting(sock: zmq.Socket):
        """Every message waiting on ``sock`` now, decoded; a frame that is not one of the
        protocol's is dropped."""
        while True:
            try:
                frame = sock.recv(zmq.DONTWAIT)
            except zmq.Again:
                return
            try:
                msg = wire.decode(frame)
            except wire.WireError:
                continue
            yield msg

    def _gather(self, deadline: float, accept) -> None:
        """As :meth:`_collect`, but the deadline passing is no error: the caller names
        whoever did not answer."""
        try:
            self._collect(deadline, accept)
        except WaveTimeout:
            pass

    def read_handshakes(self) -> None:
        """What the DEALERs' monitors saw since the last reading (:attr:`refused`)."""
        for name, monitor in self.monitors.items():
            for _ in self.handshakes.read(name, monitor):
                pass

    def why(self, name: str) -> str | None:
        """Why node ``name`` does not answer, if a refused handshake says it; else None."""
        self.read_handshakes()
        pair = self.refused.get(name)
        return refusal_text(*pair) if pair else None

    def ping(self, names=None, timeout: float | None = None) -> dict[str, dict | None]:
        """Ping nodes in parallel: name -> pong (with pid, counters and ``rtt_ms``), or
        None if silent within the timeout."""
        names = list(self.topology.names if names is None else names)
        seq = self._next_id()
        deadline = time.monotonic() + (timeout or self.timeout)
        t0 = time.perf_counter()
        stuck = self._send_each([(name, "ping", {"id": seq}) for name in names], deadline)
        answers: dict[str, dict | None] = {name: None for name in names}
        waiting = set(names) - set(stuck)

        def accept(node, msg):
            if msg["t"] == "pong" and msg["id"] == seq and node in waiting:
                self.answered.add(node)
                msg["rtt_ms"] = round((time.perf_counter() - t0) * 1000, 3)
                answers[node] = msg
                waiting.discard(node)
            return not waiting

        if waiting:
            self._gather(deadline, accept)
        self.read_handshakes()
        return answers

    def _next_id(self) -> int:
        """A new request id: each reply, an error about the request too, carries it."""
        self.seq += 1
        return self.seq

    def _require(self, names, timeout: float | None = None) -> list[str]:
        """Ping ``names``; return those that answered."""
        return [n for n, pong in self.ping(names, timeout).items() if pong is not None]

    def _unreachable(self) -> list[str]:
        return [n for n, pong in self.ping(timeout=min(self.timeout, 1.0)).items() if pong is None]

    # --- waves of any kind -------------------------------------------------------------

    def default_initiator(self) -> str:
        sources = self.topology.sources()
        return sources[0] if sources else self.topology.names[0]

    def _run_wave(self, kind: type, initiators: list[str], params: dict, timeout: float, alive: set[str],
                  grace: float) -> tuple[str, dict[str, dict], dict[str, str], float]:
        """Start a wave of ``kind`` at the ``initiators`` that are ``alive`` (nodes that
        answered a ping: their routes back exist) and collect the decisions until
        ``kind.deciders`` of them are in, every live node has decided, every initiator
        refused, or ``timeout`` + ``grace`` passed. Returns (wave id, node -> its
        ``wave.decided`` message, node -> the error it said, elapsed ms)."""
        wave = _wave_id(kind.tag or kind.name)
        want = kind.deciders(Graph.of(self.topology), tuple(initiators))
        starters = [n for n in initiators if n in alive]
        decided: dict[str, dict] = {}
        errors: dict[str, str] = {}
        seq = self._next_id()

        def accept(node, msg):
            if msg["t"] == "wave.decided" and msg["wave"] == wave:
                if node == msg["node"]:  # a node reports its own decision only
                    decided.setdefault(node, msg)
            elif msg["t"] == "error" and (msg["id"] == seq or wave in msg["text"]):
                errors.setdefault(node, msg["text"])  # a start refused, or the wave failed there
            return (len(decided) >= want or alive <= decided.keys()
                    or (not decided and bool(starters) and set(starters) <= errors.keys()))

        t0 = time.perf_counter()
        deadline = time.monotonic() + timeout
        fields = {"wave": wave, "kind": kind.name, "params": params, "timeout": float(timeout), "id": seq}
        self._send_each([(name, "wave.start", fields) for name in starters], deadline)
        if starters:
            self._gather(deadline + grace, accept)
        return wave, decided, errors, (time.perf_counter() - t0) * 1000

    def wave(self, kind, initiators=None, params: dict | None = None, timeout: float | None = None) -> dict:
        """One wave of ``kind`` (a name of daemon/plugins.py, or the class) on the cluster:
        every node pinged first (the decisions need the routes back), the wave started at
        ``initiators`` (default: the kind's choice), its decisions collected until the
        kind's ``deciders`` are in or ``timeout`` (default: this operator's) and a grace
        for the answers to travel. A topology the kind cannot run on is refused with the
        kind's reason (UserError). The result names the deciding nodes in topology order
        with their results (a stream's values unpacked), the nodes that did not decide,
        those that answered no ping (``unreachable``) and, if the run is incomplete, the
        nodes silent at its end."""
        cls = plugins.kind(kind) if isinstance(kind, str) else kind
        graph = Graph.of(self.topology)
        why = cls.refuse(graph)
        if why:
            raise UserError(f"{cls.name} cannot run on cluster {self.topology.cluster.name}: {why}")
        for name in initiators or ():
            self.topology.node(name)  # names an unknown node
        initiators = list(cls.initiators(graph, tuple(initiators or ())))
        params = self._wave_params(cls, params or {})
        timeout = self.timeout if timeout is None else timeout
        alive = set(self._require(self.topology.names))
        wave, decided, errors, elapsed_ms = self._run_wave(cls, initiators, params, timeout, alive,
                                                           max(1.0, timeout / 5))
        if not decided and errors and set(errors) >= {n for n in initiators if n in alive}:
            node, text = next(iter(errors.items()))
            raise NodeError(f"node {node}: {text}")
        order = self.topology.names
        results = {}
        for node in order:
            msg = decided.get(node)
            if msg is not None:
                results[node] = _stream_values(msg["result"]) if msg.get("stream") else msg["result"]
        complete = len(decided) >= cls.deciders(graph, tuple(initiators))
        silent = [] if complete else self._unreachable()
        return {
            "cluster": self.topology.cluster.name,
            "kind": cls.name,
            "wave": wave,
            "initiators": initiators,
            "params": params,
            "complete": complete,
            "decided": [n for n in order if n in decided],
            "undecided": [n for n in order if n not in decided],
            "unreachable": [n for n in order if n not in alive],
            "dead_initiators": [n for n in initiators if n not in alive],
            "silent": silent,
            "errors": errors,
            "results": results,
            "elapsed_ms": round(elapsed_ms, 3),
        }

    @staticmethod
    def _wave_params(cls: type, given: dict) -> dict:
        """The kind's defaults with ``given`` over them; UserError naming an unknown or
        missing parameter."""
        unknown = sorted(set(given) - set(cls.params))
        if unknown:
            raise BadInput(f"{cls.name} has no parameter {', '.join(unknown)} "
                           f"(it takes: {', '.join(sorted(cls.params)) or 'none'})")
        params = {**cls.defaults, **given}
        missing = sorted(set(cls.params) - set(params))
        if missing:
            raise BadInput(f"{cls.name} needs the parameter(s) {', '.join(missing)}")
        return params

    # --- echo ----------------------------------------------------------------------

    def echo(self, initiator: str | None = None, detail: bool = False) -> dict:
        """One echo wave from ``initiator``: the spanning tree and every node's state
        (with ``detail``, every running and queued task too, as the balancer needs)."""
        initiator = initiator or self.default_initiator()
        # the first wave to this initiator pings first (the result needs the route back);
        # later ones do not: a silent initiator then shows as a timeout, named below
        if initiator not in self.answered and not self._require([initiator]):
            why = self.why(initiator)
            raise WaveTimeout(f"node {initiator} ({self.topology.operator_endpoint(initiator)}) " + (
                f"does not answer: {why}" if why else
                f"does not answer within {self.timeout:g} s; is cluster {self.topology.cluster.name} running? (`ctl status`)"),
                [initiator], [list(p) for p in self.refused.values()])
        # The initiator answers by its deadline with whatever it has (nodes that are
        # silent by then are left out: daemon/core/node.py); the operator waits a little
        # longer for that answer to travel.
        wave, decided, errors, elapsed_ms = self._run_wave(plugins.kind("echo"), [initiator], {"detail": detail},
                                                           self.timeout, {initiator}, max(1.0, self.timeout / 5))
        if initiator in errors and initiator not in decided:
            raise NodeError(f"node {initiator}: {errors[initiator]}")
        result = decided.get(initiator)
        if result is None or not result.get("stream") or type(result["result"]) is not bytes:
            silent = self._unreachable()
            self.answered.difference_update(silent)
            who = ", ".join(f"{n} ({self.why(n)})" if self.why(n) else n for n in silent) if silent else \
                "none (every node answers a ping)"
            raise WaveTimeout(f"echo wave {wave} from {initiator} did not come back within {self.timeout:g} s; silent nodes: {who}",
                              silent, [list(p) for p in self.refused.values()])
        stream = result["result"]
        nodes = []
        for name, father, state in wire.unpack_entries(stream):
            entry = dict(state)
            entry["name"] = name
            entry["father"] = father
            entry["parents"] = list(self.topology.parents(name)) if name in self.topology else []
            nodes.append(entry)
        reached = {n["name"] for n in nodes}
        missing = [name for name in self.topology.names if name not in reached]
        # a missing node may be cut off by a refused key: it and its neighbours say so
        # (the samples were taken as each node joined, perhaps before its handshake failed)
        suspects = list(dict.fromkeys(n for name in missing for n in (name, *self.topology.neighbours(name))))
        pongs = self.ping(suspects, min(self.timeout, 0.5)).values() if missing else ()
        refused = refused_keys(nodes, pongs)
        refused += [pair for pair in self.refused.values() if pair not in refused]
        return {
            "cluster": self.topology.cluster.name,
            "wave": wave,
            "initiator": initiator,
            "complete": not missing,
            "missing": missing,
            "messages": sum(n.get("sent", 0) for n in nodes),  # each node counts its own sends
            "elapsed_ms": round(elapsed_ms, 3),
            "time": time.time(),
            "entries_bytes": len(stream),  # the convergecast's size, as it reached the initiator
            "refused": [list(pair) for pair in refused],  # [who refused, whose key]: a stale or foreign key
            "nodes": nodes,
        }

    # --- Finn ----------------------------------------------------------------------

    def finn(self, tasks: int = 1, cost: float | None = None, initiators=None) -> dict:
        """One Finn wave; each node enqueues ``tasks`` tasks of ``cost`` s as it decides.

        Waits until every node that answers a ping has decided, or the deadline."""
        cost = self.topology.cluster.task_time if cost is None else cost
        initiators = list(initiators or self.topology.finn_initiators())
        alive = set(self._require(self.topology.names))
        wave, decided, _, elapsed_ms = self._run_wave(plugins.kind("finn"), initiators, {"tasks": tasks, "cost": cost},
                                                      self.timeout, alive, 0.0)
        order = self.topology.names
        results = [m["result"] if type(m["result"]) is dict else {} for m in decided.values()]
        return {
            "cluster": self.topology.cluster.name,
            "wave": wave,
            "initiators": initiators,
            "decided": [n for n in order if n in decided],
            "undecided": [n for n in order if n not in decided],
            "unreachable": [n for n in order if n not in alive],
            "dead_initiators": [n for n in initiators if n not in alive],
            "messages": sum(_count(r.get("sent")) for r in results),
            "enqueued": sum(len(r["enqueued"]) if type(r.get("enqueued")) is list else 0 for r in results),
            "elapsed_ms": round(elapsed_ms, 3),
        }

    # --- tasks ---------------------------------------------------------------------

    def submit(self, node: str, tasks: int, cost: float | None = None, label: str = "") -> dict:
        cost = self.topology.cluster.task_time if cost is None else cost
        reply = {}
        seq = self._next_id()

        def accept(name, msg):
            if name != node or msg["t"] not in ("submit.ok", "error") or msg["id"] != seq:
                return False
            reply.update(msg)
            return True

        self._send(node, "submit", tasks=tasks, cost=cost, label=label, id=seq)
        try:
            self._collect(time.monotonic() + self.timeout, accept)
        except WaveTimeout:
            why = self.why(node)
            raise WaveTimeout(f"node {node} did not answer: {why}" if why else
                              f"node {node} did not answer within {self.timeout:g} s; is it running?", [node]) from None
        if reply["t"] == "error":
            raise NodeError(f"node {node}: {reply['text']}")
        return {"node": node, "tasks": len(reply["ids"]), "cost": cost, "ids": reply["ids"]}

    def rebalance(self, policy: str = "heap") -> dict:
        """Echo, plan, move: one balancing round. Imbalance is measured by a second echo."""
        t0 = time.perf_counter()
        before = self.echo(detail=True)
        moves = plan.plan_samples(before["nodes"], policy)
        base = _wave_id("m")
        pending: dict[str, dict] = {}
        deadline = time.monotonic() + self.timeout
        requests = []
        seq = self._next_id()
        for k, mv in enumerate(moves):
            move_id = f"{base}-{k}"
            bulk = isinstance(mv, plan.BulkMove)  # how many; the donor picks them from its tail
            ids = [] if bulk else list(mv.task_ids)
            pending[move_id] = {"from": mv.source, "to": mv.dest, "planned": mv.count if bulk else len(ids),
                                "count": 0, "tasks": []}
            if not bulk:
                pending[move_id]["planned_tasks"] = ids
            requests.append((mv.source, "move", {"move_id": move_id, "dest": mv.dest, "tasks": ids,
                                                 "count": mv.count if bulk else 0, "id": seq}))
        unsent = set(self._send_each(requests, deadline))
        waiting = {move_id for move_id, m in pending.items() if m["from"] not in unsent}

        def accept(node, msg):
            if msg["t"] == "move.ok" and msg["id"] == seq and msg["move_id"] in waiting:
                entry = pending[msg["move_id"]]
                entry["tasks"] = msg["moved"]
                entry["count"] = msg["count"]
                waiting.discard(msg["move_id"])
            return not waiting

        if waiting:
            self._gather(deadline, accept)
        waiting |= {move_id for move_id, m in pending.items() if m["from"] in unsent}
        after = self.echo(detail=True) if pending else before
        return {
            "cluster": self.topology.cluster.name,
            "round_id": base,  # each move id is "<round id>-<k>" (daemon/core/waves.py round_of)
            "policy": policy,
            "moves": list(pending.values()),
            "moved": sum(m["count"] for m in pending.values()),
            "unanswered_moves": sorted(waiting),
            "imbalance_before": _rounded(imbalance(before["nodes"])),
            "imbalance_after": _rounded(imbalance(after["nodes"])),
            "elapsed_ms": round((time.perf_counter() - t0) * 1000, 3),
            "before": before,
            "after": after,
        }

    # --- asks for a balancing round (daemon/core/asking.py) ------------------------------

    def watch_balance(self, on: bool = True) -> list[str]:
        """Ask every node to send this operator ``balance.wanted`` when it would like a
        balancing round (``on=False``: to stop); returns the nodes whose queue stayed full."""
        sends = [(name, "balance.watch", {"on": on, "id": self._next_id()}) for name in self.topology.names]
        return self._send_each(sends, time.monotonic() + self.timeout)

    def balance_wanted(self, timeout: float) -> list[dict]:
        """The ``balance.wanted`` messages that came within ``timeout`` seconds (at most
        one wait: what the first wake-up finds), each from the node it names."""
        if not self.socks:
            time.sleep(timeout)
            return []
        wanted = []
        for sock, _ in self.poller.poll(max(0, int(timeout * 1000))):
            for msg in self._waiting(sock):
                if msg["t"] == "balance.wanted" and msg["node"] == self.by_sock[sock]:
                    wanted.append(msg)
        return wanted

    # --- traces ------------------------------------------------------------------------

    def _ask_traces(self, wave_ids: list[str], max_steps: int) -> dict[str, dict]:
        """``trace.get`` to every node at once; name -> its checked ``trace`` reply (its
        steps as dicts), for the nodes that answered one within the timeout. Those that
        answered something else (an error such as ``not-recording``, or a reply that is
        no trace) are in :attr:`trace_errors`, with why."""
        deadline = time.monotonic() + self.timeout
        names = list(self.topology.names)
        seq = self._next_id()
        fields = {"wave_ids": wave_ids, "max_steps": max_steps, "id": seq}
        stuck = set(self._send_each([(name, "trace.get", fields) for name in names], deadline))
        waiting = set(names) - stuck
        answers: dict[str, dict] = {}
        self.trace_errors = {}

        def accept(node, msg):
            if msg["t"] == "error" and msg["id"] == seq and node in waiting:  # e.g. not-recording
                waiting.discard(node)
                self.trace_errors[node] = msg["text"]
            elif msg["t"] == "trace" and msg["id"] == seq and node in waiting:
                waiting.discard(node)
                try:  # a node that answers garbage counts as one that did not answer
                    if msg["node"] != node:
                        raise recorder.StepError(f"node {node} answers as {msg['node']!r}")
                    msg["steps"] = [recorder.check_step(s, node) for s in wire.unpack_steps(msg["steps"])]
                except (recorder.StepError, wire.WireError) as exc:
                    self.trace_errors[node] = f"its answer is not a trace: {exc}"
                    return not waiting
                answers[node] = msg
            return not waiting

        if waiting:
            self._gather(deadline, accept)
        return answers

    def trace(self, wave_ids: list[str], wave: str | None = None, kind: str | None = None,
              max_steps: int = recorder.RING_STEPS) -> dict:
        """The trace (daemon/trace/recorder.py ``merge``) of the steps every node recorded
        about ``wave_ids`` ([]: everything each one holds), at most ``max_steps`` a node;
        ``wave`` and ``kind`` say what it is about (default: the first id's)."""
        answers = self._ask_traces(list(wave_ids), max_steps)
        missing = [name for name in self.topology.names if name not in answers]
        if wave is None and wave_ids:
            wave = wave_ids[0]
        return recorder.merge(self.topology, answers, missing, wave, kind)

    def last_wave(self) -> tuple[str | None, list[str]]:
        """``(wave id, silent nodes)``: the newest wave (by its id's start stamp) that any
        node saw last, None if no node saw one."""
        answers = self._ask_traces([], 0)
        seen = {w for a in answers.values() for w in a["seen"] if type(w) is str and wire.wave_started(w)}
        missing = [name for name in self.topology.names if name not in answers]
        return (max(seen, key=wire.wave_started) if seen else None), missing
