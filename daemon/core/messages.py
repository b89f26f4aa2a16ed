"""The protocol's messages as types, and the bounds every field must keep.

The wire format (daemon/wire.py, the only module that knows msgpack) turns a frame into
one of these, after checking it against :data:`SCHEMA` and :data:`LIMITS`; the node core
(daemon/core/node.py) takes and returns them; nothing past the edge sees a dict. A
message does not say who sent it: the receiving ROUTER knows the sender as the routing
id of its DEALER, and the frame carries the sender's epoch beside the message.

Two groups, and a node accepts each only from its own kind of peer
(:data:`OPERATOR_REQUESTS`, :data:`NODE_MESSAGES`):

- operator <-> node: ping/pong, echo.start/echo.result, finn.start/finn.decided,
  submit/submit.ok, move/move.ok, trace.get/trace (the node's flight recorder,
  daemon/trace/recorder.py), error;
- node <-> node: explore and echo (the echo wave), finn (Finn's sets), transfer, ack and
  forget (the hand-off of daemon/core/tasks.py).
"""

from __future__ import annotations

from typing import NamedTuple

MAX_TASKS = 100_000  # tasks in one submit, Finn wave, transfer or move
MAX_COST = 86_400.0  # seconds of one task
MAX_TEXT = 256  # characters of an id, a name, a label; bytes of a routing id
MAX_WAVE_TAGS = 4_096  # echo waves a hand-off message may name (Lai-Yang tags)
MAX_BUDGET = 3_600.0  # seconds an echo wave may run
MAX_TRACE_STEPS = 100_000  # steps one trace.get may ask for (a node's ring holds fewer)
MAX_TRACE_WAVES = 16  # wave ids one trace.get may select
MAX_REFUSALS = 16  # refused handshakes a pong or an echo sample names ([who refused, whose key])


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
    code: str
    text: str


class EchoStart(NamedTuple):
    wave: str
    detail: bool  # samples list every task (the balancer's plan needs them)
    timeout: float  # seconds: the initiator answers by then, with what it has


class EchoResult(NamedTuple):
    wave: str
    entries: object  # a msgpack stream of [node, father, sample] on the wire (daemon/wire.py)


class FinnStart(NamedTuple):
    wave: str
    tasks: int
    cost: float
    report: bytes  # the operator's routing id: each node reports its decision there


class FinnDecided(NamedTuple):
    wave: str
    node: str
    sent: int
    enqueued: list


class Submit(NamedTuple):
    tasks: int
    cost: float
    label: str


class SubmitOk(NamedTuple):
    ids: list


class Move(NamedTuple):
    move_id: str
    dest: str
    tasks: list  # task ids; or, with ``count`` > 0, none:
    count: int  # that many from the donor's tail (a bulk plan, daemon/core/plan.py)


class MoveOk(NamedTuple):
    move_id: str
    moved: list  # the ids that left (a move by ids)
    count: int  # how many left


class TraceGet(NamedTuple):
    wave_ids: list  # the steps concerning these waves (or moves of a round: "<id>-k"); [] = all
    max_steps: int  # at most this many, the newest; 0 = none, only the waves seen last


class TraceSteps(NamedTuple):
    node: str
    incarnation: int  # the node's epoch (ns): a restart is a new incarnation
    dropped: int  # its steps overwritten in the ring or left out, before the first one here
    seen: list  # the ids of the waves it saw last, oldest first
    steps: object  # a msgpack stream of step maps on the wire (daemon/wire.py pack_trace)


# --- node <-> node ------------------------------------------------------------------


class Explore(NamedTuple):
    wave: str
    detail: bool
    budget: float  # seconds left to the receiver: it echoes by then, with what it has


class Echo(NamedTuple):
    wave: str
    entries: object  # bytes on the wire; the core's Entry/bytes runs when sent


class Finn(NamedTuple):
    wave: str
    inc: list
    ninc: list
    tasks: int
    cost: float
    report: bytes


class Transfer(NamedTuple):
    move_id: str
    tasks: list  # [id, label, cost] triples
    expires: float
    waves: list  # Lai-Yang tags: echo waves the sender has sampled


class Ack(NamedTuple):
    move_id: str
    accepted: bool
    waves: list


class Forget(NamedTuple):
    move_id: str
    waves: list


_num = (int, float)
# type name -> (class, {field: type(s)}); every field is required, extra fields ignored.
TYPES: dict[str, type] = {
    "ping": Ping, "pong": Pong, "error": Error,
    "echo.start": EchoStart, "echo.result": EchoResult,
    "finn.start": FinnStart, "finn.decided": FinnDecided,
    "submit": Submit, "submit.ok": SubmitOk, "move": Move, "move.ok": MoveOk,
    "trace.get": TraceGet, "trace": TraceSteps,
    "explore": Explore, "echo": Echo, "finn": Finn,
    "transfer": Transfer, "ack": Ack, "forget": Forget,
}
KIND: dict[type, str] = {cls: kind for kind, cls in TYPES.items()}

SCHEMA: dict[str, dict[str, type | tuple]] = {
    "ping": {"id": int},
    "pong": {"id": int, "name": str, "pid": int, "stats": dict, "refused": list},
    "error": {"code": str, "text": str},
    "echo.start": {"wave": str, "detail": bool, "timeout": _num},
    "echo.result": {"wave": str, "entries": bytes},
    "finn.start": {"wave": str, "tasks": int, "cost": _num, "report": bytes},
    "finn.decided": {"wave": str, "node": str, "sent": int, "enqueued": list},
    "submit": {"tasks": int, "cost": _num, "label": str},
    "submit.ok": {"ids": list},
    "move": {"move_id": str, "dest": str, "tasks": list, "count": int},
    "move.ok": {"move_id": str, "moved": list, "count": int},
    "trace.get": {"wave_ids": list, "max_steps": int},
    "trace": {"node": str, "incarnation": int, "dropped": int, "seen": list, "steps": bytes},
    "explore": {"wave": str, "detail": bool, "budget": _num},
    "echo": {"wave": str, "entries": bytes},
    "finn": {"wave": str, "inc": list, "ninc": list, "tasks": int, "cost": _num, "report": bytes},
    "transfer": {"move_id": str, "tasks": list, "expires": _num, "waves": list},
    "ack": {"move_id": str, "accepted": bool, "waves": list},
    "forget": {"move_id": str, "waves": list},
}
assert all(tuple(SCHEMA[k]) == TYPES[k]._fields for k in TYPES), "SCHEMA and the message types disagree"

OPERATOR_REQUESTS = frozenset({Ping, EchoStart, FinnStart, Submit, Move, TraceGet})
NODE_MESSAGES = frozenset({Explore, Echo, Finn, Transfer, Ack, Forget})
WAVE_MESSAGES = frozenset({EchoStart, Explore, Echo, FinnStart, Finn})

# Bounds checked at the edge, before a message exists (daemon/wire.py): the longest a
# string or list field may be, and the range of a number field (finite, lo < x <= hi).
TEXT_FIELDS = frozenset({"wave", "move_id", "dest", "label", "code", "name", "node"})
LIST_LIMITS = {"tasks": MAX_TASKS, "inc": 1 << 20, "ninc": 1 << 20, "waves": MAX_WAVE_TAGS,
               "ids": MAX_TASKS, "moved": MAX_TASKS, "enqueued": MAX_TASKS,
               "wave_ids": MAX_TRACE_WAVES, "seen": MAX_TRACE_WAVES, "refused": MAX_REFUSALS}
RANGES = {"cost": (0.0, MAX_COST), "timeout": (0.0, MAX_BUDGET), "budget": (-MAX_BUDGET, MAX_BUDGET),
          "expires": (0.0, float("inf")), "max_steps": (-1, MAX_TRACE_STEPS)}  # max_steps: 0..N
BYTES_LIMITS = {"report": MAX_TEXT}

# What a node's echo sample says of the last Finn wave it decided and the last balancing
# round it took part in (daemon/core/snapshot.py ``last_finn``, ``last_round``): a fixed
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
