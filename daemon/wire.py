"""The wire format: the only module that knows msgpack.

Every ZeroMQ message is one frame holding one msgpack map (never pickle):

    {"v": 1, "t": TYPE, "e": EPOCH, ...fields of TYPE}

``v`` is the protocol version, ``t`` the message type, ``e`` the sender's incarnation (its
start time in ns: a DEALER delivers its backlog to a restarted peer, so stale messages
must be recognisable; ARCHITECTURE.md, "Sockets"). The sender's name is not in the frame:
the receiving ROUTER knows it as the routing id of the sender's DEALER.

:func:`decode` checks a frame at the edge against :data:`SCHEMA` and the bounds of
daemon/core/messages.py — type, required keys and their types, lengths, finite numbers
in range — and raises :class:`WireError` for anything else, so the node never acts on
garbage. :func:`parse` then gives the typed message (daemon/core/messages.py) that the
node core takes, :func:`pack` frames one. Operators read checked dicts (:func:`decode`).
"""

from __future__ import annotations

import math

import msgpack

from daemon.core import messages as m
from daemon.core import waves
from daemon.core.messages import SCHEMA  # noqa: F401  (re-exported: the schema lives with the types)

VERSION = 1
MAX_FRAME = 32 * 1024 * 1024  # also the sockets' MAXMSGSIZE


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
        msg = _unpackb(frame, raw=False, strict_map_key=True)
    except Exception as exc:  # msgpack raises several unrelated types for bad input
        raise WireError(f"not msgpack: {type(exc).__name__}") from None
    if type(msg) is not dict:
        raise WireError(f"expected a map, got {type(msg).__name__}")
    if msg.get("v") != VERSION:
        raise WireError(f"protocol version {msg.get('v')!r}, this node speaks {VERSION}")
    kind = msg.get("t")
    checks = _CHECKS.get(kind) if type(kind) is str else None
    if checks is None:
        raise WireError(f"unknown message type {kind!r}")
    if type(msg.get("e")) is not int:
        raise WireError(f"{kind}: field 'e' (epoch) must be an integer")
    for field, types, bound in checks:
        value = msg.get(field)
        if type(value) not in types:
            raise WireError(f"{kind}: field {field!r} must be {_type_name(SCHEMA[kind][field])}, got {type(value).__name__}")
        if bound is not None:
            bound(kind, field, value)
    return msg


def _bounded(field: str, want) -> bool:
    """Whether a field has a bound beyond its type (daemon/core/messages.py)."""
    wants = want if isinstance(want, tuple) else (want,)
    return (field in m.TEXT_FIELDS or field in m.LIST_LIMITS or field in m.BYTES_LIMITS or field in m.RANGES
            or field in ("tasks", "count") or float in wants)


def _exact_types(want) -> frozenset:
    """The types a field's value may have, compared exactly: msgpack makes no subclass
    of them, and a ``bool`` (which is an ``int`` to ``isinstance``) is no number here."""
    return frozenset(want) if isinstance(want, tuple) else frozenset((want,))


def _check_bounds(kind: str, field: str, value) -> None:
    """The limits of daemon/core/messages.py: lengths of texts, lists and bytes, and
    finite numbers within their range."""
    vt = type(value)
    if vt is str:
        if field in m.TEXT_FIELDS and len(value) > m.MAX_TEXT:
            raise WireError(f"{kind}: field {field!r} is longer than {m.MAX_TEXT} characters")
    elif vt is list:
        limit = m.LIST_LIMITS.get(field)
        if limit is not None and len(value) > limit:
            raise WireError(f"{kind}: field {field!r} has {len(value)} items, more than {limit}")
    elif vt is bytes:
        limit = m.BYTES_LIMITS.get(field)
        if limit is not None and len(value) > limit:
            raise WireError(f"{kind}: field {field!r} is longer than {limit} bytes")
    elif vt is float or vt is int:
        if vt is float and not math.isfinite(value):
            raise WireError(f"{kind}: field {field!r} must be finite, got {value!r}")
        if (field == "tasks" or field == "count") and not 0 <= value <= m.MAX_TASKS:
            raise WireError(f"{kind}: field {field!r} must be 0..{m.MAX_TASKS}, got {value}")
        bounds = m.RANGES.get(field)
        if bounds is not None and not bounds[0] < value <= bounds[1]:
            raise WireError(f"{kind}: field {field!r} must be in ({bounds[0]:g}, {bounds[1]:g}], got {value!r}")


# kind -> [(field, its exact types, its bound check or None)]: the schema, worked out once
_CHECKS = {kind: [(f, _exact_types(want), _check_bounds if _bounded(f, want) else None) for f, want in spec.items()]
           for kind, spec in SCHEMA.items()}
_unpackb = msgpack.unpackb
_new = tuple.__new__


def parse(frame: bytes) -> tuple[int, object]:
    """One frame as ``(sender epoch, message)``: a checked :func:`decode`, then the typed
    message of daemon/core/messages.py (its fields in order, every one of them checked
    present by decode). Raises WireError."""
    msg = decode(frame)
    cls = m.TYPES[msg["t"]]
    return msg["e"], _new(cls, map(msg.__getitem__, cls._fields))


def pack(msg, epoch: int) -> bytes:
    """Frame a typed message (daemon/core/messages.py)."""
    kind = m.KIND[type(msg)]
    fields = dict(zip(msg._fields, msg))
    if (kind == "echo" or kind == "echo.result") and type(msg.entries) is not bytes:
        fields["entries"] = pack_entries(msg.entries)
    elif kind == "finn":
        fields["inc"], fields["ninc"] = sorted(msg.inc), sorted(msg.ninc)
    fields["v"] = VERSION
    fields["t"] = kind
    fields["e"] = epoch
    return _packer.pack(fields)


def _type_name(want) -> str:
    if isinstance(want, tuple):
        return " or ".join(t.__name__ for t in want)
    return want.__name__


# --- wave ids: daemon/core/waves.py (the node core reads them too) -------------------

new_wave_id = waves.new_wave_id
wave_started = waves.wave_started


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
    return [(e[0], e[1], e[2]) for e in _checked_stream(stream, "echo", "entries", _is_entry,
                                                        "each entry must be [node, father, state]")]


def _is_entry(e) -> bool:
    return (type(e) is list and len(e) == 3 and type(e[0]) is str and (e[1] is None or type(e[1]) is str)
            and type(e[2]) is dict)


def _checked_stream(stream: bytes, kind: str, noun: str, ok, rule: str) -> list:
    """The values of a msgpack stream of at most MAX_FRAME bytes (the echo's entries, a
    trace's steps); WireError ``"<kind>: <rule>"`` unless each passes ``ok``."""
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=True, max_buffer_size=MAX_FRAME)
    values = []
    try:
        unpacker.feed(stream)  # BufferFull past MAX_FRAME
        for value in unpacker:
            if not ok(value):
                raise WireError(f"{kind}: {rule}")
            values.append(value)
    except (ValueError, msgpack.UnpackException) as exc:
        if isinstance(exc, WireError):
            raise
        raise WireError(f"{kind}: {noun} are not a msgpack stream: {type(exc).__name__}") from None
    return values


def count_entries(entries) -> int:
    """How many entries an echo result holds: ``(node, father, state)`` tuples and
    packed runs (bytes streams, counted without building their objects)."""
    count = 0
    for e in entries:
        if type(e) is bytes:
            unpacker = msgpack.Unpacker(max_buffer_size=MAX_FRAME)
            unpacker.feed(e)
            try:
                while True:
                    unpacker.skip()
                    count += 1
            except msgpack.OutOfData:
                pass
        else:
            count += 1
    return count


# --- flight records (daemon/trace/recorder.py) ---------------------------------------


def pack_trace(epoch: int, node: str, inc: int, dropped: int, seen: list, steps: list[dict],
               budget: int = MAX_FRAME // 2) -> bytes:
    """A ``trace`` reply holding the newest of ``steps`` (dicts, oldest first) whose
    packed size fits ``budget`` bytes; the steps left out are added to ``dropped``, so
    the frame stays far below MAX_FRAME whatever the ring holds."""
    packed = []
    size = 0
    for step in reversed(steps):
        b = _packer.pack(step)
        if size + len(b) > budget:
            break
        packed.append(b)
        size += len(b)
    packed.reverse()
    return encode("trace", epoch, node=node, incarnation=inc, dropped=dropped + len(steps) - len(packed), seen=seen,
                  steps=b"".join(packed))


def unpack_steps(stream: bytes) -> list[dict]:
    """The step maps of a ``trace`` reply; WireError unless each is a map (their fields
    are checked by daemon/trace/recorder.py ``check_step``)."""
    return _checked_stream(stream, "trace", "steps", lambda step: type(step) is dict, "each step must be a map")


# --- recordings (daemon/recording.py) ---------------------------------------------------
#
# A node's recording is a stream of msgpack values appended to a file; a process killed
# while writing leaves the last one cut short, which the reader leaves out.


def pack_value(value) -> bytes:
    """One record of a recording (atoms, bytes, lists and maps of them) as msgpack."""
    return _packer.pack(value)


def unpack_stream(data: bytes) -> tuple[list, int]:
    """The complete values at the start of ``data`` and the offset where the last of them
    ends (less than ``len(data)`` when the stream is cut short). WireError if the bytes
    are not a msgpack stream."""
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False, max_buffer_size=max(len(data), 1))
    unpacker.feed(data)
    values = []
    end = 0
    try:
        for value in unpacker:
            values.append(value)
            end = unpacker.tell()
    except (ValueError, msgpack.UnpackException) as exc:
        raise WireError(f"not a msgpack stream at byte {end}: {type(exc).__name__}") from None
    return values, end
