"""A node's initial tasks (the topology's ``tasks``; ``NodeCore.enqueue``): named by
node, incarnation and sequence, journaled before anything else happens, started on the
node's free slots at once."""

from __future__ import annotations

from daemon.core.journal import MemoryJournal, Put
from daemon.core.node import NodeConfig, NodeCore, Persist, SetBusy
from tests.node.hostile import EPOCH, NOW, SEED


def test_enqueue_journals_names_and_starts_the_initial_tasks():
    name = "subserviate"
    cpus = SEED.node(name).cpus
    core = NodeCore(NodeConfig.of(SEED, name), EPOCH, NOW)
    effects = core.enqueue(cpus + 2, 3.0, "initial", NOW)
    kinds = [type(e) for e in effects]
    assert kinds.count(Persist) >= 1 and SetBusy(cpus) in effects
    journal = MemoryJournal()
    puts = []
    for e in effects:
        if type(e) is Persist:
            journal.apply(e.records)
            puts += [r for r in e.records if type(r) is Put]
    incarnation = f"{EPOCH % 1_000_000_007:x}"
    ids = [t.id for r in puts for t in r.tasks]
    assert ids == [f"{name}:{incarnation}:{k}" for k in range(1, cpus + 3)]
    assert all(t.label == "initial" and t.cost == 3.0 for r in puts for t in r.tasks)
    board = core.board
    assert len(board.running) == cpus and len(board.queued) == 2 and board.submitted == cpus + 2
    # more later continue the sequence; the journal replays to the same queue
    more = core.enqueue(1, 1.0, "initial", NOW + 1)
    for e in more:
        if type(e) is Persist:
            journal.apply(e.records)
    assert [t.id for t in board.queued][-1] == f"{name}:{incarnation}:{cpus + 3}"
    assert SetBusy(cpus) not in more  # the slots were busy already: nothing to say
    state = journal.state()  # a crash now: every task is in the journal, running ones too
    assert sorted(t.id for t in state.queue) == sorted([t.id for t in board.queued] + [t.id for t, _ in board.running.values()])
    assert state.submitted == cpus + 3
