"""The wave kinds this installation knows: the built-in ones and third-party ones.

A wave kind is a :class:`daemon.core.wave.Wave` subclass (ARCHITECTURE.md, "The waves").
:func:`wave_kinds` names them: the built-in kinds (:data:`BUILTIN`), then every entry
point of the group ``echofinn.waves`` (the Python packaging convention pytest plugins
use: a package declares ``[project.entry-points."echofinn.waves"] NAME =
"module:Class"``), found through ``importlib.metadata``. The daemons, the operator,
``ctl`` and the simulator all read the same table.

A kind that cannot be loaded (its module raises on import, the name is not a class) or
that is malformed (:func:`malformed`: no name, a name or tag that clashes with another
kind's, a message type that is not a NamedTuple whose first field is ``wave``, a bound
that is none of daemon/core/wave.py's) is skipped, never fatal: it is logged once on
stderr and listed in :func:`broken` with why, which ``ctl wave --list`` shows.
Tests register a kind of their own with :func:`register` (and take it away with
:func:`unregister`).
"""

from __future__ import annotations

import sys
from importlib import import_module, metadata

from daemon.core import wave as w

GROUP = "echofinn.waves"
# name -> "module:Class" of the kinds that come with echofinn
BUILTIN = {
    "echo": "daemon.core.echo:EchoWave",
    "finn": "daemon.core.finn:FinnWave",
}
# modules of further built-in kinds, each kind a Wave subclass with a name defined there
OPTIONAL = ("daemon.core.tarry", "daemon.core.tree", "daemon.core.phase", "daemon.core.election",
            "daemon.core.termination")
_BOUNDS = (w.Text, w.Int, w.Num, w.Flag, w.Names, w.Items, w.Blob)
_RESERVED_MESSAGES = frozenset({"wave", "wave.start", "wave.decided"})

_kinds: dict[str, type] | None = None
_broken: dict[str, str] = {}
_extra: dict[str, type] = {}  # registered by tests (register)
_version = 0  # bumped on every change of the table: caches built from it (daemon/wire.py) rebuild


def _load(spec: str):
    module, _, attr = spec.partition(":")
    obj = import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def malformed(cls, taken_names=(), taken_tags=(), taken_messages=()) -> str | None:
    """Why ``cls`` is no usable wave kind (a sentence), or None."""
    if not isinstance(cls, type) or not issubclass(cls, w.Wave):
        return f"{cls!r} is not a subclass of daemon.core.wave.Wave"
    name = cls.name
    if type(name) is not str or not name or not name.replace("_", "").replace("-", "").isalnum() or len(name) > 32:
        return f"{cls.__name__}: its name {name!r} must be 1-32 letters, digits, '-' or '_'"
    tag = cls.tag or name
    if type(tag) is not str or "-" in tag or not tag.isalnum() or len(tag) > 16:
        return f"{name}: its tag {tag!r} must be 1-16 letters or digits (it is the first part of a wave id)"
    if name in taken_names:
        return f"{name}: another kind has this name"
    if tag in taken_tags:
        return f"{name}: its tag {tag!r} is another kind's"
    if cls.hears_from not in ("neighbours", "parents"):
        return f"{name}: hears_from must be 'neighbours' or 'parents', not {cls.hears_from!r}"
    if cls.initiators_allowed not in ("one", "many"):
        return f"{name}: initiators_allowed must be 'one' or 'many', not {cls.initiators_allowed!r}"
    seen = set()
    for mt in cls.messages:
        if not isinstance(mt, w.MessageType):
            return f"{name}: {mt!r} in its messages is not a MessageType"
        if type(mt.name) is not str or not mt.name or mt.name in seen or mt.name in taken_messages \
                or mt.name in _RESERVED_MESSAGES:
            return f"{name}: message name {mt.name!r} is empty, repeated or another kind's"
        seen.add(mt.name)
        fields = getattr(mt.cls, "_fields", None)
        if not isinstance(mt.cls, type) or not issubclass(mt.cls, tuple) or not fields or fields[0] != "wave":
            return f"{name}: message {mt.name}: its class must be a NamedTuple whose first field is 'wave'"
        if tuple(mt.fields) != fields[1:]:
            return f"{name}: message {mt.name}: bounds given for {list(mt.fields)}, the class has {list(fields[1:])}"
        for field, bound in mt.fields.items():
            if type(bound) not in _BOUNDS:
                return f"{name}: message {mt.name}: field {field!r} has no bound of daemon/core/wave.py"
    for field, bound in cls.params.items():
        if type(field) is not str or type(bound) not in _BOUNDS or type(bound) in (w.Blob,):
            return f"{name}: parameter {field!r} needs a bound of daemon/core/wave.py (not Blob)"
    if not set(cls.defaults) <= set(cls.params):
        return f"{name}: defaults for parameters it does not have: {sorted(set(cls.defaults) - set(cls.params))}"
    return None


def _entry_points() -> list:
    try:
        return list(metadata.entry_points(group=GROUP))
    except Exception as exc:  # a broken installation's metadata: no third-party kinds
        _broken[f"({GROUP})"] = f"cannot read the entry points: {type(exc).__name__}: {exc}"
        return []


def _optional() -> list:
    """(name, class, True) of the kinds the modules of OPTIONAL define (a module not there
    is skipped silently: that kind is not written yet; one that fails is broken)."""
    found = []
    for module in OPTIONAL:
        try:
            mod = import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name == module:
                continue
            _broken[module] = f"cannot load it: {type(exc).__name__}: {exc}"
            continue
        except Exception as exc:
            _broken[module] = f"cannot load it: {type(exc).__name__}: {exc}"
            continue
        for obj in vars(mod).values():
            if isinstance(obj, type) and issubclass(obj, w.Wave) and obj.__module__ == module and obj.name:
                found.append((obj.name, obj, True))
    return found


def _build() -> dict[str, type]:
    kinds: dict[str, type] = {}
    tags: set[str] = set()
    msgs: set[str] = set()
    _broken.clear()
    global _version
    _version += 1
    sources = [(n, s, True) for n, s in BUILTIN.items()] + _optional()
    sources += [(ep.name, ep, True) for ep in _entry_points()]
    sources += [(n, cls, True) for n, cls in _extra.items()]
    for name, source, _ in sources:
        try:
            if isinstance(source, str):
                cls = _load(source)
            elif isinstance(source, metadata.EntryPoint):
                cls = source.load()
            else:
                cls = source
        except Exception as exc:  # whatever a third-party module raises on import
            _broken[name] = f"cannot load it: {type(exc).__name__}: {exc}"
            continue
        why = malformed(cls, kinds, tags, msgs)
        if why is None and cls.name != name:
            why = f"registered as {name!r} but its name is {cls.name!r}"
        if why is not None:
            _broken[name] = why
            continue
        kinds[name] = cls
        tags.add(cls.tag or cls.name)
        msgs.update(mt.name for mt in cls.messages)
    for name, why in _broken.items():
        print(f"echofinn: wave kind {name} skipped: {why}", file=sys.stderr)
    return kinds


def wave_kinds() -> dict[str, type]:
    """Name -> class of every usable wave kind (built once a process; see :func:`reload`)."""
    global _kinds
    if _kinds is None:
        _kinds = _build()
    return _kinds


def broken() -> dict[str, str]:
    """Name -> why, of the kinds that were found but skipped."""
    wave_kinds()
    return dict(_broken)


def reload() -> dict[str, type]:
    """Find the kinds again (after :func:`register`, or a package installed meanwhile)."""
    global _kinds, _version
    _kinds = None
    _version += 1
    return wave_kinds()


def version() -> int:
    """A number that changes whenever the table does (for the caches built from it)."""
    wave_kinds()
    return _version


def register(cls) -> None:
    """Add a kind in this process (tests): as if an entry point named it."""
    _extra[getattr(cls, "name", repr(cls))] = cls
    reload()


def unregister(name: str) -> None:
    _extra.pop(name, None)
    reload()


def tag_of(wave: str) -> str:
    """The tag of a wave id (its part before the first '-')."""
    return wave.split("-", 1)[0]


def by_tag() -> dict[str, type]:
    """Tag -> class of every usable kind."""
    return {cls.tag or cls.name: cls for cls in wave_kinds().values()}


def kind(name: str) -> type:
    """The kind called ``name``; KeyError naming the installed ones if there is none."""
    kinds = wave_kinds()
    if name not in kinds:
        raise KeyError(f"no wave kind {name!r} is installed (installed: {', '.join(sorted(kinds)) or 'none'})")
    return kinds[name]
