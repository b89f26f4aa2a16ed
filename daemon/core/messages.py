"""The protocol's messages as types, and the bounds every field must keep.

The wire format (daemon/wire.py, the only module that knows msgpack) turns a frame into
one of these, after checking it against :data:`SCHEMA` and :data:`LIMITS`; the node core
(daemon/core/node.py) takes and returns them; nothing past the edge sees a dict. A
message does not say who sent it: the receiving ROUTER knows the sender as the routing
id of its DEALER, and the frame carries the sender's epoch beside the message.

Two groups, and a node accepts each only from its own kind of peer
(:data:`OPERATOR_REQUESTS`, :data:`NODE_MESSAGES`):

- operator <-> node: ping/pong, wave.start/wave.decided (any wave kind: the kind and its
  parameters in the start, each deciding node's result in a decided), submit/submit.ok,
  move/move.ok, trace.get/trace (the node's flight recorder, daemon/trace/recorder.py),
  balance.watch/balance.wanted (the node asks the operator that watches it for a
  balancing round: daemon/core/asking.py), error;
- node <-> node: wave (one message of a wave of any kind: the kind's own message type,
  daemon/core/wave.py ``MessageType``, with the wave's parameters, the budget left to the
  receiver and the operator the deciding nodes report to), transfer, ack and forget (the
  hand-off of daemon/core/tasks.py), relink (reopen your link to me: the sender gave up
  on the receiver at a wave's deadline).

Every operator request carries an ``id`` (0..MAX_ID) of the operator's choosing, and its
reply and any error about it carry the same (:data:`REPLIES` says what answers what); an
``error``'s code is one of :data:`ERROR_CODES`. PROTOCOL.md is rendered from this module
(daemon/protocol.py).

The wave kinds' own messages (echo's explore and echo, Finn's sets, ...) are declared by
the kinds with the bound of each field (daemon/plugins.py finds the kinds); daemon/wire.py
checks a ``wave`` frame's body against them as it checks every other message here.
"""

from __future__ import annotations

from typing import NamedTuple

MAX_TASKS = 100_000  # tasks in one submit, Finn wave, transfer or move
MAX_COST = 86_400.0  # seconds of one task
MAX_TEXT = 256  # characters of an id, a name, a label; bytes of a routing id
MAX_WAVE_TAGS = 4_096  # waves a hand-off message may name (Lai-Yang tags of the snapshot kinds)
MAX_BUDGET = 3_600.0  # seconds a wave may run (its timeout)
MAX_TRACE_STEPS = 100_000  # steps one trace.get may ask for (a node's ring holds fewer)
MAX_TRACE_WAVES = 16  # wave ids one trace.get may select
MAX_ID = (1 << 63) - 1  # a request's id: 0..MAX_ID (a signed 64-bit integer in any language)
MAX_REFUSALS = 16  # refused handshakes a pong or a node's sample names ([who refused, whose key])


# --- operator <-> node ----------------------------------------------------------------


class Ping(NamedTuple):
    id: int


class Pong(NamedTuple):
    id: int
    name: str
    pid: int
    stats: dict
    refused: list  # [who refused, whose key] for each of its links a handshake failed on (daemon/node.py)


class Error(NamedTuple):
    code: str  # one of ERROR_CODES
    text: str
    id: int | None = None  # the request's id; None when the frame gave none or it answers no request


class WaveStart(NamedTuple):
    wave: str  # "<tag>-<start ns, hex>-<salt>": the tag is the kind's (daemon/core/waves.py)
    kind: str  # the wave kind's name (daemon/plugins.py)
    params: dict  # the kind's parameters, each within its bound (daemon/core/wave.py)
    timeout: float  # seconds: the wave's budget (a kind with a deadline answers by then)
    id: int = 0  # the request's id: an error refusing the start carries it


class WaveDecided(NamedTuple):
    wave: str
    kind: str
    node: str  # the node that decided
    result: object  # plain values; a Stream (echo's entries) is a bytes stream on the wire
    stream: bool = False  # set by daemon/wire.py: ``result`` is a msgpack stream of values


class Submit(NamedTuple):
    tasks: int
    cost: float
    label: str
    id: int = 0  # the request's id, echoed by the reply


class SubmitOk(NamedTuple):
    ids: list
    id: int = 0


class Move(NamedTuple):
    move_id: str
    dest: str
    tasks: list  # task ids; or, with ``count`` > 0, none:
    count: int  # that many from the donor's tail (a bulk plan, daemon/core/plan.py)
    id: int = 0  # the request's id, echoed by the reply


class MoveOk(NamedTuple):
    move_id: str
    moved: list  # the ids that left (a move by ids)
    count: int  # how many left
    id: int = 0


class TraceGet(NamedTuple):
    wave_ids: list  # the steps concerning these waves (or moves of a round: "<id>-k"); [] = all
    max_steps: int  # at most this many, the newest; 0 = none, only the waves seen last
    id: int = 0  # the request's id, echoed by the reply


class TraceSteps(NamedTuple):
    node: str
    incarnation: int  # the node's epoch (ns): a restart is a new incarnation
    dropped: int  # its steps overwritten in the ring or left out, before the first one here
    seen: list  # the ids of the waves it saw last, oldest first
    steps: object  # a msgpack stream of step maps on the wire (daemon/wire.py pack_trace)
    id: int = 0


class BalanceWatch(NamedTuple):
    on: bool  # True: send this operator balance.wanted from now on (it replaces any other); False: stop
    id: int = 0  # the request's id: an error about it carries it (it has no reply)


class BalanceWanted(NamedTuple):
    node: str
    reason: str  # daemon/core/asking.py: "queued" (work waits for a slot) or "idle" (a slot freed, nothing queued)
    queued: int  # tasks queued at the node when it asked
    free: int  # its free CPU slots then


# --- node <-> node ------------------------------------------------------------------


class WaveMessage(NamedTuple):
    wave: str
    body: object  # the kind's message: a NamedTuple of one of its MessageTypes, first field ``wave``
    params: dict  # the wave's parameters (what the operator started it with)
    budget: float | None  # seconds left to the receiver, None if the wave has no deadline
    report: bytes  # the operator's routing id: a node that decides reports there (b"": none)


class Transfer(NamedTuple):
    move_id: str
    tasks: list  # [id, label, cost] triples
    expires: float
    waves: list  # Lai-Yang tags: the waves (of snapshot kinds) the sender has sampled


class Ack(NamedTuple):
    move_id: str
    accepted: bool
    waves: list


class Forget(NamedTuple):
    move_id: str
    waves: list


class Relink(NamedTuple):
    """The sender gave up on the receiver at a wave's deadline: the receiver's link to it
    may be dead without either end noticing (its routing id taken over at the sender's
    inbox), so the receiver reopens it (daemon/core/node.py ``_on_relink``)."""


_num = (int, float)
ANY = (type(None), bool, int, float, str, bytes, list, dict)  # a plain value (msgpack's types)
# type name -> (class, {field: type(s)}); every field is required, extra fields ignored.
TYPES: dict[str, type] = {
    "ping": Ping, "pong": Pong, "error": Error,
    "wave.start": WaveStart, "wave.decided": WaveDecided,
    "submit": Submit, "submit.ok": SubmitOk, "move": Move, "move.ok": MoveOk,
    "trace.get": TraceGet, "trace": TraceSteps,
    "balance.watch": BalanceWatch, "balance.wanted": BalanceWanted,
    "wave": WaveMessage,
    "transfer": Transfer, "ack": Ack, "forget": Forget, "relink": Relink,
}
KIND: dict[type, str] = {cls: kind for kind, cls in TYPES.items()}

SCHEMA: dict[str, dict[str, type | tuple]] = {
    "ping": {"id": int},
    "pong": {"id": int, "name": str, "pid": int, "stats": dict, "refused": list},
    "error": {"code": str, "text": str, "id": (int, type(None))},
    "wave.start": {"wave": str, "kind": str, "params": dict, "timeout": _num, "id": int},
    "wave.decided": {"wave": str, "kind": str, "node": str, "result": ANY, "stream": bool},
    "submit": {"tasks": int, "cost": _num, "label": str, "id": int},
    "submit.ok": {"ids": list, "id": int},
    "move": {"move_id": str, "dest": str, "tasks": list, "count": int, "id": int},
    "move.ok": {"move_id": str, "moved": list, "count": int, "id": int},
    "trace.get": {"wave_ids": list, "max_steps": int, "id": int},
    "trace": {"node": str, "incarnation": int, "dropped": int, "seen": list, "steps": bytes, "id": int},
    "balance.watch": {"on": bool, "id": int},
    "balance.wanted": {"node": str, "reason": str, "queued": int, "free": int},
    # the body: the kind's message type ``msg`` (its fields but ``wave``, in order),
    # checked against the kind's bounds (daemon/wire.py); params against the kind's too
    "wave": {"wave": str, "msg": str, "body": list, "params": dict, "budget": (int, float, type(None)),
             "report": bytes},
    "transfer": {"move_id": str, "tasks": list, "expires": _num, "waves": list},
    "ack": {"move_id": str, "accepted": bool, "waves": list},
    "forget": {"move_id": str, "waves": list},
    "relink": {},
}
assert all(tuple(SCHEMA[k]) == TYPES[k]._fields for k in TYPES if k != "wave"), "SCHEMA and the message types disagree"

# Every code an ``error`` may carry, and what it means (PROTOCOL.md lists them; a test
# checks every code the node uses is here). A node answers only operators with an
# error: what it refuses from another node it counts (``pong`` stats) and drops.
ERROR_CODES: dict[str, str] = {
    # the frame (daemon/node.py), before a message exists
    "frames": "the ZeroMQ message had more than one frame after the routing id (send exactly one)",
    "malformed": "not a message of this protocol: not msgpack, not a map, another version, an unknown type, "
                 "a missing field, a field of the wrong type or out of its bound (the text names it)",
    "unauthorized": "this sender may not send this type here: an operator sent a node message, a node's name "
                    "was taken as a routing id, or the CURVE key is not the one allowed on this socket "
                    "(checked before the fields: the text does not reveal them)",
    # the request (daemon/core/node.py)
    "not-a-node": "a node message from a routing id that is no node of the cluster",
    "not-an-operator": "an operator request from a node (counted, never answered)",
    "bad-epoch": "a node's epoch lies in the future (counted, never answered)",
    "bad-wave": "the wave id is malformed, begins in the future, or its tag is not the tag of the wave kind named",
    "stale": "the wave began before this node started",
    "busy": "the node holds as many live waves as it may; try again later",
    "bad-params": "the wave kind's parameters are missing or unknown",
    "unknown-kind": "no wave kind of that name is installed on the node",
    "duplicate": "the wave already reached this node (a kind with one initiator)",
    "closed": "the wave is older than a peer's restart (a snapshot kind can no longer be consistent)",
    "bad-submit": "a submit of fewer than 1 task",
    "bad-move": "a move to a node that is not in the cluster, or to the node itself",
    "bad-trace": "a trace.get whose wave_ids are not all strings of at most MAX_TEXT characters",
    "bad-transfer": "a transfer whose tasks are not distinct [id, label, cost] (counted, never answered)",
    "bad-tag": "a hand-off message naming a wave tag that is no wave id (counted, never answered)",
    "not-recording": "a trace.get to a node that does not record (the topology's [cluster] says record = false)",
    "rejected": "the wave kind refused the event (its text says why)",
    "wave-fault": "the wave kind failed at a node; the wave is dropped there (sent to the operator it reports to)",
    "internal": "the node failed handling the request (a bug: counted, the node keeps serving)",
}

OPERATOR_REQUESTS = frozenset({Ping, WaveStart, Submit, Move, TraceGet, BalanceWatch})
NODE_MESSAGES = frozenset({WaveMessage, Transfer, Ack, Forget, Relink})
WAVE_MESSAGES = frozenset({WaveStart, WaveMessage})
# What answers each operator request (PROTOCOL.md): every reply and error carries its id.
REPLIES = {
    "ping": "`pong`",
    "wave.start": "`wave.decided` from each deciding node (the kind says which; they report to the routing id "
                  "the start came from), or an `error` from the initiator",
    "submit": "`submit.ok`, or an `error`",
    "move": "`move.ok`, or an `error`",
    "trace.get": "`trace`, or an `error` (`not-recording`)",
    "balance.watch": "nothing (an `error` only if it is refused); with `on` true the node sends this operator "
                     "`balance.wanted` whenever it wants a balancing round, until another operator watches it",
}

# Bounds checked at the edge, before a message exists (daemon/wire.py): the longest a
# string or list field may be, and the range of a number field (finite, lo < x <= hi).
TEXT_FIELDS = frozenset({"wave", "move_id", "dest", "label", "code", "name", "node", "kind", "msg", "reason"})
LIST_LIMITS = {"tasks": MAX_TASKS, "waves": MAX_WAVE_TAGS,
               "ids": MAX_TASKS, "moved": MAX_TASKS,
               "wave_ids": MAX_TRACE_WAVES, "seen": MAX_TRACE_WAVES, "refused": MAX_REFUSALS}
RANGES = {"cost": (0.0, MAX_COST), "timeout": (0.0, MAX_BUDGET), "budget": (-MAX_BUDGET, MAX_BUDGET),
          "expires": (0.0, float("inf")), "max_steps": (-1, MAX_TRACE_STEPS),  # max_steps: 0..N
          "queued": (-1, 1 << 40), "free": (-1, 1 << 20),  # balance.wanted: counts from 0
          "id": (-1, MAX_ID)}  # id: 0..MAX_ID
BYTES_LIMITS = {"report": MAX_TEXT}

# What a node's sample says of the last wave that enqueued work as it decided (Finn's,
# hence the name) and the last balancing round it took part in (daemon/core/snapshot.py ``last_finn``, ``last_round``): a fixed
# list each, a wave or round id, counts, and the node's time of it. Samples travel inside
# the ECHO's entry stream, which only the operator unpacks: the readers keep an entry
# only if :func:`fact_ok` accepts it, so a hostile or garbled one is left out, not shown.
MAX_COUNT = 1 << 40  # a count in a sample's fact (tasks or moves summed over a round)
MAX_FACT_ID = 64  # characters of the id in a fact; a longer one (no ctl makes one) is not kept
LAST_FINN = ("wave", "decided_at", "enqueued", "sent")
LAST_ROUND = ("round", "at", "moves_out", "tasks_out", "moves_in", "tasks_in")


def fact_ok(value, fields: tuple) -> bool:
    """Whether ``value`` is a well-formed sample fact with ``fields`` (LAST_FINN or
    LAST_ROUND): a list of that length, an id of at most MAX_FACT_ID characters, a
    finite time, and counts in 0..MAX_COUNT."""
    if type(value) is not list or len(value) != len(fields):
        return False
    ident, at, *counts = value
    if type(ident) is not str or not 0 < len(ident) <= MAX_FACT_ID:
        return False
    if type(at) not in (int, float) or not -MAX_COUNT < at < MAX_COUNT:  # also rejects nan and inf
        return False
    return all(type(c) is int and 0 <= c <= MAX_COUNT for c in counts)
