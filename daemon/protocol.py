"""PROTOCOL.md, generated from the schema: ``python -m daemon.protocol`` writes it.

The reference a stranger implements a client from. Everything that can drift is read from
the code: the message types, their fields, types and bounds (daemon/core/messages.py
``SCHEMA``, ``LIMITS``/``RANGES`` tables), who may send each (``OPERATOR_REQUESTS``,
``NODE_MESSAGES``), the replies (``REPLIES``), the error codes (``ERROR_CODES``), the
envelope and version (daemon/wire.py), each built-in wave kind's parameters and messages
with their bounds (daemon/core/wave.py ``MessageType``, found through
daemon/plugins.py), the key files (daemon/security.py). The prose around them (what a
field means, the sockets, the echo result's encoding, authentication) lives here, in
:data:`FIELD_NOTES` and the templates below; a field without a note is an error, so a
new field cannot slip into the schema undocumented. tests/core/test_protocol.py fails
when PROTOCOL.md differs from what this module renders.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from daemon import plugins, security, wire
from daemon.core import messages as m
from daemon.core import wave as wv

TARGET = Path(__file__).resolve().parent.parent / "PROTOCOL.md"

# (message type, field) -> what it means. Every field of SCHEMA needs one.
FIELD_NOTES: dict[tuple[str, str], str] = {
    ("ping", "id"): "the request's id (every request carries one; its reply echoes it)",
    ("pong", "id"): "the ping's id",
    ("pong", "name"): "the node's name",
    ("pong", "pid"): "the node's process id",
    ("pong", "stats"): "the node's counters: name -> integer (received, garbage, unauthorized, refused, ...)",
    ("pong", "refused"): "[who refused, whose key] for each of its links whose CURVE handshake failed",
    ("error", "code"): "one of the error codes below",
    ("error", "text"): "a sentence naming the node and what is wrong",
    ("error", "id"): "the id of the request it answers; nil when the frame held none that could be read, "
    "or when it answers no request (a wave-fault)",
    ("wave.start", "wave"): "the wave id, `<tag>-<start ns, hex>-<salt>` (see Wave ids)",
    ("wave.start", "kind"): "the wave kind's name (see Wave kinds)",
    ("wave.start", "params"): "the kind's parameters, each within its bound; one with a default may be left out",
    ("wave.start", "timeout"): "seconds: the wave's budget",
    ("wave.start", "id"): "the request's id: an error refusing the start carries it",
    ("wave.decided", "wave"): "the wave id of the start",
    ("wave.decided", "kind"): "the wave kind's name",
    ("wave.decided", "node"): "the node that decided (the sender)",
    ("wave.decided", "result"): "the decision: a plain value, or with `stream` a msgpack stream in bin",
    ("wave.decided", "stream"): "true: `result` is bin holding a msgpack stream of values (echo's entries)",
    ("submit", "tasks"): "how many tasks to enqueue (1..MAX_TASKS; 0 is answered bad-submit)",
    ("submit", "cost"): "seconds of CPU each task takes",
    ("submit", "label"): 'the tasks\' label ("" = "submitted")',
    ("submit", "id"): "the request's id",
    ("submit.ok", "ids"): "the new tasks' ids (strings)",
    ("submit.ok", "id"): "the submit's id",
    ("move", "move_id"): "the move's id, `<round id>-<k>` (a round id is a wave id of tag m)",
    ("move", "dest"): "the node that receives the tasks (a node of the cluster, not the receiver)",
    ("move", "tasks"): "ids of queued tasks to move; [] with count > 0",
    ("move", "count"): "> 0: move that many from the tail of the queue instead",
    ("move", "id"): "the request's id",
    ("move.ok", "move_id"): "the move's id",
    ("move.ok", "moved"): "the ids that left (a move by ids; [] for a count)",
    ("move.ok", "count"): "how many tasks left",
    ("move.ok", "id"): "the move's request id",
    ("trace.get", "wave_ids"): "the wave ids whose steps to return; [] = all",
    ("trace.get", "max_steps"): "at most this many steps, the newest; 0 = none (only `seen`)",
    ("trace.get", "id"): "the request's id",
    ("trace", "node"): "the node",
    ("trace", "incarnation"): "the node's epoch (ns): a restart is a new incarnation",
    ("trace", "dropped"): "steps overwritten or left out before the first one here",
    ("trace", "seen"): "the ids of the waves it saw last, oldest first",
    ("trace", "steps"): "bin: a msgpack stream of step maps",
    ("trace", "id"): "the trace.get's id",
    ("balance.watch", "on"): "true: send this operator `balance.wanted` from now on (it replaces any other "
    "watcher); false: stop",
    ("balance.watch", "id"): "the request's id: an error about it carries it",
    ("balance.wanted", "node"): "the node that wants a balancing round",
    ("balance.wanted", "reason"): '"queued" (work waits for a CPU slot) or "idle" (a slot freed, nothing queued)',
    ("balance.wanted", "queued"): "tasks queued at the node when it asked",
    ("balance.wanted", "free"): "its free CPU slots then",
    ("wave", "wave"): "the wave id",
    ("wave", "msg"): "the kind's message type (see Wave kinds)",
    ("wave", "body"): "the message's fields but `wave`, in order, each within its bound",
    ("wave", "params"): "the wave's parameters, all of them ({} for a message that cannot bring the wave to a node)",
    ("wave", "budget"): "seconds left to the receiver; nil: no deadline",
    ("wave", "report"): 'the operator\'s routing id, where a deciding node reports (b"": none)',
    ("transfer", "move_id"): "the move's id",
    ("transfer", "tasks"): "[id, label, cost] of each task handed over",
    ("transfer", "expires"): "unix time after which the donor takes the tasks back",
    ("transfer", "waves"): "Lai-Yang tags: the snapshot waves the sender has sampled",
    ("ack", "move_id"): "the move's id",
    ("ack", "accepted"): "whether the receiver took the tasks",
    ("ack", "waves"): "Lai-Yang tags, as in transfer",
    ("forget", "move_id"): "the move's id: the receiver may forget it",
    ("forget", "waves"): "Lai-Yang tags, as in transfer",
}

_TYPE_NAMES = {
    int: "int",
    float: "float",
    str: "str",
    bytes: "bin",
    bool: "bool",
    list: "array",
    dict: "map",
    type(None): "nil",
}


def _type(want) -> str:
    if want is m.ANY:
        return "any"
    if isinstance(want, tuple):
        names = [_TYPE_NAMES[t] for t in want]
        return (
            "number"
            if names == ["int", "float"]
            else " or ".join("number" if n == "int" and "float" in names else n for n in names if n != "float")
        )
    return _TYPE_NAMES[want]


def _bound(field: str, want) -> str:
    """The bound daemon/wire.py checks beyond the type (daemon/wire.py ``_check_bounds``)."""
    if want is m.ANY:
        return "the frame's"
    parts = []
    wants = want if isinstance(want, tuple) else (want,)
    if field in m.TEXT_FIELDS and str in wants:
        parts.append(f"≤ {m.MAX_TEXT} characters")
    if field in m.LIST_LIMITS and list in wants:
        parts.append(f"≤ {m.LIST_LIMITS[field]:,} items")
    if field in m.BYTES_LIMITS and bytes in wants:
        parts.append(f"≤ {m.BYTES_LIMITS[field]} bytes")
    if field in ("tasks", "count") and want is int:
        parts.append(f"0..{m.MAX_TASKS:,}")
    if field in m.RANGES:
        lo, hi = m.RANGES[field]
        if float in wants:
            parts.append(f"x > {lo:g}, finite" if hi == float("inf") else f"{lo:g} < x ≤ {hi:g}")
        else:
            parts.append(f"{lo + 1}..{hi:,}")
    elif float in wants:
        parts.append("finite")
    return "; ".join(parts) or "—"


def _wave_bound(b) -> tuple[str, str]:
    if type(b) is wv.Text:
        return "str", f"≤ {b.limit:,} characters"
    if type(b) is wv.Int:
        return "int", f"{b.lo:,}..{b.hi:,}"
    if type(b) is wv.Num:
        return "number", f"{b.lo:g} < x ≤ {b.hi:g}, finite"
    if type(b) is wv.Flag:
        return "bool", "—"
    if type(b) is wv.Names:
        return "array of str", f"≤ {b.limit:,} node names of the cluster"
    if type(b) is wv.Items:
        return "array", f"≤ {b.limit:,} plain values"
    if type(b) is wv.Blob:
        return "bin", f"≤ {b.limit:,} bytes (a msgpack stream where the kind says so)"
    raise TypeError(f"no rendering for the bound {b!r}")


def _fields_table(kind: str) -> list[str]:
    rows = ["| field | type | bound | meaning |", "|---|---|---|---|"]
    for field, want in m.SCHEMA[kind].items():
        note = FIELD_NOTES.get((kind, field))
        if note is None:
            raise KeyError(f"daemon/protocol.py FIELD_NOTES: no note for field {field!r} of {kind!r}")
        rows.append(f"| `{field}` | {_type(want)} | {_bound(field, want)} | {note} |")
    return rows


def _message(kind: str) -> list[str]:
    cls = m.TYPES[kind]
    if cls in m.OPERATOR_REQUESTS:
        who = "an operator, to a node's operator port"
    elif cls in m.NODE_MESSAGES:
        who = "a node, to a node's inbox (an operator sending it is told `unauthorized`)"
    elif kind == "balance.wanted":
        who = "a node, unasked, to the operator that watches it (`balance.watch`)"
    else:
        who = "a node, to the operator (a reply)"
    out = [f"### `{kind}`", "", f"Sent by {who}."]
    if kind in m.REPLIES:
        out.append(f"Answered by: {m.REPLIES[kind]}.")
    if kind == "wave":  # daemon/wire.py: one list instead of six map keys
        order = ", ".join(wire.WAVE_FIELDS)
        out.append(
            f"Its fields travel as one array under the key `w`, in this order: [{order}] "
            f'(the map is `{{"v", "t": "wave", "e", "w": [...]}}`).'
        )
    if not m.SCHEMA.get(kind):  # no field: what it means is all there is to say
        out.append(_NO_FIELDS[kind])
        return out + [""]
    return out + [""] + _fields_table(kind) + [""]


# what a message without fields means (a new one without an entry here makes the render fail)
_NO_FIELDS = {
    "relink": "It has no fields. The sender gave up on the receiver at a wave's deadline: the receiver "
    "reopens its own link to the sender (at most once a second per peer), which heals a link whose "
    "routing id a stranger took over at the sender's inbox (ROUTER_HANDOVER).",
}


def builtin_kinds() -> dict[str, type]:
    """The wave kinds that come with echofinn (not third-party ones, which differ between
    installations), in the order daemon/plugins.py finds them."""
    return {n: c for n, c in plugins.wave_kinds().items() if c.__module__.startswith("daemon.")}


def _kind(cls) -> list[str]:
    tag = cls.tag or cls.name
    out = [
        f"### {cls.name} (tag `{tag}`)",
        "",
        cls.summary + ".",
        "",
        f"Hears from: its {cls.hears_from}; initiators: {cls.initiators_allowed}.",
        "",
    ]
    if cls.params:
        out += [
            "Parameters (`params` of `wave.start`):",
            "",
            "| parameter | type | bound | default |",
            "|---|---|---|---|",
        ]
        for p, b in cls.params.items():
            t, bound = _wave_bound(b)
            default = f"`{json.dumps(cls.defaults[p])}`" if p in cls.defaults else "required"
            out.append(f"| `{p}` | {t} | {bound} | {default} |")
        out.append("")
    else:
        out += ["Parameters: none (`params` is `{}`).", ""]
    for mt in cls.messages:
        joins = "" if mt.joins else ' It cannot bring the wave to a node: it carries no params, budget nil, report b"".'
        out.append(f"Message `{mt.name}` (`msg` of a `wave` frame).{joins}")
        if mt.fields:
            out += ["", "| body index | field | type | bound |", "|---|---|---|---|"]
            for k, (f, b) in enumerate(mt.fields.items()):
                t, bound = _wave_bound(b)
                out.append(f"| {k} | `{f}` | {t} | {bound} |")
        else:
            out.append("Its body is `[]`.")
        out.append("")
    return out


def render() -> str:
    kinds = builtin_kinds()
    echo = kinds["echo"]
    lines = [HEAD.format(version=wire.VERSION, max_frame=wire.MAX_FRAME, max_id=m.MAX_ID).rstrip(), ""]
    lines += ["## Operator requests", ""]
    for kind in m.TYPES:
        if m.TYPES[kind] in m.OPERATOR_REQUESTS:
            lines += _message(kind)
    lines += ["## Replies to an operator", ""]
    for kind in m.TYPES:
        if m.TYPES[kind] not in m.OPERATOR_REQUESTS | m.NODE_MESSAGES:
            lines += _message(kind)
    lines += ["## Node messages", "", NODE_TEXT.strip(), ""]
    for kind in m.TYPES:
        if m.TYPES[kind] in m.NODE_MESSAGES:
            lines += _message(kind)
    lines += [WAVES.format(max_budget=m.MAX_BUDGET).strip(), ""]
    for cls in kinds.values():
        lines += _kind(cls)
    lines += [ECHO.format(tag=echo.tag or echo.name).strip(), ""]
    lines += ["## Error codes", "", ERRORS_TEXT.strip(), "", "| code | meaning |", "|---|---|"]
    lines += [f"| `{code}` | {meaning} |" for code, meaning in m.ERROR_CODES.items()]
    lines += [
        "",
        KEYS.format(
            keys=security.KEYS_DIR,
            keyring=security.KEYRING,
            operator=security.OPERATOR,
            nodes=security.NODES_DIR,
            op_user=security.OPERATOR_USER,
            node_user=security.NODE_USER,
        ).strip(),
        "",
    ]
    lines += [SESSION.strip(), ""]
    return "\n".join(lines)


HEAD = """
# The echofinn protocol, version {version}

<!-- Generated by `python -m daemon.protocol` from daemon/core/messages.py and the wave
kinds; do not edit (tests/core/test_protocol.py fails when this file differs). -->

What a client must do to talk to a cluster's nodes: the sockets, the frame, every message
with its fields and bounds, who may send it and what answers it, the error codes, the
wave kinds' messages, the echo result's encoding, the key files and how an operator
authenticates. `examples/client.py` is a client written from this file alone.

## Sockets

Every node has two ZeroMQ ROUTER sockets over TCP: its **inbox** (the topology's `port`),
where nodes talk to each other, and its **operator port** (`port` + the cluster's
`operator_port_offset`), where operators talk to it. A running cluster's run directory
(`$ECHOFINN_HOME/<cluster>/`, else `${{XDG_RUNTIME_DIR:-/tmp}}/echofinn-<uid>/<cluster>/`)
holds `cluster.json`, whose `nodes.<name>.operator_endpoint` is each node's operator
endpoint (`tcp://host:port`).

An operator connects one DEALER socket to each node it talks to. It sets the DEALER's
routing id (`ZMQ_ROUTING_ID`) to a name of its own, unique among the operators, of at most
256 bytes and never a node's name (a node refuses that: `unauthorized`). A node answers
through its operator ROUTER to that routing id, so it can answer only once it has a
connection from it: **ping a node first** and wait for its pong before sending anything
that is answered later or by other nodes (a wave's decisions: every deciding node reports
to the routing id the wave started with, so connect to, and ping, every node that may
decide). A node that cannot route a reply drops it.

## Frames and the envelope

Each ZeroMQ message a DEALER sends or receives is **one frame** holding **one msgpack map**
(never any other encoding; strings as msgpack str, byte strings as bin; a map's keys are
strings). A frame is at most {max_frame:,} bytes. Every map has the envelope

| key | type | meaning |
|---|---|---|
| `v` | int | the protocol version: **{version}**; a node refuses any other (`malformed`) |
| `t` | str | the message type (below) |
| `e` | int | the sender's epoch: its start time in ns (an operator may send 0) |

and the fields of its type, all of them required, each of its type and within its bound;
keys a type does not have are ignored. "number" is an int or a float (never a bool),
finite; "any" is any msgpack value. Anything else is answered with the error `malformed`,
whose text names the field.

**Request ids.** Every operator request carries an `id` (int, 0..{max_id:,}) of the
operator's choosing; the reply and any error about the request carry the same `id`, so
replies can be matched to requests. A wave's decisions are matched by the wave id instead.
"""

NODE_TEXT = """
Nodes send these to each other's inbox, under their own names as routing ids and their
own keys. A client never needs them; they are listed so that a node can be written from
this file. A node refuses them from an operator before it reads their fields
(`unauthorized`, naming only the type), and answers no node with an error: it counts what
it refuses (the `stats` of a pong) and drops it.
"""

WAVES = """
## Wave kinds

A wave is started by a `wave.start` at one or more nodes (the initiators); its messages
travel between nodes as `wave` frames: `msg` names the kind's message type, `body` holds
its fields but `wave` in order. A `wave.start` names the kind; its `params` are the
kind's, each within its bound (one with a default may be left out); `timeout` is at most
{max_budget:g} s. The kinds below come with echofinn; a node lists what else is installed
with `ctl wave --list`, and refuses a kind it does not have (`unknown-kind`).

**Wave ids.** `<tag>-<start ns, hex>-<salt>`: the kind's tag, the start time (unix ns, in
lower-case hex) and a salt (letters and digits, no `-`), e.g. `e-17e3f7a1c2b4d5e6-a1b2c3d4`. A
node refuses an id whose tag is not the kind's (`bad-wave`), one that began before the
node started (`stale`) or more than a few seconds in the future (`bad-wave`), and a start
of a one-initiator kind at a node the wave already reached (`duplicate`).

Each deciding node sends the operator a `wave.decided` with its result.
"""

ECHO = """
## The echo result

An echo (kind `echo`, tag `{tag}`) is decided at its initiator alone, which sends one
`wave.decided` with `stream` true and `result` a bin holding a **msgpack stream**: the
concatenation of msgpack values, one per node the wave reached, each an array
`[node, father, state]`: the node's name (str), its father in the spanning tree (str, or
nil at the initiator) and its sample (a map). Read it with a streaming unpacker
(msgpack's `Unpacker`, fed the bytes), not a single unpack. The sample holds at least
`name`, `cpus`, `running`, `queued`, `done`, `submitted`, `work` (seconds of work left),
`load` ((running + queued) / cpus), `pid`; with `params.detail` true also
`running_tasks` and `queue_runs`. Check each value before you trust it: a hostile node can
put anything in its own entry.
"""

ERRORS_TEXT = """
An `error` answers an operator's request the node will not carry out. Its `code` is one
of these; its `text` says why in words. Codes marked "never answered" are counted by a
node when another node sends what they describe, and never sent.
"""

KEYS = """
## Keys and authentication

Unless its topology says `security = "none"` in `[cluster]`, every socket speaks
**CURVE** (ZeroMQ's CurveZMQ). The keys live in the run directory's `{keys}/` folder
(mode 0700):

| file | what |
|---|---|
| `{keys}/{operator}.key` | the operators' public key (one pair shared by every operator of the cluster) |
| `{keys}/{operator}.key_secret` | the operators' key pair (mode 0600) |
| `{keys}/{nodes}/<node>.key` | each node's public key |
| `{keys}/{nodes}/<node>.key_secret` | each node's key pair (mode 0600; only on the node's host) |
| `{keys}/{keyring}` | `{{"cluster": name, "operator": public key, "nodes": {{name: public key}}}}` |

The key files are ZeroMQ certificates (as `zmq.auth.create_certificates` writes them):
text lines `public-key = "<40 Z85 characters>"` and, in a `.key_secret`, also
`secret-key = "<40 Z85 characters>"`, under a `curve` section.

**How an operator authenticates.** Its DEALER is a CURVE client: its own key pair is the
operator pair (`curve_publickey`, `curve_secretkey` from `{operator}.key_secret`) and the
server key is the node's public key (`curve_serverkey` from `{nodes}/<node>.key`). The
node's operator port is a CURVE server whose ZAP handler admits only the operator key and
gives the connection the User-Id `{op_user}` (a node's inbox admits only the nodes' keys,
as `{node_user}<name>`). A client without the operator key never completes the
handshake: nothing it sends reaches the node, and it hears nothing. With
`security = "none"` the sockets are plain TCP and a routing id is trusted.
"""

SESSION = """
## A session

1. Read `cluster.json` for the nodes' operator endpoints and the key files for the
   operator pair and the nodes' public keys.
2. For each node: a DEALER with a routing id of your own, CURVE client keys set,
   connected to the node's operator endpoint; send `ping` (`{"v": 2, "t": "ping", "e": 0,
   "id": 1}`) and wait for `pong` with `id` 1.
3. `submit` `{"tasks": 3, "cost": 1.5, "label": "mine", "id": 2}`: the answer is
   `submit.ok` with `id` 2 and three task ids, or an `error` with `id` 2.
4. Start an echo: a fresh wave id with tag `e`, `wave.start` with `kind` "echo",
   `params` {"detail": false}, `timeout` 5.0; the initiator answers `wave.decided` with the
   wave id and the stream of entries, or an `error` with the start's `id`.
"""


def main(argv: list[str]) -> int:
    """Write PROTOCOL.md (or, with ``--check``, say whether it is up to date)."""
    text = render()
    if "--check" in argv:
        if not TARGET.exists() or TARGET.read_text() != text:
            print(f"{TARGET} is out of date: run python -m daemon.protocol", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text)
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
