"""The node daemon: one process per node, running the core's state machines over ZeroMQ.

Theory of operation (DESIGN §2, the ZeroMQ guide's chapter 8 "Harmony" pattern):

- One ROUTER, the *inbox*, bound at the node's endpoint. Everything arrives there: wave
  messages from neighbours, task transfers from donors, commands from operators. The
  sender's name is the routing id of its DEALER; since anyone may choose any routing id,
  the inbox is a CURVE server and a message is handled only if the key behind it may
  speak under that name (daemon/security.py; unless the topology says security = "none").
- One DEALER per peer, created on first use, connected to that peer's inbox with this
  node's name as its routing id: the neighbours (waves) and any node it hands tasks to.
  Node-to-node traffic, ACKs included, always goes DEALER -> the peer's inbox; only
  operators (which read their DEALERs) get replies through the inbox's routing ids.
- A single-threaded loop: a blocking receive on the inbox whose timeout is the next
  timer (a task finishing, a transfer to resend, housekeeping); one message at a time.
  The core state machines are called from here and nowhere else.

Echo samples (DESIGN §3, §5). A node samples its state once per echo wave, when it
joins. So that the samples add up — submitted = done + queued + running + in flight at
every echo — the cut is made consistent with Lai and Yang's rule: every message of the
hand-off (TRANSFER, ACK, FORGET) carries the ids of the echo waves its sender has
already sampled, and a receiver that has not sampled one of them yet samples it
*before* handling the message.

A node dies with its supervisor (PR_SET_PDEATHSIG plus a once-a-second parent check)
and takes its burner with it.
"""

from __future__ import annotations

import argparse
import errno
import os
import signal
import sys
import time
from collections import OrderedDict

import psutil
import zmq

from daemon import security, wire
from daemon.core.echo import Echo, EchoWave
from daemon.core.finn import FinnWave
from daemon.core.tasks import Task, TaskBoard, Transfer
from daemon.core.waves import WaveError
from daemon.topology import Topology, TopologyError, load

WAVE_TTL = 60.0  # forget a wave's state this long after its last message
DONE_WAVE_MEMORY = 60.0  # remember finished echo waves (late duplicates, Lai-Yang tags)
RESEND_EVERY = 0.5  # resend an unacknowledged TRANSFER
MOVE_DEADLINE = 5.0  # a destination silent this long: the donor takes the tasks back
SEEN_MOVE_TTL = 600.0
HOUSEKEEPING = 1.0


class Stopping(Exception):
    """Raised by the stop signal's handler to leave the loop wherever it is."""


def configure_socket(sock: zmq.Socket) -> None:
    """The options every socket of the cluster gets (DESIGN §2)."""
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.MAXMSGSIZE, wire.MAX_FRAME)


class NodeDaemon:
    """The node ``name`` of ``topology``, bound and serving until :meth:`stop`."""

    def __init__(self, topology: Topology, name: str, burner=None, keys: security.ClusterKeys | None = None):
        self.topology = topology
        self.name = name
        self.spec = topology.node(name)
        self.ident = name.encode()
        self.epoch = time.time_ns()
        self.pid = os.getpid()
        self.neighbours = topology.neighbours(name)
        self.parents = topology.parents(name)
        self.children = topology.children(name)
        self.board = TaskBoard(name, self.spec.cpus, memory=SEEN_MOVE_TTL)
        self.burner = burner
        self.task_seq = 0
        self.echo_waves: dict[str, EchoWave] = {}
        self.echo_reporters: dict[str, bytes] = {}
        self.echo_detail: dict[str, bool] = {}  # wave -> whether samples list every task
        self.done_waves: OrderedDict[str, float] = OrderedDict()  # finished/sampled echo waves -> when
        self.finn_waves: dict[str, FinnWave] = {}
        self.finn_params: dict[str, tuple[int, float, bytes]] = {}
        self.last_seen: dict[str, float] = {}  # wave -> last activity, for the TTL
        self.sender_epochs: dict[bytes, int] = {}  # node peer -> latest epoch seen
        self.peer_idents = frozenset(n.encode() for n in topology.names)
        self.stats = {"received": 0, "garbage": 0, "stale": 0, "unroutable": 0, "dropped": 0, "wave_errors": 0, "refused_transfers": 0, "unauthorized": 0}
        self.cpu_percent: float | None = None
        self._proc = psutil.Process()
        self._burner_procs: dict[int, psutil.Process] = {}
        self._running = True
        self.ctx: zmq.Context | None = None
        self.inbox: zmq.Socket | None = None
        self.peers: dict[str, zmq.Socket] = {}
        self.keys = keys  # None: no authentication (security = "none")
        self.gate = security.Gate(topology.names) if keys is not None else None
        self.authenticator = None

    # --- sockets -------------------------------------------------------------------

    def bind(self) -> str:
        """Bind the inbox; raise OSError naming the node and port if it is taken."""
        self.ctx = zmq.Context()
        inbox = self.ctx.socket(zmq.ROUTER)
        configure_socket(inbox)
        inbox.setsockopt(zmq.ROUTER_MANDATORY, 1)
        inbox.setsockopt(zmq.ROUTER_HANDOVER, 1)
        if self.keys is not None:
            self.authenticator = security.start_authenticator(self.ctx, self.keys)
            security.make_server(inbox, self.keys)
        endpoint = self.topology.endpoint(self.name)
        try:
            inbox.bind(endpoint)
        except zmq.ZMQError as exc:
            inbox.close()
            reason = "is already in use" if exc.errno == errno.EADDRINUSE else f"cannot be bound: {exc.strerror}"
            raise OSError(f"node {self.name}: port {self.spec.port} ({endpoint}) {reason}") from None
        self.inbox = inbox
        return endpoint

    def peer(self, name: str) -> zmq.Socket:
        sock = self.peers.get(name)
        if sock is None:
            sock = self.ctx.socket(zmq.DEALER)
            configure_socket(sock)
            sock.setsockopt(zmq.IDENTITY, self.ident)
            if self.keys is not None:
                security.make_client(sock, self.keys, name)
            sock.connect(self.topology.endpoint(name))
            self.peers[name] = sock
        return sock

    def send_peer(self, name: str, frame: bytes) -> None:
        try:
            self.peer(name).send(frame, zmq.DONTWAIT)
        except zmq.Again:
            # the DEALER's queue toward a peer that has been down a long time is full:
            # drop and count (a wave to a dead node fails anyway; transfers are resent)
            self.stats["dropped"] += 1

    def reply_error(self, ident: bytes, code: str, text: str) -> None:
        """Tell an operator what was wrong with its message. A node peer is not told: it
        reads only its inbox, and the reply would sit unread on its DEALER."""
        if ident.decode(errors="replace") in self.topology:
            return
        self.reply(ident, wire.encode("error", self.epoch, code=code, text=text))

    def reply(self, ident: bytes, frame: bytes) -> None:
        try:
            self.inbox.send_multipart([ident, frame], zmq.DONTWAIT)
        except zmq.ZMQError:  # EHOSTUNREACH (ROUTER_MANDATORY): the asker is gone
            self.stats["unroutable"] += 1

    def close(self) -> None:
        for sock in self.peers.values():
            sock.close()
        if self.inbox is not None:
            self.inbox.close()
        if self.authenticator is not None:
            self.authenticator.stop()
        if self.ctx is not None:
            self.ctx.term()
        if self.burner is not None:
            self.burner.close()

    # --- the loop ------------------------------------------------------------------

    def stop(self, *_):
        """The SIGTERM/SIGINT handler: leave the loop now, even from a blocking receive."""
        self._running = False
        raise Stopping

    def run(self, parent_pid: int | None = None, parent_alive=None) -> None:
        """Serve until :meth:`stop` (or the parent dies).

        The loop blocks in the inbox's receive with a timeout (RCVTIMEO) set to the next
        timer, rather than in zmq_poll: on this kind of machine each libzmq call costs
        system calls, and a poll costs several per message, a blocking receive one. A
        signal interrupts the receive; the handler's exception ends the loop at once."""
        inbox = self.inbox
        gate = self.gate
        timeout_set = None
        next_housekeeping = 0.0
        try:
            while self._running:
                now = time.time()
                if now >= next_housekeeping:
                    self.housekeeping(now)
                    next_housekeeping = now + HOUSEKEEPING
                    if parent_pid is not None and parent_alive is not None and not parent_alive(parent_pid):
                        return
                self.advance_tasks(now)
                deadline = next_housekeeping
                task_deadline = self.board.next_deadline()
                if task_deadline is not None and task_deadline < deadline:
                    deadline = task_deadline
                timeout_ms = max(0, int((deadline - time.time()) * 1000) + 1)
                if timeout_ms != timeout_set:
                    inbox.setsockopt(zmq.RCVTIMEO, timeout_ms)
                    timeout_set = timeout_ms
                try:
                    if gate is None:
                        frames, user_id = inbox.recv_multipart(), None
                    else:  # and the key behind it, as the ZAP handler named it
                        frames, user_id = security.recv_with_user_id(inbox)
                except zmq.Again:
                    continue  # a timer is due
                self.handle(frames, user_id)
        except Stopping:
            pass

    def housekeeping(self, now: float) -> None:
        for tr in self.board.transfers_to_resend(now, RESEND_EVERY):
            self.send_transfer(tr)
        if self.board.take_back_expired(now):
            self.sync_burner()
        for wave, seen in list(self.last_seen.items()):
            if now - seen > WAVE_TTL:
                self.last_seen.pop(wave, None)
                self.echo_waves.pop(wave, None)
                self.echo_reporters.pop(wave, None)
                self.echo_detail.pop(wave, None)
                self.finn_waves.pop(wave, None)
                self.finn_params.pop(wave, None)
        while self.done_waves and now - next(iter(self.done_waves.values())) > DONE_WAVE_MEMORY:
            self.done_waves.popitem(last=False)
        self.measure_cpu()

    def measure_cpu(self) -> None:
        """psutil: this process and its burner, in % of one core since the last call."""
        try:
            total = self._proc.cpu_percent(None)
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
            self.cpu_percent = round(total, 1)
        except psutil.Error:
            self._burner_procs.clear()

    def advance_tasks(self, now: float) -> None:
        started, finished = self.board.advance(now)
        if started or finished:
            self.sync_burner()

    def sync_burner(self) -> None:
        if self.burner is not None:
            self.burner.set_busy(self.board.busy_slots())

    # --- messages ------------------------------------------------------------------

    def handle(self, frames: list[bytes], user_id: str | None = None) -> None:
        """One message from the inbox; ``user_id`` is its User-Id property (CURVE only)."""
        self.stats["received"] += 1
        if len(frames) != 2:
            self.stats["garbage"] += 1
            if frames:
                self.reply_error(frames[0], "frames", f"expected one frame, got {len(frames) - 1}")
            return
        ident, frame = frames
        try:
            msg = wire.decode(frame)
        except wire.WireError as exc:
            self.stats["garbage"] += 1
            self.reply_error(ident, "malformed", str(exc))
            return
        if self.gate is not None:
            refusal = self.gate.refusal(user_id, ident, msg["t"])
            if refusal is not None:
                self.stats["unauthorized"] += 1
                self.reply_error(ident, "unauthorized", refusal)
                return
        if ident in self.peer_idents:  # operators come and go; only peers have epochs to track
            seen = self.sender_epochs.get(ident, 0)
            if msg["e"] < seen:
                self.stats["stale"] += 1
                return
            self.sender_epochs[ident] = msg["e"]
        wave = msg.get("wave")
        if wave is not None and (wire.wave_started(wave) or self.epoch) < self.epoch:
            self.stats["stale"] += 1  # a wave that began before this node did
            return
        handler = self.HANDLERS.get(msg["t"])
        if handler is None:
            self.stats["garbage"] += 1
            self.reply_error(ident, "unexpected", f"a node does not accept {msg['t']!r}")
            return
        try:
            handler(self, ident, msg)
        except (WaveError, wire.WireError) as exc:
            self.stats["wave_errors"] += 1
            self.reply_error(ident, "rejected", str(exc))

    def on_ping(self, ident: bytes, msg: dict) -> None:
        self.reply(ident, wire.encode("pong", self.epoch, id=msg["id"], name=self.name, pid=self.pid, stats=dict(self.stats)))

    # echo ---------------------------------------------------------------------------

    def sample(self, detail: bool = True) -> dict:
        """This node's entry in an echo wave's convergecast. Without ``detail`` the
        per-task lists are left out (a live view needs counts; the balancer's plan needs
        every queued task): the wave's messages are then a few times smaller."""
        state = self.board.sample(time.time(), detail)
        state.update(cpus=self.spec.cpus, pid=self.pid, cpu_percent=self.cpu_percent, sent=0)
        return state

    def sampler(self, wave: str):
        detail = self.echo_detail.get(wave, True)
        return lambda: self.sample(detail)

    def echo_wave(self, wave: str) -> EchoWave | None:
        w = self.echo_waves.get(wave)
        if w is None:
            if wave in self.done_waves:
                return None  # a late duplicate of a wave this node has finished
            w = self.echo_waves[wave] = EchoWave(self.name, self.neighbours, wave)
        self.last_seen[wave] = time.time()
        return w

    def on_echo_start(self, ident: bytes, msg: dict) -> None:
        wave = msg["wave"]
        w = self.echo_wave(wave)
        if w is None or w.joined:
            self.reply_error(ident, "duplicate", f"wave {wave} already reached {self.name}")
            return
        self.echo_reporters[wave] = ident
        self.echo_detail[wave] = msg["detail"]
        self.emit_echo(w, w.start(self.sampler(wave)))

    def on_wave(self, ident: bytes, msg: dict) -> None:
        wave = msg["wave"]
        w = self.echo_wave(wave)
        if w is None:
            return
        if msg["t"] == "explore":
            self.echo_detail.setdefault(wave, msg["detail"])
        self.emit_echo(w, w.receive(ident.decode(), wire.to_core(msg), self.sampler(wave)))

    def emit_echo(self, w: EchoWave, step) -> None:
        for dest, m in step.sends:
            if type(m) is Echo:
                # this node's message count is known only now, as it echoes
                w.state["sent"] = w.sent
            self.send_peer(dest, wire.from_core(m, self.epoch, detail=self.echo_detail.get(w.wave, True)))
        if w.finished:
            self.finish_echo(w)
        if step.decided:
            w.state["sent"] = w.sent
            ident = self.echo_reporters.pop(w.wave, None)
            if ident is not None:
                self.reply(ident, wire.encode("echo.result", self.epoch, wave=w.wave, entries=wire.pack_entries(w.result)))

    def finish_echo(self, w: EchoWave) -> None:
        self.echo_waves.pop(w.wave, None)
        self.echo_detail.pop(w.wave, None)
        self.last_seen.pop(w.wave, None)
        self.done_waves[w.wave] = time.time()

    def sampled_waves(self) -> list[str]:
        """Echo waves this node has sampled: the Lai-Yang tag of its TRANSFERs and ACKs."""
        tags = [wv for wv, w in self.echo_waves.items() if w.sampled]
        tags.extend(self.done_waves)
        return tags

    def presample(self, waves: list) -> None:
        for wave in waves:
            if type(wave) is str and wave not in self.done_waves and (wire.wave_started(wave) or self.epoch) >= self.epoch:
                w = self.echo_wave(wave)
                if w is not None:
                    w.presample(self.sample)  # the detail level is not known yet: take all

    # Finn ---------------------------------------------------------------------------

    def finn_wave(self, wave: str) -> FinnWave:
        w = self.finn_waves.get(wave)
        if w is None:
            w = self.finn_waves[wave] = FinnWave(self.name, self.parents, self.children, wave)
        self.last_seen[wave] = time.time()
        return w

    def on_finn_start(self, ident: bytes, msg: dict) -> None:
        wave = msg["wave"]
        self.finn_params.setdefault(wave, (msg["tasks"], float(msg["cost"]), msg["report"]))
        w = self.finn_wave(wave)
        self.emit_finn(w, w.initiate())

    def on_finn(self, ident: bytes, msg: dict) -> None:
        wave = msg["wave"]
        self.finn_params.setdefault(wave, (msg["tasks"], float(msg["cost"]), msg["report"]))
        w = self.finn_wave(wave)
        self.emit_finn(w, w.receive(ident.decode(), wire.to_core(msg)))

    def emit_finn(self, w: FinnWave, step) -> None:
        tasks, cost, report = self.finn_params[w.wave]
        for dest, m in step.sends:
            self.send_peer(dest, wire.from_core(m, self.epoch, tasks=tasks, cost=cost, report=report))
        if step.decided:  # the decision's action: enqueue the wave's tasks here
            ids = self.enqueue(tasks, cost, f"finn {w.wave}")
            self.reply(report, wire.encode("finn.decided", self.epoch, wave=w.wave, node=self.name, sent=w.sent, enqueued=ids))

    # tasks ----------------------------------------------------------------------------

    def enqueue(self, n: int, cost: float, label: str) -> list[str]:
        tasks = []
        for _ in range(n):
            self.task_seq += 1
            tasks.append(Task(f"{self.name}:{self.epoch % 1_000_000_007:x}:{self.task_seq}", label, cost))
        self.board.submit(tasks)
        self.advance_tasks(time.time())
        return [t.id for t in tasks]

    def on_submit(self, ident: bytes, msg: dict) -> None:
        n, cost = msg["tasks"], float(msg["cost"])
        if not 0 < n <= 100_000 or not 0 < cost <= 86_400:
            self.reply_error(ident, "bad-submit", f"tasks must be 1..100000 and cost 0..86400 s, got {n} and {cost}")
            return
        ids = self.enqueue(n, cost, msg["label"] or "submitted")
        self.reply(ident, wire.encode("submit.ok", self.epoch, ids=ids))

    def on_move(self, ident: bytes, msg: dict) -> None:
        dest = msg["dest"]
        if dest not in self.topology or dest == self.name:
            self.reply_error(ident, "bad-move", f"{self.name}: cannot move tasks to {dest!r}")
            return
        now = time.time()
        ids = [t for t in msg["tasks"] if type(t) is str]
        tr = self.board.move_out(msg["move_id"], dest, ids, now, now + MOVE_DEADLINE)
        if tr is not None:
            self.send_transfer(tr)
        self.reply(ident, wire.encode("move.ok", self.epoch, move_id=msg["move_id"], moved=[t.id for t in tr.tasks] if tr else []))

    def send_transfer(self, tr: Transfer) -> None:
        tasks = [[t.id, t.label, t.cost] for t in tr.tasks]
        self.send_peer(tr.dest, wire.encode("transfer", self.epoch, move_id=tr.move_id, tasks=tasks, expires=tr.expires, waves=self.sampled_waves()))

    def on_transfer(self, ident: bytes, msg: dict) -> None:
        self.presample(msg["waves"])  # Lai-Yang: sample before the tasks arrive
        try:
            tasks = tuple(Task(str(i), str(lbl), float(c)) for i, lbl, c in msg["tasks"])
        except (TypeError, ValueError):
            raise wire.WireError("transfer: tasks must be [id, label, cost] triples") from None
        tr = Transfer(msg["move_id"], ident.decode(), self.name, tasks, float(msg["expires"]))
        accepted = self.board.on_transfer(tr, time.time())
        if not accepted:
            self.stats["refused_transfers"] += 1
        self.advance_tasks(time.time())
        # to the donor's inbox, like all node-to-node traffic: a reply through our ROUTER
        # would land on the donor's DEALER, which only sends
        self.send_peer(tr.source, wire.encode("ack", self.epoch, move_id=tr.move_id, accepted=accepted, waves=self.sampled_waves()))

    def on_ack(self, ident: bytes, msg: dict) -> None:
        self.presample(msg["waves"])
        if msg["accepted"]:
            if self.board.on_ack(msg["move_id"]):
                self.send_peer(ident.decode(), wire.encode("forget", self.epoch, move_id=msg["move_id"], waves=self.sampled_waves()))
        # a refusal: the donor keeps the tasks as leaving until its deadline takes them back

    def on_forget(self, ident: bytes, msg: dict) -> None:
        self.presample(msg["waves"])  # else: sampled after the FORGET, before the donor's ACK
        self.board.on_forget(msg["move_id"])

    HANDLERS = {
        "ping": on_ping,
        "echo.start": on_echo_start,
        "explore": on_wave,
        "echo": on_wave,
        "finn.start": on_finn_start,
        "finn": on_finn,
        "submit": on_submit,
        "move": on_move,
        "transfer": on_transfer,
        "ack": on_ack,
        "forget": on_forget,
    }


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m daemon", description="Run one node daemon of an echofinn cluster (started by the supervisor).")
    p.add_argument("--topology", required=True, help="the cluster's topology file")
    p.add_argument("--node", required=True, help="this node's name in the topology")
    p.add_argument("--run-dir", help="the cluster's run directory")
    p.add_argument("--notify-fd", type=int, help="write one line, 'ready PID ENDPOINT' or 'error MESSAGE', to this fd once bound")
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
    from daemon.lifecycle import die_with_parent, parent_alive

    args = parse_args(argv)
    ppid = die_with_parent()
    try:
        topology = load(args.topology)
        topology.node(args.node)
        keys = None
        if topology.cluster.security == security.CURVE:
            keys = security.ClusterKeys.load(args.run_dir or ".", topology, args.node)
    except (TopologyError, security.KeyProblem) as exc:
        _notify(args.notify_fd, f"error {exc}")
        return 2
    from daemon.burner import Burner

    node = NodeDaemon(topology, args.node, burner=Burner(args.node), keys=keys)
    try:
        endpoint = node.bind()
    except OSError as exc:
        _notify(args.notify_fd, f"error {exc}")
        node.close()
        return 3
    signal.signal(signal.SIGTERM, node.stop)
    signal.signal(signal.SIGINT, node.stop)
    if node.spec.tasks:
        node.enqueue(node.spec.tasks, topology.cluster.task_time, "initial")
    _notify(args.notify_fd, f"ready {os.getpid()} {endpoint}")
    print(f"node {args.node}: serving at {endpoint} (pid {os.getpid()}, {node.spec.cpus} cpus)", file=sys.stderr, flush=True)
    try:
        node.run(ppid, parent_alive)
    finally:
        node.close()
    print(f"node {args.node}: stopped", file=sys.stderr, flush=True)
    return 0
