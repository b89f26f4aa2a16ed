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
A node reads a frame in two steps, :func:`open_frame` (msgpack, version, type, epoch)
and :func:`typed` (the fields), so that it can check who may send the type in between:
an operator learns nothing of a node message's fields from the errors it is told.

Waves (daemon/core/wave.py). A ``wave`` frame carries one message of a wave of any
kind, its six fields (:data:`WAVE_FIELDS`) in one list ``w`` — ``{"v", "t": "wave",
"e", "w": [wave, msg, body, params, budget, report]}``, fewer map keys to pack and read
on the path every wave message takes; :func:`decode` gives them by name, and a frame
that spells them out as map fields is read the same. ``msg`` names the kind's message
type, ``body`` holds its fields but ``wave`` in order, checked against the bounds the kind declares (:class:`~daemon.core.wave.Text`,
``Int``, ``Num``, ``Flag``, ``Names``, ``Items``, ``Blob``), and ``params`` against the
kind's parameters, as are a ``wave.start``'s. The kinds are those of
daemon/plugins.py; the table of their checks is built on first use. A field that holds a
:class:`~daemon.core.wave.Stream` (echo's entries, its result) is packed as one msgpack
stream in a bin field; a set of names as a sorted list.
"""

from __future__ import annotations

import math

import msgpack

from daemon import plugins
from daemon.core import messages as m
from daemon.core import wave as wv
from daemon.core import waves
from daemon.core.messages import SCHEMA  # noqa: F401  (re-exported: the schema lives with the types)

VERSION = 1
MAX_FRAME = 32 * 1024 * 1024  # also the sockets' MAXMSGSIZE


class WireError(ValueError):
    """A frame that is not a valid message of this protocol (the text says why)."""


_packer = msgpack.Packer(use_bin_type=True)


def encode(kind: str, epoch: int = 0, /, **fields) -> bytes:
    if kind == "wave" and fields.keys() == _WAVE_KEYS:  # the compact form (module text)
        return _packer.pack({"v": VERSION, "t": kind, "e": epoch, "w": [fields[f] for f in WAVE_FIELDS]})
    fields["v"] = VERSION
    fields["t"] = kind
    fields["e"] = epoch
    return _packer.pack(fields)


def decode(frame: bytes) -> dict:
    """Parse and check one frame; raise WireError naming what is wrong. A ``wave``
    frame's fields are given by name, whichever form it came in."""
    msg = open_frame(frame)
    _check(msg)
    if msg["t"] == "wave" and "w" in msg:
        msg.update(zip(WAVE_FIELDS, msg.pop("w")))
    return msg


def open_frame(frame: bytes) -> dict:
    """The map of one frame, its version, type and epoch checked (not its fields: see
    :func:`typed`); WireError naming what is wrong."""
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
    if type(kind) is not str or kind not in _CHECKS:
        raise WireError(f"unknown message type {kind!r}")
    if type(msg.get("e")) is not int:
        raise WireError(f"{kind}: field 'e' (epoch) must be an integer")
    return msg


def _check(msg: dict) -> None:
    kind = msg["t"]
    if kind == "wave":
        _check_wave(msg)
        return
    _check_fields(msg, kind, kind)
    if kind == "wave.start":
        cls = _kinds().get(msg["kind"])
        if cls is None:
            raise WireError(f"wave.start: no wave kind {msg['kind']!r} is installed here")
        _check_params(kind, cls, msg["params"])


def _check_fields(msg: dict, kind: str, label: str) -> None:
    """The fields of SCHEMA[kind]: their types and bounds; errors begin with ``label``."""
    for field, types, bound in _CHECKS[kind]:
        value = msg.get(field)
        if type(value) not in types or (value is None and field not in msg):  # nil, where allowed, must be there
            raise WireError(f"{label}: field {field!r} must be {_type_name(SCHEMA[kind][field])}, got {type(value).__name__}")
        if bound is not None:
            bound(label, field, value)


# --- wave bodies and parameters: checked against the kinds' bounds -----------------------


def _check_text(where: str, bound: wv.Text, value) -> None:
    if type(value) is not str:
        raise WireError(f"{where} must be a string, got {type(value).__name__}")
    if len(value) > bound.limit:
        raise WireError(f"{where} is longer than {bound.limit} characters")


def _check_int(where: str, bound: wv.Int, value) -> None:
    if type(value) is not int:
        raise WireError(f"{where} must be an integer, got {type(value).__name__}")
    if not bound.lo <= value <= bound.hi:
        raise WireError(f"{where} must be {bound.lo}..{bound.hi}, got {value}")


def _check_num(where: str, bound: wv.Num, value) -> None:
    vt = type(value)
    if vt is not float and vt is not int:
        raise WireError(f"{where} must be a number, got {vt.__name__}")
    if not math.isfinite(value) or not bound.lo < value <= bound.hi:
        raise WireError(f"{where} must be a finite number in ({bound.lo:g}, {bound.hi:g}], got {value!r}")


def _check_flag(where: str, bound: wv.Flag, value) -> None:
    if type(value) is not bool:
        raise WireError(f"{where} must be a boolean, got {type(value).__name__}")


def _check_names(where: str, bound: wv.Names, value) -> None:
    if type(value) is not list:
        raise WireError(f"{where} must be a list of node names, got {type(value).__name__}")
    if len(value) > bound.limit:
        raise WireError(f"{where} has {len(value)} items, more than {bound.limit}")
    for x in value:
        if type(x) is not str or len(x) > m.MAX_TEXT:
            raise WireError(f"{where} must hold node names (strings of at most {m.MAX_TEXT} characters)")


def _check_items(where: str, bound: wv.Items, value) -> None:
    if type(value) is not list:
        raise WireError(f"{where} must be a list, got {type(value).__name__}")
    if len(value) > bound.limit:
        raise WireError(f"{where} has {len(value)} items, more than {bound.limit}")


def _check_blob(where: str, bound: wv.Blob, value) -> None:
    if type(value) is not bytes:
        raise WireError(f"{where} must be bytes, got {type(value).__name__}")
    if len(value) > bound.limit:
        raise WireError(f"{where} is longer than {bound.limit} bytes")


_BOUND_CHECKS = {wv.Text: _check_text, wv.Int: _check_int, wv.Num: _check_num, wv.Flag: _check_flag,
                 wv.Names: _check_names, wv.Items: _check_items, wv.Blob: _check_blob}


class _Body:
    """What the edge knows of one wave message type: its class, its kind, the check of
    each field but ``wave`` and how :func:`pack` turns each into a plain value."""

    __slots__ = ("mt", "kind", "cls", "checks", "arity", "convert", "names", "joins", "fast", "fast_params")

    def __init__(self, mt: wv.MessageType, kind: type):
        self.mt = mt
        self.kind = kind
        self.cls = mt.cls
        self.checks = [(f"{mt.name}: field {f!r}", _BOUND_CHECKS[type(b)], b) for f, b in mt.fields.items()]
        self.arity = len(mt.fields)
        # (index in the class's fields, converter) of the fields that need one to be packed
        self.convert = [(k + 1, _PACKERS[type(b)]) for k, b in enumerate(mt.fields.values()) if type(b) in _PACKERS]
        self.names = tuple(k + 1 for k, b in enumerate(mt.fields.values()) if type(b) is wv.Names)
        self.joins = mt.joins
        self.fast = tuple(_fast_bound(b) for b in mt.fields.values())
        self.fast_params = (tuple(kind.params), tuple(_fast_bound(b) for b in kind.params.values()))


def _pack_names(value):
    return value if type(value) is list else sorted(value)


def _pack_blob(value):
    return value if type(value) is bytes else pack_entries(value)


def _pack_items(value):
    return value if type(value) is list else list(value)


_PACKERS = {wv.Names: _pack_names, wv.Blob: _pack_blob, wv.Items: _pack_items}

_tables: tuple | None = None  # (plugins version, kinds by name, bodies by wire name, bodies by class)


def _kinds() -> dict[str, type]:
    return _table()[1]


def _table() -> tuple:
    global _tables
    tables = _tables
    if tables is not None and tables[0] == plugins._version:
        return tables
    kinds = plugins.wave_kinds()  # (re)builds the plugins' table, and its version, if need be
    bodies = {}
    for cls in kinds.values():
        for mt in cls.messages:
            bodies[mt.name] = _Body(mt, cls)
    tables = _tables = (plugins._version, kinds, bodies, {b.cls: b for b in bodies.values()})
    return tables


def body_of(msg_cls: type) -> "_Body | None":
    """What the edge knows of a wave message class (its MessageType and kind), or None."""
    return _table()[3].get(msg_cls)


def _check_wave(msg: dict) -> tuple:
    """A ``wave`` frame: its envelope (as SCHEMA says), its body against the message
    type's bounds, its parameters against the kind's; returns what the edge knows of the
    message type and the six fields. Errors name the wave's own message type where it is
    one (``explore: field 'budget' ...``). A message that cannot bring the wave to a node
    (``joins`` false: the receiver has the wave's parameters already) carries none, nor a
    budget or a report. The common case is checked inline (every wave message of a
    cluster passes here); anything unusual takes the generic path, which names the field."""
    tables = _tables
    if tables is None or tables[0] != plugins._version:
        tables = _table()
    w = msg.get("w")
    if type(w) is list and len(w) == 6:
        wave, name, values, params, budget, report = w
        body = tables[2].get(name) if type(name) is str else None
        bt = type(budget)
        ok = (body is not None and type(wave) is str and len(wave) <= _MAX_TEXT and type(values) is list
              and type(params) is dict and type(report) is bytes and len(report) <= _MAX_TEXT
              and (budget is None or ((bt is float or bt is int) and _MIN_BUDGET < budget <= _MAX_BUDGET))
              and len(values) == body.arity
              and (not values or _fast(values, body.fast))
              and (_fast_params(params, body.fast_params) if body.joins else
                   not params and budget is None and not report))
        if ok:
            return body, wave, values, params, budget, report
        fields = dict(zip(WAVE_FIELDS, w))
    elif w is not None:
        raise WireError(f"wave: field 'w' must be a list of {', '.join(WAVE_FIELDS)}")
    else:
        fields = msg
    # the generic path, on the fields by name: it names what is wrong
    name = fields.get("msg")
    body = tables[2].get(name) if type(name) is str else None
    _check_fields(fields, "wave", body.mt.name if body is not None else "wave")
    if body is None:
        raise WireError(f"wave: no wave kind installed here has a message {name!r}")
    wave, values, params, budget, report = (fields["wave"], fields["body"], fields["params"], fields["budget"],
                                            fields["report"])
    if len(values) != body.arity:
        raise WireError(f"{body.mt.name}: {len(values)} fields in the body, the message has {body.arity}")
    for value, (where, check, bound) in zip(values, body.checks):
        check(where, bound, value)
    if body.joins:
        _check_params(body.mt.name, body.kind, params, True)
    elif params or budget is not None or report:
        raise WireError(f"{body.mt.name}: carries no parameters, budget or report (it cannot bring the wave to a node)")
    return body, wave, values, params, budget, report


_MAX_TEXT = m.MAX_TEXT
_MAX_BUDGET = m.MAX_BUDGET
_MIN_BUDGET = -m.MAX_BUDGET
# the bounds as (code, a, b) for the inline checks of _fast: what _BOUND_CHECKS checks, and
# nothing else (a value that fails here goes to those checks, which name it)
_TEXT, _INT, _NUM, _FLAG, _NAMES, _ITEMS, _BLOB = range(7)


def _fast_bound(bound) -> tuple:
    t = type(bound)
    if t is wv.Text:
        return (_TEXT, bound.limit, 0)
    if t is wv.Int:
        return (_INT, bound.lo, bound.hi)
    if t is wv.Num:
        return (_NUM, bound.lo, bound.hi)
    if t is wv.Flag:
        return (_FLAG, 0, 0)
    if t is wv.Names:
        return (_NAMES, bound.limit, 0)
    if t is wv.Items:
        return (_ITEMS, bound.limit, 0)
    return (_BLOB, bound.limit, 0)


def _fast(values: list, codes: tuple) -> bool:
    """Whether every value passes its bound (the common case, checked inline)."""
    for value, (code, a, b) in zip(values, codes):
        t = type(value)
        if code == _BLOB:
            if t is not bytes or len(value) > a:
                return False
        elif code == _NAMES:
            if t is not list or len(value) > a:
                return False
            for x in value:
                if type(x) is not str or len(x) > _MAX_TEXT:
                    return False
        elif code == _INT:
            if t is not int or not a <= value <= b:
                return False
        elif code == _NUM:
            if (t is not float and t is not int) or not a < value <= b:  # nan and inf fail the range
                return False
        elif code == _FLAG:
            if t is not bool:
                return False
        elif code == _TEXT:
            if t is not str or len(value) > a:
                return False
        elif t is not list or len(value) > a:  # _ITEMS
            return False
    return True


def _fast_params(params: dict, spec: tuple) -> bool:
    """Whether ``params`` holds exactly the kind's parameters, each within its bound."""
    if len(params) != len(spec[0]):
        return False
    try:
        return _fast([params[key] for key in spec[0]], spec[1])
    except KeyError:
        return False


WAVE_FIELDS = ("wave", "msg", "body", "params", "budget", "report")  # the order of a wave frame's list "w"
_WAVE_KEYS = frozenset(WAVE_FIELDS)
_ABSENT = object()


def _check_params(kind: str, cls: type, params: dict, complete: bool = False) -> None:
    """``params`` against the kind's: each within its bound, none unknown; every one
    present (``complete``: a wave's messages carry them all), or else left out only
    where the kind has a default (a start)."""
    spec = cls.params
    extra = sorted(str(p) for p in params if p not in spec)
    missing = sorted(p for p in spec if p not in params and (complete or p not in cls.defaults))
    if extra or missing:
        raise WireError(f"{kind}: {cls.name} takes the parameters {sorted(spec) or 'none'}"
                        + (f"; unknown: {extra}" if extra else "") + (f"; missing: {missing}" if missing else ""))
    for name, value in params.items():
        bound = spec[name]
        _BOUND_CHECKS[type(bound)](f"{kind}: {cls.name} parameter {name!r}", bound, value)


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
_WaveMessage = m.WaveMessage


def parse(frame: bytes) -> tuple[int, object]:
    """One frame as ``(sender epoch, message)``: a checked :func:`decode`, then the typed
    message of daemon/core/messages.py (its fields in order, every one of them checked
    present by decode). Raises WireError."""
    return typed(open_frame(frame))


def typed(msg: dict) -> tuple[int, object]:
    """``(sender epoch, message)`` of a map :func:`open_frame` gave: its fields checked,
    then the typed message (a ``wave`` frame's body as the kind's own message type)."""
    kind = msg["t"]
    if kind == "wave":
        info, wave, values, params, budget, report = _check_wave(msg)
        return msg["e"], _new(_WaveMessage, (wave, _new(info.cls, (wave, *values)), params, budget, report))
    _check(msg)
    cls = m.TYPES[kind]
    return msg["e"], _new(cls, map(msg.__getitem__, cls._fields))


def pack(msg, epoch: int) -> bytes:
    """Frame a typed message (daemon/core/messages.py)."""
    mt = type(msg)
    if mt is _WaveMessage:
        wave, body, params, budget, report = msg
        tables = _tables
        if tables is None or tables[0] != plugins._version:
            tables = _table()
        info = tables[3][type(body)]
        if info.arity:
            values = list(body[1:])
            for k, convert in info.convert:
                values[k - 1] = convert(values[k - 1])
        else:
            values = []
        return _packer.pack({"v": VERSION, "t": "wave", "e": epoch, "w": [wave, info.mt.name, values, params, budget,
                                                                          report]})
    kind = m.KIND[mt]
    fields = dict(zip(msg._fields, msg))
    if mt is m.WaveDecided:
        stream = type(msg.result) is wv.Stream
        fields["stream"] = stream
        if stream:
            fields["result"] = pack_entries(msg.result)
    fields["v"] = VERSION
    fields["t"] = kind
    fields["e"] = epoch
    return _packer.pack(fields)


def trace_type(msg) -> str:
    """What traces call a message (daemon/trace/recorder.py): a wave's by the kind's own
    names (``explore``, ``echo.start``, ``echo.result``, ``finn.decided``), the rest by
    their wire type."""
    mt = type(msg)
    if mt is m.WaveMessage:
        info = _table()[3].get(type(msg.body))
        return info.mt.name if info is not None else "wave"
    if mt is m.WaveStart:
        return f"{msg.kind}.start"
    if mt is m.WaveDecided:
        cls = _kinds().get(msg.kind)
        return (cls.decided_as or f"{cls.name}.decided") if cls is not None else f"{msg.kind}.decided"
    return m.KIND[mt]


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
