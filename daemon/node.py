"""The node daemon: the ZeroMQ driver of one node's :class:`daemon.core.node.NodeCore`.

Everything a node decides lives in the core (daemon/core/node.py); this module does the
I/O and nothing else (ARCHITECTURE.md, "The node core" and "Sockets"):

- Two ROUTERs. The *inbox*, bound at the node's endpoint, takes the cluster's nodes
  only: wave messages from neighbours, task transfers from donors. The *operator
  socket*, at the node's operator port (daemon/topology.py ``operator_endpoint``), takes
  operators only (``ctl``, the supervisor's balancer): their requests, and every reply
  and report the node sends them. The sender is known by the routing id of its DEALER.
  Keeping the two apart is what stops a client that sets a node's name as its routing
  id from taking that node's route in an inbox (``ROUTER_HANDOVER``, there for a
  restarted node): it can only reach the operator socket, which refuses node names.
- One DEALER per peer node, created on first use, connected to that peer's inbox with
  this node's name as its routing id. Node-to-node traffic, ACKs included, always goes
  DEALER -> the peer's inbox.
- Since anyone may choose any routing id, both ROUTERs are CURVE servers
  (daemon/security.py, unless the topology says ``security = "none"``) and a message is
  handed to the core only if the socket and the key behind it may speak under its
  routing id (``Gate``): at the inbox a node's name only with that node's key and node
  messages; at the operator socket any other name with the operator key and operator
  requests.
- Refused keys are loud: each DEALER has a socket monitor whose failed handshakes say
  who refused whose key (``security.HandshakeWatch``), and the process's ZAP handler
  records every key it refused. Once a second the loop reads both; each refusal is
  logged once (with both names) and counted (``handshakes_failed``, ``keys_refused``),
  and the pairs (who refused, whose key) go into the node's pong and echo sample
  (``refused``), where ``ctl`` finds them.
- A single-threaded loop: read the clock once, let the core's timers run
  (``tick``), wait in zmq_poll on both ROUTERs until the core's next deadline, hand each
  frame to the core (``handle``: a frame it cannot read, or one its sender may not send,
  is answered here, with the request's ``id`` when the map holds one) and execute the
  effects it returns, in order: journal
  records (daemon/journal.py) before the messages they precede, sends, replies, and the
  burner's busy slots (daemon/burner.py). psutil measures the node's real CPU use once
  a second.
- The flight recorder (daemon/trace/recorder.py): every step the core takes — a message
  handled, a tick that did something — is kept in a bounded ring with its time and
  duration on this node's clock, its input, its outputs and decisions; an operator's
  ``trace.get`` reads it. It runs only where the topology says ``[cluster] record =
  true``; otherwise nothing is recorded and a ``trace.get`` is answered with the error
  ``not-recording``.
- The recording (daemon/recording.py), where the topology says ``[cluster] record =
  true``: every input the core takes — its start state, each frame handled with its
  sender and time, each tick, the driver's own counts and CPU readings — and a digest of
  the effects of each step, written once a second and at exit to
  ``RUN_DIR/recording/NODE.EPOCH.rec``, so that ``ctl sim replay`` can run the node's core
  again step for step. Off, it costs one test of ``None`` per step.

- The log (daemon/logs.py): ``RUN_DIR/NODE.log``, rotated by size. What it says is
  derived here from what the driver has anyway: moves from each ``Persist`` effect's
  journal records, refused frames from the core's counters once a second (rate-limited),
  the node's starts, restarts and refused keys; at ``[cluster] log_level = "debug"``
  each wave's outcome here, from each step's effects. At the default level a step pays
  one test of ``None``.

A node dies with its supervisor (PR_SET_PDEATHSIG plus a once-a-second parent check)
and takes its burner with it. A node started again with the same journal recovers its
queue, its moves in flight and the move ids it answered. It serves as soon as it is
bound, but says ready (``--notify-fd``) only once its clock is past
:func:`daemon.core.node.ready_at` of its epoch: at once for a fresh node, a second after
a restart (:class:`ReadyLine`), so that a node the supervisor calls RUNNING joins every
new wave (ARCHITECTURE.md, "Durable state").
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import signal
import time

import psutil
import zmq

from daemon import logs, security, wire
from daemon.core import node as core
from daemon.core.messages import MAX_REFUSALS
from daemon.core.node import NodeConfig, NodeCore
from daemon.recording import RecordingWriter, add_effect, recording_file
from daemon.core.snapshot import refusal_text
from daemon.sockets import configure_socket
from daemon.topology import Topology, TopologyError, load, recording
from daemon.trace.recorder import Recorder

MEASURE_EVERY = 1.0  # seconds between psutil readings and parent checks


class Stopping(Exception):
    """Raised by the stop signal's handler to leave the loop wherever it is."""


class NodeDaemon:
    """The node ``name`` of ``topology``, bound and serving until :meth:`stop`.

    ``journal``: a :class:`daemon.journal.SqliteJournal` (None: nothing survives a crash).
    ``keys``: the cluster's CURVE keys as this node holds them (None: no authentication)."""

    def __init__(self, topology: Topology, name: str, burner=None, journal=None, now: float | None = None,
                 keys: security.ClusterKeys | None = None, run_dir=None):
        self.topology = topology
        self.name = name
        self.spec = topology.node(name)
        self.ident = name.encode()
        self.pid = os.getpid()
        self.journal = journal
        recovered = journal.load() if journal is not None else None
        self.recovered = recovered is not None
        # a restart: an epoch after every wave the previous incarnation joined, and ready
        # once every wave begun from then on is younger than it (daemon/core/node.py node_epoch)
        self.epoch = core.node_epoch(time.time(), journal.last_epoch if journal is not None else 0, self.recovered)
        if journal is not None:
            journal.set_epoch(self.epoch)
        self.ready_at = core.ready_at(self.epoch)
        now = time.time() if now is None else now
        config = NodeConfig.of(topology, name, self.pid)
        # written before the core is built, from the state exactly as the journal gave it
        self.recording = (RecordingWriter(recording_file(run_dir, name, self.epoch), name, self.epoch, now,
                                          journal is not None, config, recovered, topology.path or "")
                          if topology.cluster.record and run_dir is not None else None)
        self.core = NodeCore(config, self.epoch, now, recovered, journaled=journal is not None)
        self.recorder = (Recorder(name, self.epoch, core.routing_ids(frozenset(topology.names)))
                         if topology.cluster.record else None)
        self.burner = burner
        self.keys = keys
        self.gate = security.Gate(topology.names, authenticated=keys is not None)
        self.faults_said = 0  # wave faults and internal errors logged so far (once_a_second)
        self._proc = psutil.Process()
        self._burner_procs: dict[int, psutil.Process] = {}
        self.ctx: zmq.Context | None = None  # its NodeHost's, which destroys it with every socket
        self.inbox: zmq.Socket | None = None  # nodes only
        self.operators: zmq.Socket | None = None  # operators only
        self.peers: dict[str, zmq.Socket] = {}
        self.monitors: dict[str, zmq.Socket] = {}  # peer -> its DEALER's handshake monitor (CURVE)
        self.handshakes = security.HandshakeWatch(name)  # which links refuse a key, and whose
        self.keys_logged: set[tuple] = set()  # ZAP refusals already logged
        self.share = 1  # this process's CPU is split between this many nodes (NodeHost)
        # what its log says, derived from the effects and counters (daemon/logs.py); each
        # step's effects pass through it only at log level debug
        self.logbook = logs.NodeLog(name, now)
        self.log_steps = self.logbook.step if self.logbook.debug else None

    @property
    def stats(self) -> dict:
        return self.core.stats

    # --- sockets -------------------------------------------------------------------

    def bind(self, ctx: zmq.Context) -> str:
        """Bind the inbox and the operator socket in ``ctx`` (its :class:`NodeHost`'s, which
        runs the ZAP handler); raise OSError naming the node and port if one is taken.
        Returns the inbox's endpoint."""
        self.ctx = ctx
        self.inbox = self._bind(security.INBOX, self.topology.endpoint(self.name), self.spec.port, "port")
        self.operators = self._bind(security.OPERATORS, self.topology.operator_endpoint(self.name),
                                    self.topology.operator_port(self.name), "operator port")
        return self.topology.endpoint(self.name)

    def _bind(self, role: str, endpoint: str, port: int, what: str) -> zmq.Socket:
        sock = self.ctx.socket(zmq.ROUTER)
        configure_socket(sock)
        if self.keys is not None:
            security.make_server(sock, self.keys, role, self.name)
        sock.setsockopt(zmq.ROUTER_MANDATORY, 1)  # a reply to a vanished operator is counted
        # A client that reconnects (a restarted node, an operator whose link dropped) takes
        # its route back at once; without it, a new connection under a name the ROUTER
        # still holds gets silence. Each socket admits one role, so a name is only ever
        # handed to a client of the same kind.
        sock.setsockopt(zmq.ROUTER_HANDOVER, 1)
        try:
            sock.bind(endpoint)
        except zmq.ZMQError as exc:
            sock.close()
            reason = "is already in use" if exc.errno == errno.EADDRINUSE else f"cannot be bound: {exc.strerror}"
            raise OSError(f"node {self.name}: {what} {port} ({endpoint}) {reason}") from None
        return sock

    def send_peer(self, name: str, frame: bytes) -> None:
        sock = self.peers.get(name)
        if sock is None:  # the core names only nodes of the topology
            sock = self.ctx.socket(zmq.DEALER)
            configure_socket(sock)
            sock.setsockopt(zmq.IDENTITY, self.ident)
            if self.keys is not None:
                security.make_client(sock, self.keys, name)
                self.monitors[name] = sock.get_monitor_socket(security.HANDSHAKE_EVENTS)
            self.peers[name] = sock
            sock.connect(self.topology.endpoint(name))
        try:
            sock.send(frame, zmq.DONTWAIT)
        except zmq.Again:
            # the DEALER's queue toward a peer that has been down a long time is full:
            # drop and count (a wave to a dead node ends at its deadline; transfers are resent)
            self.count("dropped")

    def close_peer(self, name: str) -> None:
        sock = self.peers.pop(name, None)
        monitor = self.monitors.pop(name, None)
        if monitor is not None:
            self.read_monitor(name, monitor)  # what it saw before the link is reopened
            sock.disable_monitor()
            monitor.close(linger=0)
        if sock is not None:
            sock.close(linger=0)

    def reply(self, ident: bytes, frame: bytes) -> None:
        """To an operator, through the operator socket."""
        try:
            self.operators.send_multipart([ident, frame], zmq.DONTWAIT)
        except zmq.ZMQError:  # EHOSTUNREACH (ROUTER_MANDATORY): the asker is gone
            self.count("unroutable")

    # --- refused keys ----------------------------------------------------------------

    def read_monitor(self, peer: str, monitor: zmq.Socket) -> None:
        """The handshake events of the DEALER to ``peer`` since the last reading."""
        for said in self.handshakes.read(peer, monitor):
            if said == "accepted":
                self.log(f"{peer} and {self.name} completed a handshake again", logging.INFO)
            elif said is not None:
                self.count("handshakes_failed")
            if said == "refused":
                self.log(refusal_text(*self.handshakes.refused[peer]) + f": the link {self.name} -> {peer} is down; "
                         "make the keys again for the whole cluster or copy the right ones (README.md, Security)")

    def read_refusals(self, refusals) -> None:
        """This node's part of the ZAP handler's refused keys (``refusals``: the
        :class:`security.KeyRefusal` records taken off the handler's queue)."""
        for refusal in refusals:
            self.count("keys_refused")
            seen = (refusal.role, refusal.key, refusal.address)
            if seen not in self.keys_logged and len(self.keys_logged) < 1024:
                self.keys_logged.add(seen)
                self.log(refusal.text())

    def read_handshakes(self) -> None:
        for peer, monitor in list(self.monitors.items()):
            self.read_monitor(peer, monitor)
        pairs = sorted(self.handshakes.refused.values())[:MAX_REFUSALS]
        if pairs != self.core.refused:  # an input of the core's, as psutil's reading is
            self.core.refused = pairs
            if self.recording is not None:
                self.recording.refused(pairs)

    def log(self, text: str, level: int = logging.WARNING) -> None:
        self.logbook.logger.log(level, "%s", text)

    def close(self) -> None:
        """Stop the burner, close the journal (the sockets go with the host's context)."""
        if self.burner is not None:
            self.burner.close()
        if self.journal is not None:
            self.journal.close()
        if self.recording is not None:
            self.recording.close()

    def count(self, stat: str) -> None:
        """One of the driver's own counters (they reach the core's statistics)."""
        self.core.count(stat)
        if self.recording is not None:
            self.recording.count(stat)

    # --- the loop ------------------------------------------------------------------

    def drain(self, sock: zmq.Socket, limit: int) -> None:
        """Handle what ``sock`` (the inbox or the operator socket) holds, up to ``limit``
        messages, without blocking (:class:`NodeHost`'s loop, once zmq_poll says it is
        readable)."""
        role = security.INBOX if sock is self.inbox else security.OPERATORS
        for _ in range(limit):
            try:
                if self.keys is None:
                    frames, user_id = sock.recv_multipart(zmq.DONTWAIT), None
                else:  # and the key behind it, as the ZAP handler named it
                    frames, user_id = security.recv_with_user_id(sock, zmq.DONTWAIT)
            except zmq.Again:
                return
            self.handle(frames, time.time(), user_id, role)

    def handle(self, frames: list[bytes], now: float, user_id: str | None = None, role: str = security.INBOX) -> None:
        """One message off the socket ``role``: decode at the edge, check who may say it
        there (``user_id``: its User-Id property under CURVE), let the core decide."""
        if len(frames) != 2:
            self.count("received")
            self.count("garbage")
            if frames:
                self.reply_error(role, frames[0], "frames", f"expected one frame, got {len(frames) - 1}")
            return
        ident, frame = frames
        raw = None
        try:
            raw = wire.open_frame(frame)
            # who may send this type here, before its fields are checked: an operator
            # learns nothing of a node message's fields from the errors it is told
            kind = raw["t"]
            refusal = self.gate.refusal(role, user_id, ident, kind)
            if refusal is not None and kind == "wave":  # said with the wave's own message type
                w = raw.get("w")
                shown = w[1] if type(w) is list and len(w) == 6 else raw.get("msg")  # daemon/wire.py WAVE_FIELDS
                if type(shown) is str and 0 < len(shown) <= 64:
                    refusal = self.gate.refusal(role, user_id, ident, kind, shown)
            if refusal is None:
                epoch, msg = wire.typed(raw)
        except wire.WireError as exc:
            self.count("received")
            self.count("garbage")
            self.reply_error(role, ident, "malformed", str(exc), wire.request_id(raw))
            return
        if refusal is not None:
            self.count("received")
            self.count("unauthorized")
            self.reply_error(role, ident, "unauthorized", f"{self.name}: {refusal}", wire.request_id(raw))
            return
        effects = self.core.handle(ident, epoch, msg, now)
        if self.recording is None:
            self.execute(effects)
        else:
            self.execute_recorded(effects, "h", now, ident, epoch, frame)
        if self.recorder is not None:
            self.recorder.record(now, max(0.0, time.time() - now), ident, epoch, msg, effects, self.core.board.queue_length)

    def tick(self, now: float) -> None:
        """Time passed: let the core's timers run, execute and record what they do."""
        effects = self.core.tick(now)
        if self.recording is not None:  # even a tick that does nothing moves the core's clock
            self.execute_recorded(effects, "t", now)
        elif effects:
            self.execute(effects)
        if effects and self.recorder is not None:  # a tick that does nothing is no step of the flight record
            self.recorder.record(now, max(0.0, time.time() - now), None, None, None, effects, self.core.board.queue_length)

    def enqueue(self, n: int, cost: float, label: str, now: float) -> None:
        """New work at this node (the topology's initial tasks)."""
        effects = self.core.enqueue(n, cost, label, now)
        if self.recording is None:
            self.execute(effects)
        else:
            self.execute_recorded(effects, "q", now, n, cost, label)

    def execute_recorded(self, effects: list, *step) -> None:
        """:meth:`execute`, then record the step (its kind and inputs, daemon/recording.py)
        with the digest of the effects as executed."""
        digest = self.recording.begin()
        self.execute(effects, digest)
        self.recording.end(step, digest)

    def reply_error(self, role: str, ident: bytes, code: str, text: str, request: int | None = None) -> None:
        """Tell the sender what was wrong with its frame, through the socket it came in
        on: at the operator socket always (whatever name it took); at the inbox only a
        sender whose routing id is no node's (a node reads only its own inbox: the reply
        would sit unread on its DEALER, and the ROUTER would send it to whoever holds
        the name). ``request``: the id of the request in the frame, if it could be read."""
        if role == security.OPERATORS:
            self.reply(ident, wire.encode("error", self.epoch, code=code, text=text, id=request))
        elif ident.decode(errors="replace") not in self.topology:
            try:
                self.inbox.send_multipart([ident, wire.encode("error", self.epoch, code=code, text=text, id=request)],
                                          zmq.DONTWAIT)
            except zmq.ZMQError:
                self.count("unroutable")

    def execute(self, effects: list, digest=None) -> None:
        """Carry out one step's effects in order; with ``digest`` (a recording node's:
        daemon/recording.py ``RecordingWriter.begin``), add each to it, messages as sent."""
        if self.log_steps is not None:  # log level debug: the waves' outcomes (daemon/logs.py)
            self.log_steps(effects)
        for effect in effects:
            kind = type(effect)
            if kind is core.Send or kind is core.Reply:
                try:
                    frame = wire.pack(effect.msg, self.epoch)
                except (TypeError, ValueError, OverflowError, KeyError) as exc:
                    # a wave kind's message or result that is no plain value (msgpack
                    # cannot frame it): contained like the kind's other faults
                    self.count("wave_faults")
                    self.core.last_internal = f"cannot frame {type(effect.msg).__name__}: {type(exc).__name__}: {exc}"[:300]
                    continue
                if digest is not None:
                    add_effect(digest, effect, frame)
                if kind is core.Send:
                    self.send_peer(effect.dest, frame)
                else:
                    self.reply(effect.to, frame)
                continue
            if digest is not None:
                add_effect(digest, effect, None)
            if kind is core.Persist:
                if self.journal is not None:
                    self.journal.write(effect.records)
                self.logbook.persisted(effect.records)  # moves in and out
            elif kind is core.SetBusy:
                if self.burner is not None:
                    self.burner.set_busy(effect.slots)
            elif kind is core.Reconnect:  # the next send opens a fresh connection
                self.close_peer(effect.peer)
            elif kind is core.ShowTrace:
                rec = self.recorder
                if rec is None:
                    self.reply(effect.to, wire.encode("error", self.epoch, code="not-recording", id=effect.id,
                                                      text=f"{self.name}: not recording (the topology's [cluster] does not say record = true)"))
                    continue
                steps, dropped = rec.select(effect.wave_ids, effect.max_steps)
                self.reply(effect.to, wire.pack_trace(self.epoch, self.name, rec.inc, dropped, list(rec.seen), steps,
                                                      request=effect.id))

    def measure_cpu(self) -> float | None:
        """psutil: this process (its share of it, in a :class:`NodeHost`) and its burner,
        in % of one core since the last call."""
        try:
            total = self._proc.cpu_percent(None) / self.share
            pids = set(self.burner.pids()) if self.burner is not None else set()
            for pid in list(self._burner_procs):
                if pid not in pids:
                    del self._burner_procs[pid]
            for pid in pids:
                proc = self._burner_procs.get(pid)
                if proc is None:
                    proc = self._burner_procs[pid] = psutil.Process(pid)
                    proc.cpu_percent(None)  # the first call only starts the measurement
                else:
                    total += proc.cpu_percent(None)
            return round(total, 1)
        except psutil.Error:
            self._burner_procs.clear()
            return None


def once_a_second(nodes: list[NodeDaemon], parent_pid: int | None, parent_alive, now: float,
                  ready: ReadyLine | None = None, authenticator=None) -> float | None:
    """The loops' once-a-second turn: None if the parent is gone (the process is to
    stop); else each node's CPU use measured for its samples, the refused keys and
    handshakes read (``authenticator``: the process's ZAP handler, None without CURVE),
    the ready line said if it is due, and the time of the next turn (sooner while the
    ready line waits)."""
    if parent_pid is not None and parent_alive is not None and not parent_alive(parent_pid):
        return None
    refusals: dict[str, list] = {}
    while authenticator is not None and authenticator.refusals:
        refusal = authenticator.refusals.popleft()
        refusals.setdefault(refusal.node, []).append(refusal)
    for node in nodes:
        percent = node.measure_cpu()
        node.core.cpu_percent = percent
        faults = node.core.stats["wave_faults"] + node.core.stats["internal"]
        if faults != node.faults_said:  # a wave kind that raised, or a contained bug: one line a second
            node.faults_said = faults
            node.log(f"contained {faults} fault(s) so far; the latest: {node.core.last_internal}")
        if node.keys is not None:
            node.read_refusals(refusals.get(node.name, ()))
            node.read_handshakes()
        if node.recording is not None:
            node.recording.cpu(percent)
            node.recording.flush()
        node.logbook.turn(node.core.stats, node.core.last_internal, now)  # refused frames, rate-limited
    turn = now + MEASURE_EVERY
    again = ready.check(now) if ready is not None else None
    return turn if again is None or again > turn else again


class ReadyLine:
    """The process's ready line (``ready PID ENDPOINT...``), said once by ``say`` when
    every node's clock is past its :attr:`NodeDaemon.ready_at` (daemon/core/node.py
    ``ready_at``): at once for fresh nodes, a second after a restart. Until then the
    supervisor does not call the nodes RUNNING, for a wave begun by then may be older than
    a node's epoch and be refused; but they serve already (resend their moves, answer
    their peers), from the loop that says the line (:func:`once_a_second`)."""

    def __init__(self, nodes: list[NodeDaemon], say, now: float):
        self.at = max(node.ready_at for node in nodes)
        self.say = say
        for node in nodes:
            if node.ready_at > now:
                logging.getLogger(f"echofinn.node.{node.name}").info(  # its log (daemon/logs.py)
                    "ready in %.2f s, once no new wave can be older than its epoch", node.ready_at - now)

    def check(self, now: float) -> float | None:
        """Say the line if it is due; returns when it will be (None: said)."""
        if self.say is None:
            return None
        if now < self.at:
            return self.at
        self.say()
        self.say = None
        return None


class NodeHost:
    """The nodes of one daemon process: one, or several (``[cluster] nodes_per_process``).

    Each node is a whole :class:`NodeDaemon` — its own inbox and operator socket at its
    own ports, its own DEALERs, core, journal and burner — and they share one ZeroMQ
    context (one I/O thread, one ZAP handler: the cluster's User-Ids are the same for
    every node) and one loop: zmq_poll over every node's two sockets, with the nearest
    of the cores' deadlines as its timeout, then each readable socket drained up to
    :attr:`BATCH` messages, so that a flooded node cannot starve the others. (A single
    node once blocked in its inbox's receive, one system call a message where a poll
    costs several; with operators on a socket of their own it polls too.)

    Why several: on a machine with far fewer cores than nodes, an echo wave's time is
    the CPU its processes need, and a process woken for each message mostly waits on
    memory — every other process has evicted its caches since its last turn. A process
    serving several nodes stays warm (ARCHITECTURE.md, "Nodes per process"; BENCHMARKS.md
    has the numbers). The price: the nodes of a process live and die together; the
    supervisor restarts them together, and each recovers from its own journal."""

    BATCH = 64

    def __init__(self, nodes: list[NodeDaemon]):
        self.nodes = nodes
        for node in nodes:
            node.share = len(nodes)
        self.ctx: zmq.Context | None = None
        self.authenticator = None

    def bind(self) -> list[str]:
        """Bind every node's sockets; returns their inboxes' endpoints, in order. OSError
        naming the node and port if one is taken."""
        self.ctx = zmq.Context()
        keys = self.nodes[0].keys
        if keys is not None:
            self.authenticator = security.start_authenticator(self.ctx, keys, [node.name for node in self.nodes])
        return [node.bind(self.ctx) for node in self.nodes]

    def close(self) -> None:
        for node in self.nodes:
            node.close()
        if self.authenticator is not None:
            self.authenticator.stop()
        if self.ctx is not None:
            self.ctx.destroy(linger=0)

    def stop(self, *_):
        """The SIGTERM/SIGINT handler: leave the loop now, even from zmq_poll.

        It acts once: the stop signals are ignored from then on, so that a second one
        cannot interrupt the close (the burner, the journal, the context). Slurm's
        ``scancel`` signals every process of a job step, so a node hears SIGTERM from
        Slurm and again from its supervisor a moment later."""
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        raise Stopping

    def run(self, parent_pid: int | None = None, parent_alive=None, ready: ReadyLine | None = None) -> None:
        """Serve every node until :meth:`stop` (or the parent dies); say ``ready`` when due.
        A signal interrupts the poll; the handler's exception ends the loop at once."""
        poller = zmq.Poller()
        node_of = {}
        for node in self.nodes:
            for sock in (node.inbox, node.operators):
                poller.register(sock, zmq.POLLIN)
                node_of[sock] = node
        next_measure = 0.0
        try:
            while True:
                now = time.time()
                if now >= next_measure:
                    next_measure = once_a_second(self.nodes, parent_pid, parent_alive, now, ready,
                                                 self.authenticator)
                    if next_measure is None:
                        return
                deadline = next_measure
                for node in self.nodes:
                    due = node.core.next_deadline()
                    if due <= now:
                        node.tick(now)
                        due = node.core.next_deadline()
                    if due < deadline:
                        deadline = due
                for sock, _ in poller.poll(max(0, int((deadline - now) * 1000) + 1)):
                    node_of[sock].drain(sock, self.BATCH)
        except Stopping:
            pass


def warm(topology: Topology) -> None:
    """Build the read-only tables every node of ``topology`` uses (routing ids to names,
    to User-Ids), so that nodes forked afterwards (daemon/zygote.py) share one copy
    instead of each building its own: a quarter of a megabyte per node at 1,000 nodes."""
    names = tuple(topology.names)
    core.routing_ids(frozenset(names))
    security.node_idents(names)


def node_args(names) -> list[str]:
    """``--node A --node B ...``: how a daemon's command line names the nodes it serves
    (read back by daemon/orphans.py ``served_nodes``)."""
    return [arg for name in names for arg in ("--node", name)]


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m daemon", description="Run one node daemon of an echofinn cluster, or several in one process (started by the supervisor).")
    p.add_argument("--topology", required=True, help="the cluster's topology file")
    p.add_argument("--node", required=True, action="append",
                   help="a node's name in the topology; give it several times to serve several nodes in this process")
    p.add_argument("--run-dir", help="the cluster's run directory (the journal goes to RUN_DIR/journal/NODE.sqlite)")
    p.add_argument("--journal", help="the journal file of a single node (default: in the run directory; none without one)")
    p.add_argument("--notify-fd", type=int, help="write one line, 'ready PID ENDPOINT...' or 'error MESSAGE', to this fd once bound and ready")
    p.add_argument("--record", action="store_true", help="record every step ([cluster] record = true, whatever the file says)")
    return p.parse_args(argv)


def _notify(fd: int | None, line: str) -> None:
    if fd is None:
        print(line, flush=True)
        return
    try:
        os.write(fd, (line + "\n").encode())
        os.close(fd)
    except OSError:
        pass


def main(argv=None) -> int:
    from daemon.lifecycle import die_with_parent

    args = parse_args(argv)
    ppid = die_with_parent()
    try:
        topology = load(args.topology)
        if args.record:
            topology = recording(topology)
        for name in args.node:
            topology.node(name)
    except TopologyError as exc:
        _notify(args.notify_fd, f"error {exc}")
        return 2
    if len(set(args.node)) != len(args.node):
        _notify(args.notify_fd, f"error nodes named twice: {' '.join(args.node)}")
        return 2
    if len(args.node) > 1 and args.journal:
        _notify(args.notify_fd, "error --journal names the journal of a single node; several nodes keep theirs in --run-dir")
        return 2
    return serve(topology, args.node, args.notify_fd, ppid, args.run_dir, args.journal)


def journal_file(run_dir, name: str) -> str:
    """Where node ``name`` keeps its journal in the cluster's run directory."""
    return os.path.join(run_dir, "journal", f"{name}.sqlite")


def serve(topology: Topology, names: list[str], notify_fd: int | None, ppid: int, run_dir=None,
          journal_path: str | None = None) -> int:
    """Run the nodes ``names`` (one, or several served by one :class:`NodeHost`) until
    stopped: load its keys and recover from its journal (both in ``run_dir``),
    bind, say ready on ``notify_fd`` (``ready PID ENDPOINT...``, one endpoint per node,
    in order), serve. Called by :func:`main` in a fresh interpreter, or by
    daemon/zygote.py in a process forked from the supervisor."""
    from daemon.burner import Burner
    from daemon.journal import JournalError, SqliteJournal
    from daemon.lifecycle import parent_alive

    nodes: list[NodeDaemon] = []
    failure = None
    try:
        for name in names:
            logs.node_logger(name, run_dir, topology.cluster)  # before the node: it reads the level
            path = journal_path if journal_path is not None else journal_file(run_dir, name) if run_dir else None
            keys = None
            if topology.cluster.security == security.CURVE:
                keys = security.ClusterKeys.load(run_dir or ".", topology, name)
            journal = SqliteJournal(path) if path else None
            nodes.append(NodeDaemon(topology, name, burner=Burner(name), journal=journal, keys=keys, run_dir=run_dir))
    except security.KeyProblem as exc:
        failure = (f"error {exc}", 2)
    except JournalError as exc:
        failure = (f"error node {name}: {exc}", 3)
    except OSError as exc:  # the recording's file (daemon/recording.py)
        failure = (f"error node {name}: cannot write its recording: {exc}", 3)
    if failure is not None:
        for node in nodes:
            node.close()
        _notify(notify_fd, failure[0])
        return failure[1]
    host = NodeHost(nodes)
    try:
        endpoints = host.bind()
    except OSError as exc:
        _notify(notify_fd, f"error {exc}")
        host.close()
        return 3
    signal.signal(signal.SIGTERM, host.stop)
    signal.signal(signal.SIGINT, host.stop)
    for node in nodes:
        if node.recovered:
            board = node.core.board
            node.log(f"restarted: recovered from {node.journal.path}: {len(board.queued)} queued, {board.done} done, "
                     f"{len(board.leaving)} moves in flight", logging.INFO)
        else:
            node.log("started", logging.INFO)
            if node.spec.tasks:
                node.enqueue(node.spec.tasks, topology.cluster.task_time, "initial", time.time())
    ready = ReadyLine(nodes, lambda: _notify(notify_fd, f"ready {os.getpid()} {' '.join(endpoints)}"), time.time())
    for node, endpoint in zip(nodes, endpoints):
        node.log(f"serving at {endpoint} (pid {os.getpid()}, {node.spec.cpus} cpus)", logging.INFO)
    try:
        host.run(ppid, parent_alive, ready)
    finally:
        host.close()
    for node in nodes:
        node.log("stopped", logging.INFO)
    return 0
