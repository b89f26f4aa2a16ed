"""The wire format (daemon/wire.py) on its own: real msgpack frames, every check of
:func:`decode` and the exact text it gives, wave ids, echo entry streams and the
conversions to the core's messages. The same checks over a real socket are in
tests/e2e/test_waves.py (garbage) and tests/e2e/test_hostile_requests.py (the size limit)."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from budget import examples

from daemon import wire
from daemon.core import messages as m
from daemon.core.messages import MAX_TASKS, MAX_TEXT, MAX_WAVE_TAGS
from daemon.core.waves import wave_started
from daemon.wire import MAX_FRAME, SCHEMA, VERSION, WireError

pack = msgpack.Packer(use_bin_type=True).pack

# One valid value of each field type of the schema.
SAMPLE = {int: 3, str: "s", bool: True, dict: {"k": 1}, list: [1, "a"], bytes: b"\x00\x01", (int, float): 2.5,
          (int, float, type(None)): 2.5, (int, type(None)): 3, m.ANY: [1, "a"]}
# a wave's frames: a message of an installed kind (echo's explore), its parameters
WAVE_SAMPLE = {"wave": {"msg": "explore", "body": [], "params": {"detail": True}},
               "wave.start": {"kind": "echo", "params": {"detail": True}}}


def valid_fields(kind):
    return {field: WAVE_SAMPLE.get(kind, {}).get(field, SAMPLE[want]) for field, want in SCHEMA[kind].items()}


def label(kind, fields):
    """What an error names: the message type, a wave's own (e.g. explore) where it has one."""
    return fields.get("msg", kind) if kind == "wave" else kind


@pytest.mark.parametrize("kind", sorted(SCHEMA))
def test_every_message_type_round_trips(kind):
    fields = valid_fields(kind)
    msg = wire.decode(wire.encode(kind, 42, **fields))
    assert msg == {"v": VERSION, "t": kind, "e": 42, **fields}


def test_encode_defaults_to_epoch_zero_and_extra_fields_pass():
    msg = wire.decode(wire.encode("ping", id=1, note="extra"))
    assert msg == {"v": 2, "t": "ping", "e": 0, "id": 1, "note": "extra"}
    assert VERSION == 2


def test_numbers_accept_int_and_float_but_refuse_bool_and_int_refuses_float():
    assert wire.decode(wire.encode("submit", id=1, tasks=2, cost=3, label="x"))["cost"] == 3
    assert wire.decode(wire.encode("submit", id=1, tasks=2, cost=0.5, label="x"))["cost"] == 0.5
    with pytest.raises(WireError, match=r"^submit: field 'tasks' must be int, got bool$"):
        wire.decode(wire.encode("submit", id=1, tasks=True, cost=1, label="x"))
    with pytest.raises(WireError, match=r"^submit: field 'tasks' must be int, got float$"):
        wire.decode(wire.encode("submit", id=1, tasks=2.0, cost=1, label="x"))
    with pytest.raises(WireError, match=r"^submit: field 'cost' must be int or float, got str$"):
        wire.decode(wire.encode("submit", id=1, tasks=2, cost="1", label="x"))
    # nor is a bool a number where int or float is asked for (it would pass as 1)
    with pytest.raises(WireError, match=r"^explore: field 'budget' must be int or float or NoneType, got bool$"):
        wire.parse(wire.encode("wave", 1, wave="w", msg="explore", body=[], params={"detail": False}, budget=True,
                               report=b""))
    # a bool field takes a bool (bool is not "int" here, but True is a bool)
    assert wire.decode(wire.encode("ack", move_id="m", accepted=False, waves=[]))["accepted"] is False


@pytest.mark.parametrize("kind", sorted(SCHEMA))
def test_each_missing_field_is_named(kind):
    for field in SCHEMA[kind]:
        fields = valid_fields(kind)
        del fields[field]
        with pytest.raises(WireError, match=rf"^{label(kind, fields)}: field '{field}' must be .*, got NoneType$"):
            wire.decode(wire.encode(kind, **fields))


def test_frame_size_limit():
    assert MAX_FRAME == 32 * 1024 * 1024
    overhead = len(wire.encode("ping", id=1, pad=b"x" * 70_000)) - 70_000  # same bin32 header
    exact = wire.encode("ping", id=1, pad=b"x" * (MAX_FRAME - overhead))
    assert len(exact) == MAX_FRAME
    assert wire.decode(exact)["id"] == 1  # up to the limit: fine
    over = wire.encode("ping", id=1, pad=b"x" * (MAX_FRAME - overhead + 1))
    with pytest.raises(WireError, match=rf"^frame of {MAX_FRAME + 1} bytes exceeds {MAX_FRAME}$"):
        wire.decode(over)


@pytest.mark.parametrize("frame, text", [
    (b"\xc1not msgpack", "not msgpack: "),
    (b"", "not msgpack: "),
    (pack({"v": 2, "t": "ping"}) + b"\x00", "not msgpack: ExtraData"),
    (pack([1, 2, 3]), "expected a map, got list"),
    (pack(7), "expected a map, got int"),
    (pack({"v": 99, "t": "ping", "e": 0, "id": 1}), "protocol version 99, this node speaks 2"),
    (pack({"t": "ping", "e": 0, "id": 1}), "protocol version None, this node speaks 2"),
    (pack({"v": 2, "t": "launch", "e": 0}), "unknown message type 'launch'"),
    (pack({"v": 2, "t": 5, "e": 0}), "unknown message type 5"),
    (pack({"v": 2, "t": ["ping"], "e": 0}), "unknown message type ['ping']"),
    (pack({"v": 2, "e": 0}), "unknown message type None"),
    (pack({"v": 2, "t": "ping", "id": 1}), "ping: field 'e' (epoch) must be an integer"),
    (pack({"v": 2, "t": "ping", "e": True, "id": 1}), "ping: field 'e' (epoch) must be an integer"),
    (pack({"v": 2, "t": "ping", "e": 1.0, "id": 1}), "ping: field 'e' (epoch) must be an integer"),
    (pack({"v": 2, "t": "ping", "e": 0, "id": "one"}), "ping: field 'id' must be int, got str"),
    (pack({1: 2}), "not msgpack: ValueError"),  # strict_map_key: only str/bytes keys
])
def test_bad_frames_are_named(frame, text):
    with pytest.raises(WireError) as err:
        wire.decode(frame)
    assert str(err.value).startswith(text), str(err.value)
    if text.startswith("not msgpack"):
        assert err.value.__suppress_context__  # no chained traceback from msgpack


def test_unpacking_is_not_raw():
    msg = wire.decode(pack({"v": 2, "t": "error", "e": 0, "code": "c", "text": "t", "id": None}))
    assert type(msg["code"]) is str


@settings(max_examples=examples(300))
@given(st.binary(max_size=64) | st.builds(lambda d: pack(d), st.dictionaries(
    st.sampled_from(["v", "t", "e", "id", "wave", "x"]),
    st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.floats(allow_nan=False), st.text(max_size=4),
              st.sampled_from(sorted(SCHEMA)), st.just(1)), max_size=6)))
def test_decode_accepts_only_checked_maps_and_raises_only_wire_errors(frame):
    try:
        msg = wire.decode(frame)
    except WireError:
        return
    assert type(msg) is dict and msg["v"] == 2 and type(msg["e"]) is int
    for field, want in SCHEMA[msg["t"]].items():
        assert isinstance(msg[field], want)


# --- wave ids --------------------------------------------------------------------------


def test_wave_ids_carry_their_start_time():
    wave = wire.new_wave_id("echo", 0xABC123, "salt")
    assert wave == "echo-abc123-salt"
    assert wire.wave_started(wave) == 0xABC123
    assert wire.wave_started("echo-0-x") == 0
    for bad in ("echo", "echo-abc", "a-b-c-d", "echo-xyz-salt", "echo--salt", ""):
        assert wire.wave_started(bad) is None, bad


# --- echo entry streams ----------------------------------------------------------------


def test_entry_streams_concatenate_byte_for_byte():
    child = wire.pack_entries([("c", "p", {"cpus": 1}), ("d", "c", {})])
    stream = wire.pack_entries([("p", None, {"cpus": 2}), child])
    assert stream.endswith(child)
    assert wire.unpack_entries(stream) == [("p", None, {"cpus": 2}), ("c", "p", {"cpus": 1}), ("d", "c", {})]
    assert wire.pack_entries([]) == b"" and wire.unpack_entries(b"") == []
    assert type(wire.unpack_entries(stream)[0]) is tuple


@pytest.mark.parametrize("entry", [
    ["a", None],                # too short
    ["a", None, {}, 1],         # too long
    [1, None, {}],              # name not a string
    ["a", 2, {}],               # father neither None nor a string
    ["a", None, []],            # state not a map
    ("a", None, {}, "x"),
    {"a": 1},                   # not a list
    "a",
])
def test_bad_entries_are_refused(entry):
    stream = wire.pack_entries([("ok", None, {})]) + pack(entry)
    with pytest.raises(WireError, match=r"^echo: each entry must be \[node, father, state\]$"):
        wire.unpack_entries(stream)


def test_a_stream_that_is_not_msgpack_is_refused():
    good = wire.pack_entries([("ok", None, {})])
    for bad in (b"\xc1", good + b"\xc1", pack({1: 2})):
        with pytest.raises(WireError, match=r"^echo: entries are not a msgpack stream: \w+$") as err:
            wire.unpack_entries(bad)
        assert err.value.__suppress_context__
    # a truncated stream: the last entry is incomplete, so it is not returned
    assert wire.unpack_entries(good + good[:-1]) == [("ok", None, {})]


def test_a_traces_steps_are_maps_in_a_msgpack_stream():
    good = pack({"seq": 0}) + pack({"seq": 1})
    assert wire.unpack_steps(good) == [{"seq": 0}, {"seq": 1}]
    with pytest.raises(WireError, match=r"^trace: each step must be a map$"):
        wire.unpack_steps(good + pack([1, 2]))
    for bad in (b"\xc1", good + b"\xc1", pack({1: 2})):
        with pytest.raises(WireError, match=r"^trace: steps are not a msgpack stream: \w+$") as err:
            wire.unpack_steps(bad)
        assert err.value.__suppress_context__


def test_a_stream_may_be_as_large_as_a_frame():
    big = wire.pack_entries([("n", None, {"pad": "x" * (2 * 1024 * 1024)})] * 4)
    assert len(big) > 8 * 1024 * 1024
    assert len(wire.unpack_entries(big)) == 4


# --- the core's messages ---------------------------------------------------------------


def test_core_messages_round_trip():
    from daemon.core.echo import Echo, Explore
    from daemon.core.finn import FinnSets
    from daemon.core.wave import Stream

    explore = wire.decode(wire.pack(m.WaveMessage("w", Explore("w"), {"detail": True}, 2.5, b""), 9))
    assert explore == {"v": 2, "t": "wave", "e": 9, "wave": "w", "msg": "explore", "body": [],
                       "params": {"detail": True}, "budget": 2.5, "report": b""}
    msg = m.WaveMessage("w", Explore("w"), {"detail": False}, 2.5, b"")
    assert wire.parse(wire.pack(msg, 9)) == (9, msg)

    child = wire.pack_entries([("c", "p", {})])
    frame = wire.pack(m.WaveMessage("w", Echo("w", Stream([("p", None, {}), ("c", "p", {})])), {}, None, b""), 3)
    echo = wire.decode(frame)
    assert echo["t"] == "wave" and echo["msg"] == "echo" and echo["e"] == 3
    (entries,) = echo["body"]
    assert wire.unpack_entries(entries) == [("p", None, {}), ("c", "p", {})]
    assert wire.parse(frame) == (3, m.WaveMessage("w", Echo("w", entries), {}, None, b""))  # forwarded as one packed run
    same = m.WaveMessage("w", Echo("w", child), {}, None, b"")
    with pytest.raises(WireError, match=r"^echo: carries no parameters, budget or report"):
        wire.parse(wire.pack(m.WaveMessage("w", Echo("w", child), {"detail": False}, 1.0, b""), 3))
    assert wire.parse(wire.pack(same, 3)) == (3, same)  # bytes as they are

    finn = wire.decode(wire.pack(m.WaveMessage("f", FinnSets("f", {"b", "a"}, {"a"}), {"tasks": 2, "cost": 0.5}, None, b"r"), 5))
    assert finn == {"v": 2, "t": "wave", "e": 5, "wave": "f", "msg": "finn", "body": [["a", "b"], ["a"]],
                    "params": {"tasks": 2, "cost": 0.5}, "budget": None, "report": b"r"}
    assert wire.parse(wire.encode("wave", 5, **{k: finn[k] for k in SCHEMA["wave"]})) == (
        5, m.WaveMessage("f", FinnSets("f", ["a", "b"], ["a"]), {"tasks": 2, "cost": 0.5}, None, b"r"))

    result = wire.decode(wire.pack(m.WaveDecided("w", "echo", "p", Stream([("p", None, {}), child])), 1))
    assert result["stream"] is True and wire.unpack_entries(result["result"]) == [("p", None, {}), ("c", "p", {})]
    decided = wire.decode(wire.pack(m.WaveDecided("f", "finn", "p", {"sent": 1, "enqueued": []}), 1))
    assert decided["stream"] is False and decided["result"] == {"sent": 1, "enqueued": []}


def test_conversions_refuse_what_is_not_a_message():
    with pytest.raises(KeyError):
        wire.pack(("x",), 0)  # not a message type of daemon/core/messages.py
    base = dict(wave="f", msg="finn", params={"tasks": 0, "cost": 1.0}, budget=None, report=b"")
    for inc, ninc in (([1], []), (["a"], [None]), ([b"a"], ["a"])):
        with pytest.raises(WireError, match=r"^finn: "):
            wire.parse(wire.encode("wave", 0, **base, body=[inc, ninc]))


def test_a_waves_body_and_parameters_are_checked_against_its_kinds_bounds():
    base = dict(wave="f", msg="finn", body=[[], []], params={"tasks": 1, "cost": 1.0}, budget=None, report=b"")
    assert wire.parse(wire.encode("wave", 0, **base))[1].body == ("f", [], [])
    for change, text in ((dict(msg="nothing"), "wave: no wave kind installed here has a message 'nothing'"),
                         (dict(body=[[]]), "finn: 1 fields in the body, the message has 2"),
                         (dict(body=[["a"], [7]]), "finn: field 'ninc' must hold node names"),
                         (dict(params={"tasks": 1}), "finn: finn takes the parameters ['cost', 'tasks']; missing: ['cost']"),
                         (dict(params={"tasks": 1, "cost": 1.0, "x": 1}), "finn: finn takes the parameters ['cost', 'tasks']; unknown: ['x']"),
                         (dict(params={"tasks": -1, "cost": 1.0}), "finn: finn parameter 'tasks' must be 0..100000, got -1"),
                         (dict(params={"tasks": 1, "cost": float("nan")}), "finn: finn parameter 'cost' must be a finite")):
        with pytest.raises(WireError) as err:
            wire.parse(wire.encode("wave", 0, **{**base, **change}))
        assert str(err.value).startswith(text), str(err.value)
    start = dict(wave="f", kind="finn", params={"tasks": 1}, timeout=1.0)
    assert wire.decode(wire.encode("wave.start", 0, id=1, **start))["params"] == {"tasks": 1}  # cost: the kind's default
    with pytest.raises(WireError, match=r"^wave.start: no wave kind 'nothing' is installed here$"):
        wire.decode(wire.encode("wave.start", 0, id=1, **{**start, "kind": "nothing"}))


# Fields with no bound beyond their type: every other field of the schema has a length, a
# count or a range checked at the edge (daemon/core/messages.py). Listed by hand.
# A wave's parameters and body are checked against its kind's bounds (daemon/core/wave.py).
UNBOUNDED = {("pong", "pid"), ("pong", "stats"), ("error", "text"),
             ("wave.start", "params"), ("wave.decided", "stream"),
             ("wave", "body"), ("wave", "params"), ("ack", "accepted"),
             ("trace", "incarnation"), ("trace", "dropped"), ("trace", "steps"),
             ("balance.watch", "on")}


def test_which_fields_have_bounds_checked():
    """``_bounded`` runs once, at import, to build the checks: pinned here directly (a
    mutation run imports the module before it switches a mutant on)."""
    for kind, spec in wire.SCHEMA.items():
        for field, want in spec.items():
            assert wire._bounded(field, want) == ((kind, field) not in UNBOUNDED), (kind, field)
    assert {(k, f) for k, checks in wire._CHECKS.items() for f, _, bound in checks if bound is None} == UNBOUNDED


def test_each_field_takes_exactly_its_types():
    """``_exact_types`` runs once, at import, to build the checks: pinned here directly
    (as ``_bounded`` above). msgpack gives exact types, so the check is a set lookup."""
    assert wire._exact_types(int) == frozenset({int})
    assert wire._exact_types(bytes) == frozenset({bytes})
    assert wire._exact_types((int, float)) == frozenset({int, float})
    for kind, spec in wire.SCHEMA.items():
        assert [(f, types) for f, types, _ in wire._CHECKS[kind]] == [(f, wire._exact_types(w)) for f, w in spec.items()]


# --- wire: entry streams past the frame size ---------------------------------------------------


def test_an_entry_stream_larger_than_a_frame_is_refused():
    big = wire.pack_entries([("n", None, {"pad": "x" * (wire.MAX_FRAME // 2)})] * 2)
    assert len(big) > wire.MAX_FRAME
    with pytest.raises(WireError, match=r"^echo: entries are not a msgpack stream: BufferFull$"):
        wire.unpack_entries(big)


def test_a_bad_stream_names_msgpack_s_error():
    with pytest.raises(WireError, match=r"^echo: entries are not a msgpack stream: FormatError$"):
        wire.unpack_entries(b"\xc1")


# --- wire: length limits, at the limit and one past it -----------------------------------


def test_a_text_field_may_hold_max_text_characters_and_no_more():
    assert MAX_TEXT == 256
    ok = wire.decode(wire.encode("submit", 0, id=1, tasks=1, cost=1.0, label="x" * MAX_TEXT))
    assert ok["label"] == "x" * 256
    with pytest.raises(WireError, match=r"^submit: field 'label' is longer than 256 characters$"):
        wire.decode(wire.encode("submit", 0, id=1, tasks=1, cost=1.0, label="x" * (MAX_TEXT + 1)))


def test_a_list_field_may_hold_its_limit_of_items_and_no_more():
    assert MAX_WAVE_TAGS == 4096
    ok = wire.decode(wire.encode("forget", 0, move_id="m", waves=["w"] * MAX_WAVE_TAGS))
    assert len(ok["waves"]) == 4096
    with pytest.raises(WireError, match=r"^forget: field 'waves' has 4097 items, more than 4096$"):
        wire.decode(wire.encode("forget", 0, move_id="m", waves=["w"] * (MAX_WAVE_TAGS + 1)))
    # another list, another limit: the task ids a submit answers with
    assert len(wire.decode(wire.encode("submit.ok", 0, id=1, ids=[0] * MAX_TASKS))["ids"]) == 100_000
    with pytest.raises(WireError, match=r"^submit\.ok: field 'ids' has 100001 items, more than 100000$"):
        wire.decode(wire.encode("submit.ok", 0, id=1, ids=[0] * (MAX_TASKS + 1)))


def test_a_bytes_field_may_hold_max_text_bytes_and_no_more():
    def finn(report):  # a Finn message: its report travels in the wave frame (no finn.start carries one now)
        return wire.encode("wave", 0, wave="w", msg="finn", body=[[], []], params={"tasks": 1, "cost": 1.0},
                           budget=None, report=report)

    ok = wire.decode(finn(b"r" * MAX_TEXT))
    assert ok["report"] == b"r" * 256
    with pytest.raises(WireError, match=r"^finn: field 'report' is longer than 256 bytes$"):
        wire.decode(finn(b"r" * (MAX_TEXT + 1)))


def test_a_task_count_is_0_to_max_tasks_in_every_field_that_carries_one():
    def submit(tasks):
        return wire.decode(wire.encode("submit", 0, id=1, tasks=tasks, cost=1.0, label="l"))

    def move(count):
        return wire.decode(wire.encode("move", 0, id=1, move_id="m", dest="d", tasks=[], count=count))

    assert submit(0)["tasks"] == 0 and submit(MAX_TASKS)["tasks"] == 100_000
    assert move(0)["count"] == 0 and move(MAX_TASKS)["count"] == 100_000
    with pytest.raises(WireError, match=r"^submit: field 'tasks' must be 0\.\.100000, got 100001$"):
        submit(MAX_TASKS + 1)
    with pytest.raises(WireError, match=r"^submit: field 'tasks' must be 0\.\.100000, got -1$"):
        submit(-1)
    with pytest.raises(WireError, match=r"^move: field 'count' must be 0\.\.100000, got 100001$"):
        move(MAX_TASKS + 1)
    with pytest.raises(WireError, match=r"^move: field 'count' must be 0\.\.100000, got -1$"):
        move(-1)


def test_a_number_with_a_range_is_above_its_low_end_and_at_most_its_high_end():
    def submit(cost):
        return wire.decode(wire.encode("submit", 0, id=1, tasks=1, cost=cost, label="l"))

    assert submit(86_400.0)["cost"] == 86_400.0 and submit(1e-9)["cost"] == 1e-9 and submit(5)["cost"] == 5
    for cost in (0.0, 86_400.5, -1.0):
        with pytest.raises(WireError, match=rf"^submit: field 'cost' must be in \(0, 86400\], got {cost!r}$"):
            submit(cost)
    budget = wire.encode("wave", 0, wave="w", msg="explore", body=[], params={"detail": True}, budget=-3600, report=b"")
    with pytest.raises(WireError, match=r"^explore: field 'budget' must be in \(-3600, 3600\], got -3600$"):
        wire.decode(budget)


def test_a_float_must_be_finite_even_where_its_range_would_admit_infinity():
    # expires' range is (0, inf]: only the finiteness check refuses inf there
    frame = wire.encode("transfer", 0, move_id="m", tasks=[], expires=float("inf"), waves=[])
    with pytest.raises(WireError, match=r"^transfer: field 'expires' must be finite, got inf$"):
        wire.decode(frame)
    with pytest.raises(WireError, match=r"^submit: field 'cost' must be finite, got nan$"):
        wire.decode(wire.encode("submit", 0, id=1, tasks=1, cost=float("nan"), label="l"))
    assert wire.decode(wire.encode("transfer", 0, move_id="m", tasks=[], expires=1e300, waves=[]))["expires"] == 1e300


# --- wave ids -----------------------------------------------------------------------------


def test_a_wave_id_carries_a_start_time_of_up_to_20_hex_digits():
    assert wave_started("echo-" + "f" * 20 + "-salt") == 16**20 - 1
    assert wave_started("echo-" + "f" * 21 + "-salt") is None
    assert wave_started("echo-" + "0" * 21 + "-salt") is None  # the width counts, not the value
