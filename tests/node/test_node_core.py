"""The node core's exact answers (daemon/core/node.py), pinned on hand-worked inputs.

What each kind of message yields, effect by effect: the error code and text an operator
is told (and that a node is told nothing), the counters, a pong, a submit's ids, a Finn
decision's tasks, label, start time and report, an echo's explores, budgets, sample,
give-up and result, the Lai-Yang tags and the closing of waves older than a peer's
restart, the hand-off's transfers, acks, forgets and refusals; what housekeeping resends,
takes back and forgets, and when (RESEND_EVERY, WAVE_TTL, DONE_WAVE_MEMORY,
MAX_DONE_WAVES, MAX_REMEMBERED_MOVES); the clock held when it steps back; the
boundaries (epoch and MAX_SKEW inclusive, MAX_WAVES, 256-character texts, costs in
(0, MAX_COST]); node_epoch, ready_at and listing_limit. Each test states one rule; the inputs
are small enough to work out by hand on the seed tree
(root -> affixed -> tubularia -> subserviate -> pical; subserviate has 2 cpus)."""

from __future__ import annotations

import pytest

from daemon.core import messages as m
from daemon.core import node as node_module
from daemon.core.journal import MemoryJournal
from daemon.core.node import (
    MAX_SKEW,
    MAX_WAVES,
    SETTLE,
    STALLED,
    STATS,
    NodeConfig,
    NodeCore,
    Persist,
    Reconnect,
    Reply,
    Send,
    SetBusy,
    MAX_CLOCK_OFFSET,
    listing_limit,
    node_epoch,
    ready_at,
)
from daemon.core.waves import WaveError, new_wave_id
from tests.node.hostile import EPOCH, NOW, SEED
from tests import wavemsgs as W

OP = b"op-1"
INCARNATION = f"{EPOCH % 1_000_000_007:x}"


def node(name: str = "subserviate", pid: int = 0, **options) -> NodeCore:
    return NodeCore(NodeConfig.of(SEED, name, pid), EPOCH, NOW, **options)


def wave(kind: str = "e", k: int = 0, at: int | None = None) -> str:
    return new_wave_id(kind, int(NOW * 1e9) + k if at is None else at, f"p{k}")


def replies(effects: list) -> list:
    return [e for e in effects if type(e) is Reply]


def sends(effects: list) -> list:
    return [e for e in effects if type(e) is Send]


# --- node_epoch and ready_at ------------------------------------------------------------


def test_the_clock_offset_bound_is_half_a_second():
    assert MAX_CLOCK_OFFSET == 0.5
    assert node_epoch(100.0, 0, True) == 100_500_000_000 and ready_at(100_000_000_000) == 100.5


def test_a_restart_epoch_is_the_clock_plus_the_bound_in_nanoseconds():
    assert node_epoch(100.0, 0, True, 0.5) == 100_500_000_000


def test_a_first_epoch_is_the_clock_less_the_bound_in_nanoseconds():
    assert node_epoch(100.0, 0, False, 0.5) == 99_500_000_000


def test_an_epoch_is_one_past_a_later_previous_epoch():
    assert node_epoch(100.0, 10**12, True, 0.5) == 10**12 + 1
    assert node_epoch(100.0, 10**12, False, 0.5) == 10**12 + 1


def test_a_node_is_ready_once_its_clock_is_the_bound_past_its_epoch():
    assert ready_at(node_epoch(100.0, 0, False, 0.5), 0.5) == 100.0  # a first start: at once
    assert ready_at(node_epoch(100.0, 0, True, 0.5), 0.5) == 101.0  # a restart: twice the bound later
    assert ready_at(10**12 + 1, 0.25) == 10**12 / 1e9 + 1e-9 + 0.25


BOUND = 0.5  # the clocks of the operators and of the node differ by at most this


def test_a_restarted_node_refuses_a_wave_its_previous_incarnation_may_have_joined():
    """Restarted when its clock says 100, it may have died just before: a wave it joined
    then was begun by a clock at most BOUND ahead, stamped before 100 + BOUND."""
    core = NodeCore(NodeConfig.of(SEED, "subserviate"), node_epoch(100.0, 0, True, BOUND), 100.0)
    joined = wave(at=int((100.0 + BOUND) * 1e9) - 1)
    effects = core.handle(OP, 0, W.EchoStart(joined, False, 1.0), 100.0)
    assert [type(r.msg) for r in replies(effects)] == [m.Error] and core.stats["stale"] == 1


def test_a_restarted_node_once_ready_joins_a_wave_of_an_operator_whose_clock_is_behind():
    epoch = node_epoch(100.0, 0, True, BOUND)
    ready = ready_at(epoch, BOUND)
    core = NodeCore(NodeConfig.of(SEED, "subserviate"), epoch, 100.0)
    begun = wave(at=int((ready - BOUND) * 1e9))  # at once, by a clock BOUND behind the node's
    core.handle(OP, 0, W.EchoStart(begun, False, 1.0), ready)
    assert core.stats["stale"] == 0 and core.waves[begun].wave.joined


def test_a_first_started_node_joins_at_once_a_wave_of_an_operator_whose_clock_is_behind():
    epoch = node_epoch(100.0, 0, False, BOUND)
    assert ready_at(epoch, BOUND) == 100.0
    core = NodeCore(NodeConfig.of(SEED, "subserviate"), epoch, 100.0)
    begun = wave(at=int((100.0 - BOUND) * 1e9))
    core.handle(OP, 0, W.EchoStart(begun, False, 1.0), 100.0)
    assert core.stats["stale"] == 0 and core.waves[begun].wave.joined


# --- ping ----------------------------------------------------------------------------


def test_a_ping_is_answered_to_its_sender_with_id_name_pid_and_a_copy_of_the_stats():
    core = node(pid=4242)
    effects = core.handle(OP, 0, m.Ping(7), NOW)
    assert len(effects) == 1 and type(effects[0]) is Reply
    reply = effects[0]
    assert reply.to == OP
    assert reply.msg == m.Pong(7, "subserviate", 4242, dict.fromkeys(STATS, 0) | {"received": 1}, [])
    assert type(reply.msg.stats) is dict and reply.msg.stats is not core.stats  # a copy


def test_a_pong_and_a_sample_name_the_refused_handshakes_the_driver_read():
    core = node(pid=4242)
    core.refused = [("pical", "subserviate")]
    pong = core.handle(OP, 0, m.Ping(7), NOW)[0].msg
    assert pong.refused == [["pical", "subserviate"]]
    assert core._sample(False, NOW)["refused"] == [["pical", "subserviate"]]
    core.refused = []
    assert "refused" not in core._sample(False, NOW)


# --- a wave's age ----------------------------------------------------------------------


def test_an_operator_is_told_a_wave_id_that_is_not_one_is_a_bad_wave():
    core = node()
    effects = core.handle(OP, 0, W.EchoStart("w", False, 1.0), NOW)
    assert effects == [Reply(OP, m.Error("bad-wave", "subserviate: 'w' is not a wave id", id=0))]
    assert core.stats["wave_errors"] == 1 and not core.waves


def test_an_operator_is_told_a_wave_older_than_the_node_is_stale():
    core = node()
    old = wave(at=EPOCH - 1)
    effects = core.handle(OP, 0, W.EchoStart(old, False, 1.0), NOW)
    assert effects == [Reply(OP, m.Error("stale", f"subserviate: wave {old} began before this node started", id=0))]
    assert core.stats["stale"] == 1 and not core.waves


def test_a_wave_begun_at_the_nodes_very_epoch_is_joined():
    core = node()
    w = wave(at=EPOCH)
    core.handle(OP, 0, W.EchoStart(w, False, 1.0), NOW)
    assert core.stats["stale"] == 0 and core.waves[w].wave.joined


def test_a_wave_begun_more_than_max_skew_ahead_is_refused_and_max_skew_itself_is_not():
    core = node()
    edge = int((NOW + MAX_SKEW) * 1e9)
    assert edge == (NOW + MAX_SKEW) * 1e9  # exact: the boundary is tested, not a rounding
    late = wave(at=edge + 1)
    effects = core.handle(OP, 0, W.EchoStart(late, False, 1.0), NOW)
    assert effects == [Reply(OP, m.Error("bad-wave", f"subserviate: wave {late} begins in the future", id=0))]
    core.handle(OP, 0, W.EchoStart(wave(at=edge), False, 1.0), NOW)
    assert core.stats["wave_errors"] == 1 and wave(at=edge) in core.waves


# --- Finn ------------------------------------------------------------------------------


def test_a_finn_start_past_max_waves_is_refused_as_busy_with_a_reason():
    core = node()
    for k in range(MAX_WAVES):
        core.handle(OP, 0, W.FinnStart(wave("f", k), 0, 1.0, OP), NOW)
    assert len(core.waves) == MAX_WAVES
    effects = core.handle(OP, 0, W.FinnStart(wave("f", MAX_WAVES), 0, 1.0, OP), NOW)
    assert effects == [Reply(OP, m.Error("busy", f"subserviate: {MAX_WAVES} waves in progress; try again later", id=0))]
    assert core.stats["refused"] == 1


@pytest.mark.parametrize(("inc", "ninc"), [(["nobody"], []), ([], ["nobody"]), (["root", "nobody"], ["root"])])
def test_finn_sets_naming_a_node_outside_the_cluster_are_a_wave_error(inc, ninc):
    core = node()
    effects = core.handle(b"tubularia", EPOCH, W.Finn(wave("f"), inc, ninc, 1, 1.0, OP), NOW)
    assert effects == [] and core.stats["wave_errors"] == 1 and not core.waves


def test_finn_sets_naming_cluster_nodes_are_merged():
    core = node()
    w = wave("f")
    effects = core.handle(b"tubularia", EPOCH, W.Finn(w, ["root"], ["root"], 1, 1.0, OP), NOW)
    assert core.stats["wave_errors"] == 0
    assert core.waves[w].wave.inc == {"root", "subserviate"}
    assert [e.dest for e in sends(effects)] == ["pical"]


def test_a_finn_decision_enqueues_labelled_tasks_and_reports_them_to_the_report_id():
    """root (no in-neighbour, 4 cpus) decides as it initiates: it sends its sets to its
    two children and enqueues the wave's tasks, labelled with the wave."""
    core = node("root")
    w = wave("f")
    report = b"reporter"
    effects = core.handle(report, 0, W.FinnStart(w, 2, 1.5, report), NOW)  # the sender is the report id
    ids = [f"root:{INCARNATION}:1", f"root:{INCARNATION}:2"]
    assert replies(effects) == [Reply(report, W.FinnDecided(w, "root", 2, ids))]
    assert sorted(e.dest for e in sends(effects)) == ["affixed", "outwhirled"]
    assert all(e.msg == W.Finn(w, frozenset({"root"}), frozenset({"root"}), 2, 1.5, report) for e in sends(effects))
    running = list(core.board.running.values())
    assert [(t.id, t.label, t.cost, at) for t, at in running] == [(i, f"finn {w}", 1.5, NOW) for i in ids]


def finn_decision_while_busy(via_start: bool) -> NodeCore:
    """A node runs one 1 s task per cpu from NOW; at NOW + 0.5 a Finn decision (root's
    as it initiates, or subserviate's on its father's sets) enqueues one more 1 s task:
    it is queued behind them and takes the first slot that frees, at NOW + 1 — not the
    time the board is next looked at."""
    core = node() if not via_start else node("root")
    busy = core.config.cpus
    core.handle(OP, 0, m.Submit(busy, 1.0, "x"), NOW)
    w = wave("f")
    if via_start:
        effects = core.handle(OP, 0, W.FinnStart(w, 1, 1.0, OP), NOW + 0.5)
    else:
        effects = core.handle(b"tubularia", EPOCH, W.Finn(w, ["root", "affixed", "tubularia"],
                                                          ["root", "affixed", "tubularia"], 1, 1.0, OP), NOW + 0.5)
    assert [W.is_finn_decided(r.msg) for r in replies(effects)] == [True]
    assert core.stats["internal"] == 0, core.last_internal
    core.tick(NOW + 1.5)
    return core


@pytest.mark.parametrize("via_start", [True, False])
def test_a_finn_decision_on_a_busy_node_queues_its_tasks_at_the_decision_time(via_start):
    core = finn_decision_while_busy(via_start)
    starts = sorted((t.label, at) for t, at in core.board.running.values() if t.label.startswith("finn"))
    assert starts == [(f"finn {wave('f')}", NOW + 1.0)]


# --- the configuration and a fresh node --------------------------------------------------


@pytest.mark.parametrize(("nodes", "limit"), [(0, 256), (1, 256), (8, 256), (512, 256), (513, 255),
                                              (1000, 131), (131_072, 1), (10**6, 1)])
def test_listing_limit_shares_sixteen_mib_among_the_nodes_at_128_bytes_a_task(nodes, limit):
    assert listing_limit(nodes) == limit and type(listing_limit(nodes)) is int


def test_a_node_config_of_a_topology_names_its_links_and_every_node():
    config = NodeConfig.of(SEED, "subserviate", 9)
    assert config == NodeConfig("subserviate", 2, ("tubularia",), ("pical",), frozenset(SEED.names), 9)
    assert NodeConfig.of(SEED, "root").pid == 0


def test_a_fresh_node_has_counted_nothing_closed_nothing_and_is_due_at_once():
    core = node()
    assert core.stats == dict.fromkeys(STATS, 0)
    assert (core.closed_before, core.last_internal, core.cpu_percent) == (0, "", None)
    assert core.neighbours == ("tubularia", "pical")
    assert core.next_deadline() == NOW
    assert core.tick(NOW) == []  # nothing runs: no SetBusy(0) to say


def test_a_neighbour_that_is_both_parent_and_child_is_one_neighbour():
    config = NodeConfig("a", 1, ("b",), ("b",), frozenset({"a", "b"}))
    assert NodeCore(config, EPOCH, NOW).neighbours == ("b",)


def test_the_detail_limit_defaults_to_the_clusters_listing_limit_and_is_kept_when_given():
    assert node().detail_limit == 256
    big = NodeConfig("n0", 1, (), (), frozenset(f"n{k}" for k in range(1000)))
    assert NodeCore(big, EPOCH, NOW).detail_limit == 131
    assert node(detail_limit=None).detail_limit is None
    assert node(detail_limit=5).detail_limit == 5


def test_a_node_journals_by_default_and_not_when_told():
    effects = node().handle(OP, 0, m.Submit(1, 1.0, "x"), NOW)
    assert [type(e) for e in effects] == [Persist, Reply, SetBusy]
    assert [type(e) for e in node(journaled=False).handle(OP, 0, m.Submit(1, 1.0, "x"), NOW)] == [Reply, SetBusy]


def test_a_node_recovered_from_its_journal_has_the_board_it_had():
    first = node()
    journal = MemoryJournal()
    for e in first.handle(OP, 0, m.Submit(3, 2.0, "x"), NOW):
        if type(e) is Persist:
            journal.apply(e.records)
    again = NodeCore(NodeConfig.of(SEED, "subserviate"), EPOCH + 1, NOW + 1, recovered=journal.state())
    assert [t.id for t in again.board.queued] == [t.id for t in journal.state().queue]
    assert again.board.submitted == 3 and again.board.memory == 600.0
    effects = again.tick(NOW + 1)
    assert SetBusy(2) in effects
    effects = again.handle(b"pical", EPOCH, m.Transfer("m1", [["t1", "x", 1.0]], NOW + 5, []), NOW + 1)
    assert sends(effects) == [Send("pical", m.Ack("m1", True, []))]  # addressed to this node: taken


# --- submit, and what handle() does with every message -------------------------------------


def test_a_submit_journals_answers_with_the_ids_and_starts_the_tasks_at_once():
    core = node()
    effects = core.handle(OP, 0, m.Submit(3, 2.0, ""), NOW)
    ids = [f"subserviate:{INCARNATION}:{k}" for k in (1, 2, 3)]
    assert [type(e) for e in effects] == [Persist, Reply, SetBusy]
    assert effects[1:] == [Reply(OP, m.SubmitOk(ids)), SetBusy(2)]
    assert [(t.id, t.label, t.cost) for t in core.board.queued] == [(ids[2], "submitted", 2.0)]
    assert [at for _, at in core.board.running.values()] == [NOW, NOW]


@pytest.mark.parametrize(("tasks", "ok"), [(0, False), (-3, False), (1, True)])
def test_a_submit_of_fewer_than_one_task_is_refused(tasks, ok):
    core = node()
    effects = core.handle(OP, 0, m.Submit(tasks, 1.0, "x"), NOW)
    if ok:
        assert replies(effects) == [Reply(OP, m.SubmitOk([f"subserviate:{INCARNATION}:1"]))]
    else:
        assert effects == [Reply(OP, m.Error("bad-submit", f"subserviate: tasks must be 1..100000, got {tasks}", id=0))]
        assert core.stats["refused"] == 1 and core.board.submitted == 0


def test_every_message_is_counted_as_received():
    core = node()
    core.handle(OP, 0, m.Ping(1), NOW)
    core.handle(b"tubularia", 0, m.Forget("x", []), NOW)  # refused (epoch 0), still received
    effects = core.handle(OP, 0, m.Ping(2), NOW)
    assert effects[0].msg.stats["received"] == 3 and effects[0].msg.stats["refused"] == 1


def test_an_operator_may_not_send_node_messages():
    core = node()
    effects = core.handle(OP, 0, W.Explore(wave(), False, 1.0), NOW)
    assert effects == [Reply(OP, m.Error("not-a-node", "subserviate: only nodes of the cluster send 'explore'"))]
    assert core.stats["refused"] == 1 and not core.waves


def test_an_operator_sending_what_is_no_message_at_all_is_told_its_type():
    core = node()
    effects = core.handle(OP, 0, "junk", NOW)
    assert effects == [Reply(OP, m.Error("not-a-node", "subserviate: only nodes of the cluster send 'str'"))]


def test_a_node_may_not_send_operator_requests_and_is_not_answered():
    core = node()
    assert core.handle(b"tubularia", EPOCH, m.Submit(1, 1.0, "x"), NOW) == []
    assert core.stats["refused"] == 1 and core.board.submitted == 0 and core.sender_epochs == {}


def test_the_nodes_own_name_as_a_routing_id_is_an_operator():
    core = node()
    effects = core.handle(b"subserviate", 0, m.Ping(3), NOW)
    assert [(r.to, r.msg.id) for r in replies(effects)] == [(b"subserviate", 3)]


def test_a_wave_error_raised_for_an_operator_is_answered_as_rejected(monkeypatch):
    def bad(self, sender, msg, now):
        raise WaveError("no such step")

    monkeypatch.setitem(NodeCore._HANDLERS, m.Ping, bad)
    core = node()
    assert core.handle(OP, 0, m.Ping(1), NOW) == [Reply(OP, m.Error("rejected", "no such step", id=1))]
    assert core.stats["wave_errors"] == 1 and core.stats["internal"] == 0


def test_any_other_exception_is_contained_counted_and_answered_as_internal(monkeypatch):
    def bad(self, sender, msg, now):
        raise RuntimeError("x" * 400)

    monkeypatch.setitem(NodeCore._HANDLERS, m.Ping, bad)
    core = node()
    effects = core.handle(OP, 0, m.Ping(1), NOW)
    text = ("RuntimeError: " + "x" * 400)[:300]
    assert core.last_internal == text and len(text) == 300
    assert effects == [Reply(OP, m.Error("internal", f"subserviate: {text}", id=1))]
    assert core.stats["internal"] == 1
    core.handle(OP, 0, m.Ping(2), NOW)
    assert core.stats["internal"] == 2
    monkeypatch.setitem(NodeCore._HANDLERS, m.Forget, bad)
    assert core.handle(b"tubularia", EPOCH, m.Forget("x", []), NOW) == []  # a node's: counted, not answered
    assert core.stats["internal"] == 3


def test_handle_counts_a_refusal_once():
    core = node()
    core.handle(OP, 0, m.Submit(0, 1.0, "x"), NOW)
    core.handle(OP, 0, m.Submit(0, 1.0, "x"), NOW)
    assert core.stats["refused"] == 2


# --- a sender's epoch ----------------------------------------------------------------------


def test_a_node_epoch_must_be_positive_and_at_most_max_skew_ahead():
    core = node()
    edge = int((NOW + MAX_SKEW) * 1e9)
    for epoch in (0, -1, edge + 1):
        core.handle(b"pical", epoch, m.Forget("x", []), NOW)
    assert core.stats["refused"] == 3 and core.sender_epochs == {}
    core.handle(b"pical", 1, m.Forget("x", []), NOW)
    assert core.sender_epochs == {"pical": 1}
    core.handle(b"pical", edge, m.Forget("x", []), NOW)
    assert core.sender_epochs == {"pical": edge} and core.stats["refused"] == 3


# --- echo: a node that joins, echoes, or gives up ------------------------------------------

S = [f"subserviate:{INCARNATION}:{k}" for k in (1, 2, 3)]


def busy_node(**options) -> NodeCore:
    """subserviate (2 cpus, pid 77, 12.5 % cpu) with three 2 s tasks submitted at NOW:
    S[0] and S[1] run, S[2] is queued."""
    core = node(pid=77, **options)
    core.cpu_percent = 12.5
    core.handle(OP, 0, m.Submit(3, 2.0, "x"), NOW)
    return core


def test_a_node_joins_on_its_fathers_explore_and_explores_the_rest_with_the_budget_less_the_margin():
    core = busy_node()
    w = wave()
    effects = core.handle(b"tubularia", EPOCH, W.Explore(w, True, 3.0), NOW + 0.5)
    assert effects == [Send("pical", W.Explore(w, True, 2.8125))]  # 3 - 3/16
    rec = core.waves[w]
    assert (rec.deadline, rec.params["detail"], rec.seen, rec.report) == (NOW + 3.5, True, NOW + 0.5, None)


def test_a_node_echoes_to_its_father_its_sample_taken_as_it_joined_then_its_childs_entries():
    core = busy_node()
    w = wave()
    core.handle(b"tubularia", EPOCH, W.Explore(w, True, 3.0), NOW + 0.5)
    effects = core.handle(b"pical", EPOCH, W.Echo(w, b"P"), NOW + 1.0)
    assert len(effects) == 1 and effects[0].dest == "tubularia" and W.is_echo(effects[0].msg)
    (me, father, state), child = W.entries(effects[0].msg)
    assert effects[0].msg.wave == w and (me, father, child) == ("subserviate", "tubularia", b"P")
    assert (state["cpus"], state["pid"], state["cpu_percent"], state["sent"]) == (2, 77, 12.5, 2)
    assert (state["running"], state["queued"], state["submitted"]) == (2, 1, 3)
    assert state["running_tasks"] == [(S[0], 1.5), (S[1], 1.5)]  # sampled at NOW + 0.5
    assert state["queued_tasks"] == [(S[2], 2.0)] and "missing" not in state
    assert w not in core.waves and dict(core.done_waves) == {w: NOW + 1.0}
    assert core.handle(b"pical", EPOCH, W.Echo(w, b"P"), NOW + 1.1) == [] and core.stats["late"] == 1
    assert core.handle(b"pical", EPOCH, W.Echo(w, b"P"), NOW + 1.2) == [] and core.stats["late"] == 2


def test_a_sample_lists_the_queue_only_up_to_the_detail_limit():
    core = busy_node(detail_limit=0)
    w = wave()
    core.handle(b"tubularia", EPOCH, W.Explore(w, True, 3.0), NOW + 0.5)
    state = core.waves[w].wave.state
    assert "running_tasks" in state and "queued_tasks" not in state


def test_a_sample_without_detail_has_counts_only():
    core = busy_node()
    w = wave()
    core.handle(b"tubularia", EPOCH, W.Explore(w, False, 3.0), NOW + 0.5)
    state = core.waves[w].wave.state
    assert state["queued"] == 1 and "running_tasks" not in state and "queued_tasks" not in state


def test_at_its_deadline_a_node_echoes_what_it_has_names_the_silent_and_reconnects_to_them():
    core = node()
    w = wave()
    assert core.handle(b"tubularia", EPOCH, W.Explore(w, False, 1.0), NOW) == [Send("pical", W.Explore(w, False, 0.9375))]
    assert core.tick(NOW + 0.999) == []
    effects = core.tick(NOW + 1.0)
    # the node reopens its link to the silent child and asks it to reopen its own
    assert len(effects) == 3 and effects[1:] == [Reconnect("pical"), Send("pical", m.Relink())]
    assert effects[0].dest == "tubularia" and effects[0].msg.wave == w
    ((me, father, state),) = W.entries(effects[0].msg)
    assert (me, father, state["missing"], state["sent"]) == ("subserviate", "tubularia", ["pical"], 2)
    assert w in core.done_waves and w not in core.waves
    assert core.tick(NOW + 2.0) == []  # once


def test_a_relink_from_a_node_reopens_the_link_to_it_at_most_once_a_second():
    """A RELINK says its sender gave up on this node at a wave's deadline: this node's
    link to it may be dead (its name taken over at the sender's inbox), and as the
    sender's child in that wave it would never give up on it and reopen it by itself."""
    core = node()
    assert core.handle(b"tubularia", EPOCH, m.Relink(), NOW) == [Reconnect("tubularia")]
    # a flood of them, forged or not, cannot keep the link closing
    assert core.handle(b"tubularia", EPOCH, m.Relink(), NOW + 0.5) == []
    assert core.handle(b"pical", EPOCH, m.Relink(), NOW + 0.5) == [Reconnect("pical")]
    assert core.handle(b"tubularia", EPOCH, m.Relink(), NOW + 1.0) == [Reconnect("tubularia")]
    # an operator's is refused like any node message from one
    (reply,) = core.handle(b"op", 1, m.Relink(), NOW + 5.0)
    assert type(reply) is Reply and reply.msg.code == "not-a-node"
    assert core.stats["refused"] == 1 and core.stats["internal"] == 0


@pytest.mark.parametrize(("budget", "passed_on", "deadline"), [(0.5, 0.45, NOW + 0.5), (-1.0, 0.0, NOW)])
def test_an_explores_budget_sets_the_deadline_and_a_spent_one_is_no_time_at_all(budget, passed_on, deadline):
    core = node()
    w = wave()
    assert core.handle(b"tubularia", EPOCH, W.Explore(w, False, budget), NOW) == [Send("pical", W.Explore(w, False, passed_on))]
    assert core.waves[w].deadline == deadline
    effects = core.tick(deadline)
    assert [W.is_echo(e.msg) for e in sends(effects) if e.msg != m.Relink()] == [True] and Reconnect("pical") in effects


def test_an_explore_from_a_node_that_is_not_a_neighbour_is_a_wave_error():
    core = node()
    assert core.handle(b"root", EPOCH, W.Explore(wave(), False, 1.0), NOW) == []
    assert core.handle(b"root", EPOCH, W.Echo(wave(), b"x"), NOW) == []
    assert core.stats["wave_errors"] == 2 and not core.waves


def test_an_echo_for_a_wave_never_joined_is_late():
    core = node()
    assert core.handle(b"pical", EPOCH, W.Echo(wave(), b"x"), NOW) == []
    assert core.stats["late"] == 1 and core.stats["wave_errors"] == 0


def test_an_echo_refreshes_its_waves_record():
    core = node()
    w = wave()
    core.handle(OP, 0, W.EchoStart(w, False, 100.0), NOW)
    core.handle(b"pical", EPOCH, W.Echo(w, b"P"), NOW + 50)
    assert core.waves[w].seen == NOW + 50


def test_the_initiator_explores_every_neighbour_and_answers_the_operator_when_all_echoed():
    core = node()
    w = wave()
    effects = core.handle(OP, 0, W.EchoStart(w, False, 2.0), NOW)
    assert effects == [Send("tubularia", W.Explore(w, False, 1.875, OP)), Send("pical", W.Explore(w, False, 1.875, OP))]
    assert core.waves[w].report == OP and core.waves[w].deadline == NOW + 2.0
    assert core.handle(b"tubularia", EPOCH, W.Echo(w, b"T"), NOW + 0.1) == []
    effects = core.handle(b"pical", EPOCH, W.Echo(w, b"P"), NOW + 0.2)
    assert len(effects) == 1 and effects[0].to == OP and W.is_echo_result(effects[0].msg)
    (me, father, state), t, p = W.entries(effects[0].msg)
    assert effects[0].msg.wave == w and (me, father, t, p) == ("subserviate", None, b"T", b"P")
    assert state["sent"] == 2 and "missing" not in state and "running_tasks" not in state
    assert dict(core.done_waves) == {w: NOW + 0.2}


def test_the_initiator_answers_at_its_deadline_with_what_came():
    core = node()
    w = wave()
    core.handle(OP, 0, W.EchoStart(w, True, 1.0), NOW)
    core.handle(b"tubularia", EPOCH, W.Echo(w, b"T"), NOW + 0.5)
    effects = core.tick(NOW + 1.0)
    assert len(effects) == 3 and effects[0].to == OP and effects[1:] == [Reconnect("pical"), Send("pical", m.Relink())]
    (me, father, state), t = W.entries(effects[0].msg)
    assert (me, father, t, state["missing"], state["sent"]) == ("subserviate", None, b"T", ["pical"], 2)
    assert "queued_tasks" in state


def test_an_echo_start_for_a_wave_that_reached_the_node_is_a_duplicate():
    core = node()
    w = wave()
    core.handle(b"tubularia", EPOCH, W.Explore(w, False, 1.0), NOW)
    effects = core.handle(OP, 0, W.EchoStart(w, False, 1.0), NOW)
    assert effects == [Reply(OP, m.Error("duplicate", f"wave {w} already reached subserviate", id=0))]
    core.tick(NOW + 1.0)  # finished: remembered as done
    assert core.handle(OP, 0, W.EchoStart(w, False, 1.0), NOW + 1) == [Reply(OP, m.Error("duplicate", f"wave {w} already reached subserviate", id=0))]
    assert core.stats["wave_errors"] == 2


def test_an_echo_start_past_max_waves_is_refused_as_busy():
    core = node()
    for k in range(MAX_WAVES):
        core.handle(OP, 0, W.FinnStart(wave("f", k), 0, 1.0, OP), NOW)
    w = wave()
    assert core.handle(OP, 0, W.EchoStart(w, False, 1.0), NOW) == [
        Reply(OP, m.Error("busy", f"subserviate: {MAX_WAVES} waves in progress; try again later", id=0))]
    assert core.stats["refused"] == 1 and w not in core.waves


def test_one_wave_short_of_max_waves_an_echo_is_still_joined():
    core = node()
    for k in range(MAX_WAVES - 1):
        core.handle(OP, 0, W.FinnStart(wave("f", k), 0, 1.0, OP), NOW)
    core.handle(OP, 0, W.EchoStart(wave(), False, 1.0), NOW)
    assert wave() in core.waves and core.stats["refused"] == 0


def test_next_deadline_is_the_earliest_of_housekeeping_a_task_end_and_an_echo_deadline():
    core = node()
    core.tick(NOW)  # housekeeping done: due again at NOW + 0.5
    assert core.next_deadline() == NOW + 0.5
    w = wave()
    core.handle(b"tubularia", EPOCH, W.Explore(w, False, 0.375), NOW)
    assert core.next_deadline() == NOW + 0.375
    core.handle(OP, 0, m.Submit(1, 0.25, "x"), NOW)
    assert core.next_deadline() == NOW + 0.25


# --- a peer's restart closes older waves; Lai-Yang tags -------------------------------------

RESTART = EPOCH + 5 * 10**9  # pical started again 5 s after this node


def test_a_peers_restart_closes_the_echo_waves_begun_before_it():
    core = node()
    core.handle(b"pical", RESTART, m.Forget("none", []), NOW)
    assert core.closed_before == RESTART
    old, edge = wave(at=RESTART - 1), wave(at=RESTART)
    assert core.handle(OP, 0, W.EchoStart(old, False, 1.0), NOW) == [
        Reply(OP, m.Error("closed", f"subserviate: wave {old} is older than a peer's restart", id=0))]
    assert old in core.done_waves and old not in core.waves
    core.handle(OP, 0, W.EchoStart(edge, False, 1.0), NOW)
    assert core.waves[edge].wave.joined
    assert core.handle(b"tubularia", EPOCH, W.Explore(old, False, 1.0), NOW) == []  # closed: late
    assert core.handle(b"pical", EPOCH, W.Explore(old, False, 1.0), NOW) == []
    assert core.stats["late"] == 2 and core.stats["wave_errors"] == 1
    core.tick(NOW + 0.5)  # remembered as closed at NOW, like a finished wave
    assert core.done_waves[old] == NOW


def test_a_wave_begun_at_time_zero_is_older_than_a_peer_restarted_at_one_nanosecond():
    core = NodeCore(NodeConfig.of(SEED, "subserviate"), 0, NOW)  # a node as old as time
    core.handle(b"pical", 1, m.Forget("none", []), NOW)
    assert core.closed_before == 1
    w = new_wave_id("e", 0, "origin")
    assert core.handle(OP, 0, W.EchoStart(w, False, 1.0), NOW) == [
        Reply(OP, m.Error("closed", f"subserviate: wave {w} is older than a peer's restart", id=0))]


@pytest.mark.parametrize("kind", ["transfer", "ack", "forget"])
def test_every_hand_off_message_carries_its_senders_restart(kind):
    core = node()
    msg = {"transfer": m.Transfer("t", [["t1", "x", 1.0]], NOW + 5, []),
           "ack": m.Ack("a", False, []), "forget": m.Forget("f", [])}[kind]
    core.handle(b"pical", RESTART, msg, NOW)
    assert core.closed_before == RESTART


def test_a_forged_epoch_closes_at_most_the_waves_already_under_way_and_closing_never_goes_back():
    core = node()
    core.handle(b"pical", int((NOW + 100) * 1e9), m.Forget("none", []), NOW)
    assert core.closed_before == int(NOW * 1e9)
    core.handle(b"pical", RESTART, m.Forget("none", []), NOW)
    assert core.closed_before == int(NOW * 1e9)


def test_a_hand_off_message_makes_the_receiver_sample_the_waves_its_sender_sampled_first():
    """pical has sampled wave w, then sends a task: subserviate samples w before taking it,
    so its later echo does not count the task (pical's sample does)."""
    core = node()
    w = wave()
    effects = core.handle(b"pical", EPOCH, m.Transfer("m1", [["t1", "moved", 1.0]], NOW + 5, [w]), NOW)
    assert [type(e) for e in effects] == [SetBusy, Persist, Send]
    assert effects[0] == SetBusy(1) and effects[2] == Send("pical", m.Ack("m1", True, [w]))
    rec = core.waves[w]
    assert rec.wave.sampled and not rec.wave.joined and rec.deadline is None
    assert (rec.wave.state["submitted"], rec.wave.state["queued"], rec.wave.state["running"]) == (0, 0, 0)
    assert rec.wave.state["queued_tasks"] == [] and rec.wave.state["running_tasks"] == []
    assert rec.wave.state["sent"] == 0  # nothing sent in this wave yet
    core.handle(b"tubularia", EPOCH, W.Explore(w, False, 2.0), NOW + 0.1)
    effects = core.handle(b"pical", EPOCH, W.Echo(w, b"P"), NOW + 0.2)
    (me, father, state), _ = W.entries(effects[0].msg)
    assert (me, father) == ("subserviate", "tubularia")
    assert state is rec.wave.state and state["running"] == 0 and state["sent"] == 2


def test_the_tags_of_a_hand_off_are_the_sampled_waves_then_the_finished_ones():
    core = node()
    w1, w2, w3 = wave(k=1), wave(k=2), wave(k=3)
    core.handle(b"tubularia", EPOCH, W.Explore(w1, False, 1.0), NOW)  # joined: sampled
    core.handle(OP, 0, W.FinnStart(wave("f"), 0, 1.0, OP), NOW)  # not an echo wave
    core.handle(b"tubularia", EPOCH, W.Explore(w2, False, 0.0), NOW)
    core.tick(NOW)  # w2 gives up at once: finished
    effects = core.handle(b"pical", EPOCH, m.Transfer("m1", [["t1", "x", 1.0]], NOW + 5, [w3]), NOW)
    assert sends(effects) == [Send("pical", m.Ack("m1", True, [w1, w3, w2]))]


def test_tags_that_are_not_wave_ids_of_this_incarnation_sample_nothing():
    core = node()
    done = wave(k=9)
    core.handle(b"tubularia", EPOCH, W.Explore(done, False, 0.0), NOW)
    core.tick(NOW)
    assert done in core.done_waves
    w = wave(at=EPOCH)  # begun as this node started: still this incarnation's
    tags = ["w", wave(at=EPOCH - 1), done, w]
    effects = core.handle(b"pical", 1, m.Forget("none", tags), NOW)
    assert effects == [] and set(core.waves) == {w} and core.waves[w].wave.sampled
    assert list(core.done_waves) == [done] and core.stats["garbage"] == 0


@pytest.mark.parametrize(("tag", "garbage"), [(123, 1), ("e-1-" + "x" * 253, 1), ("e-1-" + "x" * 252, 0)])
def test_a_tag_that_is_not_a_string_of_at_most_256_characters_is_garbage(tag, garbage):
    core = node()
    core.handle(b"pical", EPOCH, m.Forget("none", [tag]), NOW)
    assert core.stats["garbage"] == garbage


def test_a_tag_past_max_waves_closes_its_wave_instead_and_the_rest_are_still_handled():
    core = node()
    for k in range(MAX_WAVES):
        core.handle(OP, 0, W.FinnStart(wave("f", k), 0, 1.0, OP), NOW)
    w1, w2 = wave(k=1), wave(k=2)
    core.handle(b"pical", EPOCH, m.Forget("none", [w1, w2]), NOW + 1)
    assert dict(core.done_waves) == {w1: NOW + 1, w2: NOW + 1} and not {w1, w2} & set(core.waves)  # no echo record
    assert core.stats["refused"] == 0


# --- the hand-off: receiving tasks ------------------------------------------------------------


def transfer_to(core: NodeCore, items: list, expires: float = NOW + 5, move_id: str = "m1", at: float = NOW) -> list:
    return core.handle(b"pical", EPOCH, m.Transfer(move_id, items, expires, []), at)


def test_an_accepted_transfer_queues_the_tasks_as_sent_and_is_acked():
    core = node()
    effects = transfer_to(core, [["a", "la", 1], ["b", "lb", 0.5], ["c", "lc", 86_400.0]])
    assert sends(effects) == [Send("pical", m.Ack("m1", True, []))]
    tasks = [t for t, _ in core.board.running.values()] + list(core.board.queued)
    assert [(t.id, t.label, t.cost, type(t.cost)) for t in tasks] == [
        ("a", "la", 1.0, float), ("b", "lb", 0.5, float), ("c", "lc", 86_400.0, float)]
    assert core.board.unconfirmed() == [("m1", "pical")] and core.stats["refused_transfers"] == 0


@pytest.mark.parametrize("items", [
    [("a", "l", 1.0)], [["a", "l"]], [["a", "l", 1.0, 1]], [[1, "l", 1.0]], [["a", None, 1.0]],
    [["a" * 257, "l", 1.0]], [["a", "l" * 257, 1.0]], [["a", "l", "1"]], [["a", "l", True]],
    [["a", "l", float("nan")]], [["a", "l", float("inf")]], [["a", "l", 0]], [["a", "l", -1.0]],
    [["a", "l", 86_400.5]], [["a", "l", 1.0], ["a", "l", 2.0]], [["a", "l", 1.0], "b"],
])
def test_a_transfer_with_any_task_that_is_not_a_distinct_id_label_cost_triple_is_garbage(items):
    core = node()
    assert transfer_to(core, items) == []
    assert core.stats["garbage"] == 1 and core.board.submitted == 0 and not core.board.answered("m1")


def test_a_transfer_of_texts_of_exactly_256_characters_is_taken():
    core = node()
    transfer_to(core, [["a" * 256, "l" * 256, 1.0]])
    assert core.stats["garbage"] == 0 and core.board.answered("m1")


def test_a_transfer_that_expired_is_refused_remembered_and_acked_false():
    core = node()
    effects = transfer_to(core, [["a", "l", 1.0]], expires=NOW - 1)
    assert sends(effects) == [Send("pical", m.Ack("m1", False, []))]
    assert core.stats["refused_transfers"] == 1 and core.board.answered("m1") and core.board.busy_slots() == 0
    transfer_to(core, [["a", "l", 1.0]], expires=NOW - 1, move_id="m2")
    assert core.stats["refused_transfers"] == 2


@pytest.mark.parametrize(("expires", "plausible"), [(NOW + MAX_SKEW, True), (NOW + MAX_SKEW + 1, False),
                                                    (NOW - MAX_SKEW - 1, False)])
def test_a_transfer_expiring_more_than_max_skew_away_is_refused_without_being_remembered(expires, plausible):
    core = node()
    effects = transfer_to(core, [["a", "l", 1.0]], expires=expires)
    assert sends(effects) == [Send("pical", m.Ack("m1", plausible, []))]
    assert core.board.answered("m1") == plausible
    transfer_to(core, [["a", "l", 1.0]], expires=expires, move_id="m2")
    assert core.stats["refused_transfers"] == (0 if plausible else 2)


def test_past_max_remembered_moves_new_transfers_are_refused_and_known_ones_answered_again(monkeypatch):
    monkeypatch.setattr(node_module, "MAX_REMEMBERED_MOVES", 2)
    core = node()
    transfer_to(core, [["a", "l", 1.0]], move_id="m1")
    assert core.board.remembered == 1
    transfer_to(core, [["b", "l", 1.0]], move_id="m2")  # one short of the limit: remembered
    effects = transfer_to(core, [["c", "l", 1.0]], move_id="m3")
    assert sends(effects) == [Send("pical", m.Ack("m3", False, []))]
    assert not core.board.answered("m3") and core.stats["refused_transfers"] == 1
    effects = transfer_to(core, [["a", "l", 1.0]], move_id="m1")  # a copy: answered as before
    assert sends(effects) == [Send("pical", m.Ack("m1", True, []))]
    assert sorted(t.id for t, _ in core.board.running.values()) == ["a", "b"] and len(core.board.queued) == 0


# --- the hand-off: giving tasks --------------------------------------------------------------


def test_a_move_by_ids_sends_the_queued_ones_and_tells_the_operator_which():
    core = busy_node()
    effects = core.handle(OP, 0, m.Move("mv", "pical", [S[2], S[0], 5, "nope"], 0), NOW + 0.25)
    assert [type(e) for e in effects] == [Persist, Send, Reply]
    assert effects[1:] == [Send("pical", m.Transfer("mv", [[S[2], "x", 2.0]], NOW + 0.25 + 5.0, [])),
                           Reply(OP, m.MoveOk("mv", [S[2]], 1))]


def test_a_move_by_count_sends_the_tail_and_tells_the_operator_how_many():
    core = busy_node()
    core.handle(OP, 0, m.Submit(1, 3.0, "y"), NOW)
    effects = core.handle(OP, 0, m.Move("mv", "root", [], 1), NOW)
    tail = f"subserviate:{INCARNATION}:4"
    assert effects[1:] == [Send("root", m.Transfer("mv", [[tail, "y", 3.0]], NOW + 5.0, [])),
                           Reply(OP, m.MoveOk("mv", [], 1))]
    assert [t.id for t in core.board.queued] == [S[2]]


def test_a_move_of_nothing_queued_sends_nothing():
    core = busy_node()
    effects = core.handle(OP, 0, m.Move("mv", "pical", [S[0], "nope"], 0), NOW)
    assert effects == [Reply(OP, m.MoveOk("mv", [], 0))]


@pytest.mark.parametrize("dest", ["nobody", "subserviate"])
def test_a_move_to_a_node_outside_the_cluster_or_to_itself_is_refused(dest):
    core = busy_node()
    effects = core.handle(OP, 0, m.Move("mv", dest, [S[2]], 0), NOW)
    assert effects == [Reply(OP, m.Error("bad-move", f"subserviate: cannot move tasks to {dest!r}", id=0))]
    assert core.stats["refused"] == 1 and len(core.board.queued) == 1


def moved() -> NodeCore:
    core = busy_node()
    core.handle(OP, 0, m.Move("mv", "pical", [S[2]], 0), NOW)
    return core


def test_an_ack_from_the_destination_is_answered_with_a_forget_and_again_with_a_reconnect():
    core = moved()
    effects = core.handle(b"pical", EPOCH, m.Ack("mv", True, []), NOW + 0.1)
    assert [type(e) for e in effects] == [Persist, Send] and effects[1] == Send("pical", m.Forget("mv", []))
    assert core.board.leaving == []
    assert core.handle(b"pical", EPOCH, m.Ack("mv", True, []), NOW + 0.2) == [
        Reconnect("pical"), Send("pical", m.Forget("mv", []))]


def test_an_ack_from_another_node_changes_nothing_but_is_forgotten_there():
    core = moved()
    effects = core.handle(b"tubularia", EPOCH, m.Ack("mv", True, []), NOW + 0.1)
    assert effects == [Reconnect("tubularia"), Send("tubularia", m.Forget("mv", []))]
    assert [tr.move_id for tr in core.board.leaving] == ["mv"]


def test_a_refusing_ack_leaves_the_tasks_leaving_until_the_deadline():
    core = moved()
    assert core.handle(b"pical", EPOCH, m.Ack("mv", False, []), NOW + 0.1) == []
    assert [tr.move_id for tr in core.board.leaving] == ["mv"]


def test_a_forget_from_the_donor_confirms_the_move_and_one_from_another_node_does_not():
    core = node()
    transfer_to(core, [["a", "l", 1.0]])
    core.handle(b"tubularia", EPOCH, m.Forget("m1", []), NOW)
    assert core.board.unconfirmed() == [("m1", "pical")]
    core.handle(b"pical", EPOCH, m.Forget("m1", []), NOW)
    assert core.board.unconfirmed() == []


# --- housekeeping -------------------------------------------------------------------------


def test_an_unacknowledged_transfer_is_resent_every_half_second_and_taken_back_after_its_grace():
    core = moved()
    transfer = Send("pical", m.Transfer("mv", [[S[2], "x", 2.0]], NOW + 5.0, []))
    assert sends(core.tick(NOW + 0.4)) == []  # housekeeping: sent 0.4 s ago
    assert sends(core.tick(NOW + 1.0)) == [transfer]
    assert sends(core.tick(NOW + 1.2)) == []  # housekeeping not due before NOW + 1.5
    assert sends(core.tick(NOW + 1.5)) == [transfer]
    for k in range(4, 13):  # a running daemon's housekeeping, every half second
        core.tick(NOW + k / 2)
    # NOW + 6.0 is expires + 1 s of grace: not yet
    assert [tr.move_id for tr in core.board.leaving] == ["mv"]
    core.tick(NOW + 6.5)  # back: it runs on a slot freed at NOW + 2
    assert core.board.leaving == [] and [(t.id, at) for t, at in core.board.running.values()] == [(S[2], NOW + 6.5)]


def test_a_late_ack_of_a_move_taken_back_takes_its_queued_tasks_out_again():
    """Every ACK was held up past the deadline (the destination was stopped right after it
    accepted): the donor took S[2] back to the front of its queue, both slots still busy
    until NOW + 2... here until NOW + 8, so it is still queued when the ACK comes. It
    leaves again (journaled) and FORGET answers; the ACK is no repeat, so no Reconnect."""
    core = node(pid=77)
    core.handle(OP, 0, m.Submit(3, 8.0, "x"), NOW)
    core.handle(OP, 0, m.Move("mv", "pical", [S[2]], 0), NOW)
    for k in range(1, 14):
        core.tick(NOW + k / 2)
    assert core.board.leaving == [] and [t.id for t in core.board.queued] == [S[2]]  # taken back
    effects = core.handle(b"pical", EPOCH, m.Ack("mv", True, []), NOW + 6.8)
    assert [type(e) for e in effects] == [Persist, Send] and effects[1] == Send("pical", m.Forget("mv", []))
    assert [type(r).__name__ for r in effects[0].records] == ["Leave", "Acked"]
    assert list(core.board.queued) == [] and core.board.leaving == []
    # once more: a repeat, nothing to take (FORGET and a Reconnect, as for any repeat)
    assert core.handle(b"pical", EPOCH, m.Ack("mv", True, []), NOW + 6.9) == [
        Reconnect("pical"), Send("pical", m.Forget("mv", []))]


def test_a_late_ack_leaves_a_task_that_started_before_it_came_running():
    """Both slots free at NOW + 6.6; S[2], taken back at NOW + 6.5, starts then. The late
    ACK at NOW + 6.8 finds it running, not queued: it runs at both (the two generals'
    case), and nothing is journaled as leaving."""
    core = node(pid=77)
    core.handle(OP, 0, m.Submit(3, 6.6, "x"), NOW)
    core.handle(OP, 0, m.Move("mv", "pical", [S[2]], 0), NOW)
    for k in range(1, 14):
        core.tick(NOW + k / 2)
    assert [t.id for t in core.board.queued] == [S[2]]  # taken back at NOW + 6.5
    effects = core.handle(b"pical", EPOCH, m.Ack("mv", True, []), NOW + 6.8)
    assert Send("pical", m.Forget("mv", [])) in effects and Reconnect("pical") not in effects
    assert not any(type(r).__name__ == "Leave" for e in effects if type(e) is Persist for r in e.records)
    assert [(t.id, at) for t, at in core.board.running.values()] == [(S[2], NOW + 6.6)]


def test_a_donor_that_did_not_run_past_the_deadline_reads_the_ack_before_taking_back():
    """Stopped (SIGSTOP) from NOW + 0.5 to NOW + 7: the destination's ACK came meanwhile
    and waits in the inbox; the driver's first step is the overdue tick. Taking back then
    would run the task twice; the core waits SETTLE, and the ACK read next ends the move."""
    core = moved()
    core.tick(NOW + 0.5)
    core.tick(NOW + 7.0)  # past expires + grace, but the node has just come back
    assert [tr.move_id for tr in core.board.leaving] == ["mv"]
    effects = core.handle(b"pical", EPOCH, m.Ack("mv", True, []), NOW + 7.01)
    assert Send("pical", m.Forget("mv", [])) in effects and core.board.leaving == []
    core.tick(NOW + 9.0)
    assert S[2] not in [t.id for t in core.board.queued] + [t.id for t, _ in core.board.running.values()]


def test_a_donor_restarted_past_the_deadline_resends_and_hears_the_ack_before_taking_back():
    """Killed after sending, restarted 8 s later: the ACK of before went to the dead
    process. The restarted core resends at once and takes nothing back for SETTLE, so the
    destination's repeated answer ends the move."""
    journal = MemoryJournal()
    first = busy_node()
    for e in first.handle(OP, 0, m.Move("mv", "pical", [S[2]], 0), NOW):
        if type(e) is Persist:
            journal.apply(e.records)
    again = NodeCore(NodeConfig.of(SEED, "subserviate"), EPOCH + 1, NOW + 8, recovered=journal.state())
    assert [s.msg.move_id for s in sends(again.tick(NOW + 8)) if type(s.msg) is m.Transfer] == ["mv"]
    assert [tr.move_id for tr in again.board.leaving] == ["mv"]
    again.handle(b"pical", EPOCH, m.Ack("mv", True, []), NOW + 8.01)
    again.tick(NOW + 8 + SETTLE)
    assert again.board.leaving == [] and S[2] not in [t.id for t in again.board.queued]


def test_after_a_gap_without_an_ack_the_take_back_comes_settle_seconds_later():
    core = moved()
    core.tick(NOW + 0.5)
    core.tick(NOW + 7.0)  # a gap of STALLED or more: settle until NOW + 7 + SETTLE
    core.tick(NOW + 7.5)
    assert [tr.move_id for tr in core.board.leaving] == ["mv"]
    core.tick(NOW + 7.0 + SETTLE)
    assert core.board.leaving == []
    # a gap of STALLED, not more, is a running node's: the take-back is not put off
    core = moved()
    for k in range(1, 12):
        core.tick(NOW + k / 2)
    assert NOW + 5.5 + STALLED - (NOW + 5.5) == STALLED  # exactly, in floating point
    core.tick(NOW + 5.5 + STALLED)
    assert core.board.leaving == []


def test_an_accepted_move_is_acked_again_at_each_housekeeping_until_its_forget():
    core = node()
    transfer_to(core, [["a", "l", 1.0]])
    ack = Send("pical", m.Ack("m1", True, []))
    assert sends(core.tick(NOW)) == [ack]  # housekeeping is due at once
    assert sends(core.tick(NOW + 0.25)) == []
    assert sends(core.tick(NOW + 0.5)) == [ack]
    core.handle(b"pical", EPOCH, m.Forget("m1", []), NOW + 0.6)
    assert sends(core.tick(NOW + 1.0)) == []


def test_a_wave_silent_for_more_than_a_minute_is_forgotten():
    core = node()
    f, e = wave("f"), wave(k=1)
    core.handle(OP, 0, W.FinnStart(f, 0, 1.0, OP), NOW)  # subserviate waits for tubularia
    core.handle(b"pical", EPOCH, m.Forget("none", [e]), NOW)  # sampled, never joined
    core.tick(NOW + 60.0)
    assert f in core.waves and e in core.waves
    core.tick(NOW + 60.5)
    assert f not in core.waves and e not in core.waves


def test_a_finished_wave_is_remembered_for_a_minute():
    core = node()
    w = wave()
    core.handle(b"tubularia", EPOCH, W.Explore(w, False, 0.0), NOW)
    core.tick(NOW)
    assert dict(core.done_waves) == {w: NOW}
    core.tick(NOW + 60.0)
    assert w in core.done_waves
    core.tick(NOW + 60.5)
    assert w not in core.done_waves


def test_past_max_done_waves_the_oldest_finished_waves_are_forgotten_first(monkeypatch):
    monkeypatch.setattr(node_module, "MAX_DONE_WAVES", 2)
    core = node()
    core.tick(NOW)
    ws = [wave(k=k) for k in (1, 2, 3)]
    for w in ws:
        core.handle(b"tubularia", EPOCH, W.Explore(w, False, 0.0), NOW + 0.1)
    core.tick(NOW + 0.1)  # all three give up; housekeeping is not due yet
    assert list(core.done_waves) == ws
    core.tick(NOW + 0.5)
    assert list(core.done_waves) == ws[1:]


# --- time ---------------------------------------------------------------------------------


def test_a_clock_that_steps_back_is_held_and_the_deadline_given_on_the_drivers_clock():
    core = node()
    core.handle(OP, 0, m.Submit(1, 1.0, "x"), NOW)
    core.tick(NOW)
    assert core.next_deadline() == NOW + 0.5
    assert core.tick(NOW - 10) == []  # held at NOW
    assert core.next_deadline() == NOW + 0.5 - 10
    assert core.board.done == 0
    assert core.tick(NOW - 9.25) == []  # NOW + 0.75 on the core's clock
    assert core.board.done == 0
    assert [e for e in core.tick(NOW - 9.0) if type(e) is not Persist] == [SetBusy(0)]  # NOW + 1: it ends
    assert core.board.done == 1


def test_a_clock_that_steps_back_twice_is_held_by_both_steps():
    core = node()
    core.tick(NOW)  # housekeeping due again at NOW + 0.5
    core.tick(NOW - 10)
    core.tick(NOW - 11)  # 1 s further back: held again
    assert core.next_deadline() == NOW + 0.5 - 11


def test_a_submit_on_a_busy_node_queues_its_tasks_at_the_submit_time():
    core = node()
    core.handle(OP, 0, m.Submit(2, 1.0, "x"), NOW)
    core.handle(OP, 0, m.Submit(1, 1.0, "late"), NOW + 0.5)
    core.tick(NOW + 1.5)
    assert [(t.label, at) for t, at in core.board.running.values() if t.label == "late"] == [("late", NOW + 1.0)]


def test_an_initiator_samples_its_running_tasks_at_the_start_and_its_wave_lives_until_the_deadline():
    core = busy_node()
    w = wave()
    core.handle(OP, 0, W.EchoStart(w, True, 2.0), NOW + 0.5)
    assert core.tick(NOW + 1.0) == [] and w in core.waves  # housekeeping with the wave live
    (reply,) = replies(core.tick(NOW + 2.5))
    ((me, father, state),) = W.entries(reply.msg)
    assert (me, father) == ("subserviate", None)
    assert state["running_tasks"] == [(S[0], 1.5), (S[1], 1.5)] and state["missing"] == ["tubularia", "pical"]


def test_a_hand_off_on_a_busy_node_samples_its_running_tasks_as_they_are_then():
    core = busy_node()
    w = wave()
    core.handle(b"pical", EPOCH, m.Forget("none", [w]), NOW + 0.5)
    assert core.waves[w].wave.state["running_tasks"] == [(S[0], 1.5), (S[1], 1.5)]


def test_a_wave_is_forgotten_a_minute_after_its_latest_message_not_its_first():
    core = node()
    e = wave()
    core.handle(b"pical", EPOCH, m.Forget("none", [e]), NOW)
    core.handle(b"pical", EPOCH, m.Forget("none", [e]), NOW + 30)
    core.tick(NOW + 60.5)
    assert e in core.waves
    core.tick(NOW + 90.5)
    assert e not in core.waves


# --- what a node tells of its last Finn wave and balancing round --------------------------


def sampled(core: NodeCore, at: float) -> dict:
    """The node's own entry in an echo wave an operator starts there."""
    w = wave(k=99)
    core.handle(OP, 0, W.EchoStart(w, False, 3.0), at)
    return core.waves[w].wave.state


def test_a_sample_tells_the_latest_started_finn_wave_decided_here():
    core = node("root")
    assert "last_finn" not in sampled(node("root"), NOW)
    late, early = wave("f", 2), wave("f", 1)
    core.handle(OP, 0, W.FinnStart(late, 2, 1.0, OP), NOW)
    core.handle(OP, 0, W.FinnStart(early, 1, 1.0, OP), NOW + 0.5)  # decided after, started before
    assert core.last_finn == [late, NOW, 2, 2]  # two sends: affixed, outwhirled
    assert sampled(core, NOW + 1)["last_finn"] == [late, NOW, 2, 2]


def test_a_sample_tells_the_moves_of_the_latest_started_round_each_way():
    r1, r2 = wave("m", 1), wave("m", 2)
    core = busy_node()
    core.handle(OP, 0, m.Submit(3, 2.0, "y"), NOW)  # queued: S[2] and three more
    core.handle(OP, 0, m.Move(f"{r2}-0", "pical", [], 1), NOW + 0.1)
    core.handle(OP, 0, m.Move(f"{r2}-3", "root", [], 2), NOW + 0.2)
    effects = core.handle(OP, 0, m.Move(f"{r1}-0", "root", [S[2]], 0), NOW + 0.3)
    assert Reply(OP, m.MoveOk(f"{r1}-0", [S[2]], 1)) in effects  # it left, in an older round: not counted
    transfer_to(core, [["a", "l", 1.0], ["b", "l", 1.0]], move_id=f"{r2}-5", at=NOW + 0.4)
    transfer_to(core, [["a", "l", 1.0], ["b", "l", 1.0]], move_id=f"{r2}-5", at=NOW + 0.5)  # a resend: once
    assert core.last_round == [r2, NOW + 0.4, 2, 3, 1, 2]
    assert sampled(core, NOW + 0.6)["last_round"] == [r2, NOW + 0.4, 2, 3, 1, 2]
    fresh = node()
    transfer_to(fresh, [["a", "l", 1.0]], move_id="m9", expires=NOW - 1)  # refused: no part in it
    assert fresh.last_round is None


def test_an_id_too_long_for_a_sample_is_not_kept():
    """A fact's id is bounded (messages.MAX_FACT_ID): an operator's longer ids are acted
    on but not told."""
    core = node("root")
    long_wave = new_wave_id("f", int(NOW * 1e9), "x" * m.MAX_FACT_ID)
    assert replies(core.handle(OP, 0, W.FinnStart(long_wave, 1, 1.0, OP), NOW))
    assert core.last_finn is None
    donor = busy_node()
    round_id = new_wave_id("m", int(NOW * 1e9), "x" * m.MAX_FACT_ID)
    assert Reply(OP, m.MoveOk(f"{round_id}-0", [S[2]], 1)) in donor.handle(OP, 0, m.Move(f"{round_id}-0", "pical", [S[2]], 0), NOW)
    assert donor.last_round is None
