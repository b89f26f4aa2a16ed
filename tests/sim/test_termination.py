"""The termination detector (daemon/core/termination.py) against the truth the simulator
keeps (daemon/sim/termination.py): never a detection while work that entered before the
final round is queued, running or moving; a detection within three rounds once the work
is over; and every broken variant below caught by those same checks."""

from __future__ import annotations

import pytest

from daemon.core.termination import Termination, Token
from daemon.core.wave import Graph, Work
from daemon.sim.termination import Config, simulate
from daemon.sim.wave import simulate_wave

# name -> (config, seeds): each fault the simulator has, alone and together
CONFIGS = {
    "plain": (Config(), 150),
    "thirty nodes": (Config(nodes=30, submits=60), 20),
    "drops and duplicates": (Config(drop=0.1, dup=0.1), 100),
    "cut links (take-backs, the two-generals case)": (Config(cuts=4, move_every=0.15), 100),
    "crashes": (Config(crashes=3), 100),
    "adversary, slow links": (Config(nodes=6, delay=(0.01, 0.2), cost=(0.02, 0.4), move_every=0.05, submits=40,
                                     adversary=True, extra_waves=10), 50),
    "clocks apart by up to 0.9 s (the bound is the hand-off's grace, 1 s)": (
        Config(nodes=6, delay=(0.01, 0.3), cost=(0.02, 0.4), move_every=0.05, submits=40, adversary=True, cuts=3,
               drop=0.05, clock_offset=0.9), 100),
    "everything": (Config(nodes=12, drop=0.05, dup=0.05, cuts=3, crashes=3, adversary=True, extra_waves=5), 50),
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_no_false_detection_and_detection_comes(name):
    cfg, seeds = CONFIGS[name]
    totals = dict(detections=0, take_backs=0, duplicated=0, lost=0, excused=0)
    for seed in range(seeds):
        r = simulate(seed, cfg)
        assert not r.violations, f"seed {seed} ({name}): {r.violations[:3]}"
        totals["detections"] += r.detections
        totals["take_backs"] += r.take_backs
        totals["duplicated"] += r.duplicated_tasks
        totals["lost"] += sum(1 for d in r.decisions if d[3].get("reason") == "lost")
        totals["excused"] += r.excused
    assert totals["detections"] >= seeds  # every run ends in one, quiet spells add more
    # the faults really happened (else the configuration tests nothing)
    if cfg.cuts:
        assert totals["take_backs"] and totals["duplicated"], totals
    if cfg.crashes:
        assert totals["lost"], totals


# --- broken detectors: each must be caught -------------------------------------------


class NoBlacken(Termination):
    """Busy moments between two passes of the token are not remembered."""

    def _look(self):
        w = self.node.work()
        self._counts = (w.sent, w.received)
        return w.idle


class FreshWhite(Termination):
    """A new instance vouches for the time before it existed."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.black = False


class NoPickupOnWayBack(Termination):
    """The token passing a node again on its way back does not take its colour."""

    def _on_token(self, sender, msg):
        if self._visited(msg.visited, self.node.me) and (msg.round, msg.hop) > self._last:
            self.black = False
        super()._on_token(sender, msg)


class InitiatorColourIgnored(Termination):
    """The initiator announces without looking at its own colour."""

    def _on_token(self, sender, msg):
        if self.initiator:
            self.black = False
        super()._on_token(sender, msg)

    def _round_over(self, token):
        self.black = False
        super()._round_over(token)


def idle_ignores_moves(board, sent, received):
    """The node calls itself idle while a move of its own is unanswered."""
    return Work(not board.running and not board.queue_length, sent, received)


# a star a-{b, e} with e-c: the token goes a, b, a, e, c, e, a; every hop 10 ms
STAR = dict(edges=(("a", "b"), ("a", "e"), ("e", "c")), cpus_of=dict(a=1, b=1, c=1, e=1), initiator="a",
            submits=0, move_every=1e9, delay=(0.01, 0.01), start=(0.1, 0.1))
SCENARIOS = {
    # round 1 (0.10-0.16 s): c, not visited yet, hands its queued task to b, which the
    # token has left for good, and is idle (ACK back) when the token comes at 0.14 s
    "c hides its work at b before its first visit": Config(
        **STAR, script=(("submit", 0.0, "c", (0.12, 1.0)), ("move", 0.111, "c", "b", 1))),
    # round 2 (0.16-0.22 s): the initiator gets work after it last passed the token on
    # (0.18 s), hands it to b and is idle again when the token comes home
    "the initiator hides its work at b at the end": Config(
        **STAR, script=(("submit", 0.181, "a", (0.02, 1.0)), ("move", 0.182, "a", "b", 1))),
    # round 2: e gets work after the token left it for c (0.19 s) and before it passes
    # back (0.21 s)
    "e gets work between the token's two passes": Config(**STAR, script=(("submit", 0.195, "e", (1.0,)),)),
}
ADVERSARY = Config(nodes=6, delay=(0.01, 0.2), cost=(0.02, 0.4), move_every=0.05, submits=40, adversary=True,
                   extra_waves=10)
MISTAKES = [
    (NoBlacken, None, ADVERSARY, range(40)),
    (NoBlacken, None, SCENARIOS["the initiator hides its work at b at the end"], [0]),
    (FreshWhite, None, SCENARIOS["c hides its work at b before its first visit"], [0]),
    (NoPickupOnWayBack, None, SCENARIOS["e gets work between the token's two passes"], [0]),
    (InitiatorColourIgnored, None, SCENARIOS["the initiator hides its work at b at the end"], [0]),
    (Termination, idle_ignores_moves, Config(nodes=6, delay=(0.01, 0.2), cost=(0.02, 0.4), move_every=0.05,
                                             submits=40, adversary=True, cuts=3), range(60)),
]


@pytest.mark.parametrize("kind,work,cfg,seeds", MISTAKES,
                         ids=lambda x: getattr(x, "__name__", None) if callable(x) else None)
def test_a_broken_detector_is_caught(kind, work, cfg, seeds):
    options = {"work": work} if work else {}
    for seed in seeds:
        r = simulate(seed, cfg, kind, **options)
        if any(v.startswith("false detection") for v in r.violations):
            return
    pytest.fail(f"{kind.__name__}{' with ' + work.__name__ if work else ''}: no false detection found")


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_the_scenarios_pass_with_the_right_detector(name):
    r = simulate(0, SCENARIOS[name])
    assert not r.violations, r.violations
    assert r.decisions[0][3]["terminated"] is True and r.decisions[0][3]["rounds"] >= 3


# --- what a run costs, and the fault answers ---------------------------------------------


def test_an_idle_cluster_takes_two_rounds_of_2_n_minus_1_hops():
    for seed in range(20):
        cfg = Config(nodes=3 + seed % 10, submits=0, move_every=1e9, submit_until=0.0)
        r = simulate(seed, cfg)
        assert not r.violations, r.violations
        first = r.decisions[0]
        assert first[3] == {"terminated": True, "rounds": 2, "failed": 1}, first
        assert r.hops_by_wave[first[2]] == 2 * 2 * (cfg.nodes - 1)


def test_a_dead_node_is_named_and_nothing_is_detected():
    cfg = Config(**{**STAR, "start": (0.5, 0.5)}, script=(("submit", 0.0, "c", (3.0,)), ("crash", 0.2, "c")))
    r = simulate(0, Config(**{**cfg.__dict__, "horizon": 30.0}))
    assert r.decisions, "no decision"
    assert all(d[3]["terminated"] is False for d in r.decisions), r.decisions
    assert r.decisions[0][3]["reason"] == "lost" and r.decisions[0][3]["node"] == "c", r.decisions[0]


def test_a_restarted_node_is_named_then_a_new_wave_detects():
    cfg = Config(**STAR, script=(("submit", 0.0, "c", (0.3,)), ("crash", 0.12, "c"), ("restart", 1.0, "c")))
    r = simulate(0, cfg)
    assert not r.violations, r.violations
    assert r.decisions[0][3]["reason"] == "lost" and r.decisions[0][3]["node"] == "c", r.decisions
    assert any(d[3]["terminated"] for d in r.decisions[1:])


def test_refuses_a_disconnected_topology_and_runs_on_a_directed_chain():
    assert Termination.refuse(Graph(("a", "b", "c"), (("a", "b"),))) == (
        "not connected: c cannot be reached from a even ignoring the edges' direction (the token visits every node)")
    assert Termination.refuse(Graph(("a", "b", "c"), (("b", "a"), ("c", "b")))) is None
    assert Termination.refuse(Graph((), ())) == "the topology has no nodes"


def test_in_the_generic_wave_harness():
    """The kind under daemon/sim/wave.py's checks (bounds, neighbours, containment,
    check()): an idle network, duplicates on, exactly one decision."""
    import random

    for seed in range(60):
        rng = random.Random(seed)
        n = rng.randint(2, 14)
        names = tuple(f"v{i}" for i in range(n))
        edges = [(names[rng.randrange(i)], names[i]) for i in range(1, n)]
        g = Graph(names, tuple(edges))
        r = simulate_wave(Termination, g, seed=seed, dup=0.2)
        assert not r.violations, (seed, r.violations)
        assert r.run.decisions == [(names[0], {"terminated": True, "rounds": 2, "failed": 1})]
        # without duplicates (each answered again): per round 2(N-1) token hops, each
        # answered twice (taken, passed on), and no resends
        r = simulate_wave(Termination, g, seed=seed)
        assert r.run.messages == 2 * 3 * 2 * (n - 1), (seed, r.run.per_channel)


def test_the_token_of_a_thousand_nodes_is_small():
    from daemon.core.termination import MAX_NODES

    nodes = frozenset(f"node-{i:04d}" for i in range(1000))
    visited = bytes(len(nodes) // 8 + 1)
    assert len(visited) == 126
    assert len(visited) <= Termination.messages[0].fields["visited"].limit
    assert MAX_NODES // 8 + 1 == Termination.messages[0].fields["visited"].limit
    assert Token("w", 1, 0, visited, [0], False).visited == visited


# --- inside the real node core, under the chaos simulator's faults ------------------------


@pytest.mark.parametrize("long_partitions", [False, True], ids=["chaos", "long partitions"])
def test_inside_node_cores_under_chaos(long_partitions):
    """daemon/sim/chaos.py with termination waves: real NodeCores, the wire, crashes (some
    mid-step), restarts, stalls, clock steps, losses, duplicates, partitions; every
    announcement judged by the truth at its moment, and a last wave over the quiet
    network that must detect."""
    import dataclasses
    import glob

    from daemon.sim.chaos import LONG_PARTITIONS, ChaosConfig, simulate_chaos
    from daemon.topology import load

    cfg = dataclasses.replace(LONG_PARTITIONS if long_partitions else ChaosConfig(), termination=4)
    seeds = 15 if long_partitions else 40
    detected = lost = 0
    for path in sorted(glob.glob("topologies/chaos/*.toml")):
        topology = load(path)
        for seed in range(seeds):
            r = simulate_chaos(topology, seed, cfg)
            assert r["ok"], f"ctl sim chaos {path} --seed {seed} (termination=4): {r['problems'][:3]}"
            detected += r["termination"]["detected"]
            lost += r["termination"]["lost"]
    assert detected > 4 * seeds and lost  # mid-run detections besides the last ones, and lost tokens
