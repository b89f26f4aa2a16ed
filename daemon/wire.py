"""The wire format: the only module that knows msgpack.

Every ZeroMQ message is one frame holding one msgpack map (never pickle):

    {"v": 1, "t": TYPE, "e": EPOCH, ...fields of TYPE}

``v`` is the protocol version, ``t`` the message type, ``e`` the sender's incarnation (its
start time in ns; DESIGN §2: a DEALER delivers its backlog to a restarted peer, so stale
messages must be recognisable). The sender's name is not in the frame: the receiving
ROUTER knows it as the routing id of the sender's DEALER.

:func:`decode` checks a frame against :data:`SCHEMA` at the edge — type, required keys
and their types, sizes — and raises :class:`WireError` for anything else, so the node
never acts on garbage. Messages are plain dicts on both sides of this module; the
conversions to the core's message tuples live here too (:func:`to_core`,
:func:`from_core`).
"""

from __future__ import annotations

import msgpack

from daemon.core.echo import Echo, Explore
from daemon.core.finn import FinnSets

VERSION = 1
MAX_FRAME = 32 * 1024 * 1024  # also the sockets' MAXMSGSIZE
# A detailed echo's frame: each node lists at most this many bytes' worth of queued
# tasks, a pair [task id, cost] taking at most PAIR_BYTES (an id is node name <= 64
# characters, ":", <= 8 hex digits, ":", a sequence number). Half the frame is left for
# everything else a sample holds.
PAIR_BYTES = 128


def detail_limit(nodes: int) -> int:
    """How many queued tasks each of ``nodes`` nodes may list in a detailed echo so that
    the initiator's result stays within one frame (see daemon/core/tasks.py,
    ``TaskBoard.sample``, which also caps it at ``DETAIL_QUEUE``)."""
    from daemon.core.tasks import DETAIL_QUEUE

    return max(1, min(DETAIL_QUEUE, MAX_FRAME // 2 // (PAIR_BYTES * max(1, nodes))))

_num = (int, float)
# type -> {field: type(s)}; every field listed is required, extra fields are ignored.
SCHEMA: dict[str, dict[str, type | tuple]] = {
    # operator <-> any node
    "ping": {"id": int},
    "pong": {"id": int, "name": str, "pid": int, "stats": dict},
    "error": {"code": str, "text": str},
    # detail: False, True, or the most queued tasks each node lists (detail_limit)
    "echo.start": {"wave": str, "detail": (bool, int)},
    "echo.result": {"wave": str, "entries": bytes},
    "finn.start": {"wave": str, "tasks": int, "cost": _num, "report": bytes},
    "finn.decided": {"wave": str, "node": str, "sent": int, "enqueued": list},
    "submit": {"tasks": int, "cost": _num, "label": str},
    "submit.ok": {"ids": list},
    "move": {"move_id": str, "dest": str, "tasks": list},
    "move.ok": {"move_id": str, "moved": list},
    # node <-> node
    "explore": {"wave": str, "detail": (bool, int)},
    "echo": {"wave": str, "entries": bytes},
    "finn": {"wave": str, "inc": list, "ninc": list, "tasks": int, "cost": _num, "report": bytes},
    "transfer": {"move_id": str, "tasks": list, "expires": _num, "waves": list},
    "ack": {"move_id": str, "accepted": bool, "waves": list},
    "forget": {"move_id": str, "waves": list},
}


class WireError(ValueError):
    """A frame that is not a valid message of this protocol (the text says why)."""


_packer = msgpack.Packer(use_bin_type=True)


def encode(kind: str, epoch: int = 0, **fields) -> bytes:
    fields["v"] = VERSION
    fields["t"] = kind
    fields["e"] = epoch
    return _packer.pack(fields)


def decode(frame: bytes) -> dict:
    """Parse and check one frame; raise WireError naming what is wrong."""
    if len(frame) > MAX_FRAME:
        raise WireError(f"frame of {len(frame)} bytes exceeds {MAX_FRAME}")
    try:
        msg = msgpack.unpackb(frame, raw=False, strict_map_key=True)
    except Exception as exc:  # msgpack raises several unrelated types for bad input
        raise WireError(f"not msgpack: {type(exc).__name__}") from None
    if type(msg) is not dict:
        raise WireError(f"expected a map, got {type(msg).__name__}")
    if msg.get("v") != VERSION:
        raise WireError(f"protocol version {msg.get('v')!r}, this node speaks {VERSION}")
    kind = msg.get("t")
    spec = SCHEMA.get(kind) if type(kind) is str else None
    if spec is None:
        raise WireError(f"unknown message type {kind!r}")
    if type(msg.get("e")) is not int:
        raise WireError(f"{kind}: field 'e' (epoch) must be an integer")
    for field, want in spec.items():
        value = msg.get(field)
        if not isinstance(value, want) or (want is int and type(value) is bool):
            raise WireError(f"{kind}: field {field!r} must be {_type_name(want)}, got {type(value).__name__}")
    return msg


def _type_name(want) -> str:
    if isinstance(want, tuple):
        return " or ".join(t.__name__ for t in want)
    return want.__name__


# --- wave ids ------------------------------------------------------------------------
#
# "<kind>-<start time in ns, hex>-<random>": unique, and a node can tell a wave that
# began before the node itself started — a stale backlog a DEALER delivers to a restarted
# peer (DESIGN §2) — and drop it.


def new_wave_id(kind: str, now_ns: int, salt: str) -> str:
    return f"{kind}-{now_ns:x}-{salt}"


def wave_started(wave: str) -> int | None:
    """The start time (ns) in a wave id, or None if the id is not of this form."""
    parts = wave.split("-")
    if len(parts) != 3:
        return None
    try:
        return int(parts[1], 16)
    except ValueError:
        return None


# --- echo entries ------------------------------------------------------------------
#
# An ECHO carries the entries of the sender's whole subtree. Decoding and re-encoding
# them at every hop would make a node's cost grow with its subtree, so the entries travel
# as one msgpack *stream* in a bin field: a node packs its own entry and appends its
# children's streams byte for byte. Only the operator unpacks (and checks) them.


def pack_entries(entries) -> bytes:
    """One stream from entries ``(node, father, state)`` and already packed runs (bytes)."""
    return b"".join(e if type(e) is bytes else _packer.pack(list(e)) for e in entries)


def unpack_entries(stream: bytes) -> list[tuple[str, str | None, dict]]:
    """The entries of a stream; WireError unless each is ``[node, father|None, state]``."""
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=True, max_buffer_size=MAX_FRAME)
    unpacker.feed(stream)
    entries = []
    try:
        for e in unpacker:
            if type(e) is not list or len(e) != 3 or type(e[0]) is not str or not (e[1] is None or type(e[1]) is str) or type(e[2]) is not dict:
                raise WireError("echo: each entry must be [node, father, state]")
            entries.append((e[0], e[1], e[2]))
    except (ValueError, msgpack.UnpackException) as exc:
        if isinstance(exc, WireError):
            raise
        raise WireError(f"echo: entries are not a msgpack stream: {type(exc).__name__}") from None
    return entries


# --- the core's messages -------------------------------------------------------------


def from_core(msg, epoch: int, **extra) -> bytes:
    """Frame a core wave message (Explore, Echo, FinnSets)."""
    kind = type(msg)
    if kind is Explore:
        detail = extra.get("detail")
        return encode("explore", epoch, wave=msg.wave, detail=detail if type(detail) is int else bool(detail))
    if kind is Echo:
        return encode("echo", epoch, wave=msg.wave, entries=pack_entries(msg.entries))
    if kind is FinnSets:
        return encode("finn", epoch, wave=msg.wave, inc=sorted(msg.inc), ninc=sorted(msg.ninc), **extra)
    raise TypeError(f"not a wave message: {msg!r}")


def to_core(msg: dict):
    """The core message inside a checked wave frame (raises WireError on bad contents)."""
    kind = msg["t"]
    if kind == "explore":
        return Explore(msg["wave"])
    if kind == "echo":
        # the child's whole run of entries stays one packed item: it is forwarded as is
        return Echo(msg["wave"], (msg["entries"],))
    if kind == "finn":
        inc, ninc = msg["inc"], msg["ninc"]
        if not all(type(x) is str for x in inc) or not all(type(x) is str for x in ninc):
            raise WireError("finn: inc and ninc must be lists of node names")
        return FinnSets(msg["wave"], frozenset(inc), frozenset(ninc))
    raise WireError(f"{kind} is not a wave message")
