"""The simulated network: seeded, reordering, duplicating, lossless; sub-seeds per concern."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from daemon.sim.network import DELIVER, DUPLICATE, START, Network
from daemon.sim.seeds import NETWORK_DELAYS, NETWORK_DUPLICATES, TOPOLOGY, subseed
from sim_graphs import profile


def drain(net):
    out = []
    while (event := net.next()) is not None:
        out.append(event)
    return out


def send_burst(net, count=200):
    for i in range(count):
        net.send("a", "b", i)


@given(seed=st.integers(0, 2**64), dup=st.sampled_from([0.0, 0.05, 0.5]))
@profile(200)
def test_every_send_arrives_once_plus_its_duplicates_in_time_order(seed, dup):
    net = Network(seed, dup=dup)
    send_burst(net, 50)
    events = drain(net)
    firsts = sorted(e[5] for e in events if e[2] == DELIVER)
    copies = [e for e in events if e[2] == DUPLICATE]
    assert firsts == list(range(50))  # no loss, no extra first delivery
    assert len(copies) == net.duplicates
    times = [e[0] for e in events]
    assert times == sorted(times)
    first_at = {e[5]: e[0] for e in events if e[2] == DELIVER}
    assert all(c[0] >= first_at[c[5]] for c in copies)  # a duplicate comes later
    assert net.in_flight == 0 and len(net) == 0


def test_one_channel_is_reordered():
    net = Network(1)
    send_burst(net)
    order = [e[5] for e in drain(net)]
    assert order != sorted(order)


def test_same_seed_same_schedule_other_seed_other_schedule():
    runs = []
    for seed in (7, 7, 8):
        net = Network(seed, dup=0.1)
        send_burst(net)
        runs.append([(e[0], e[2], e[5]) for e in drain(net)])
    assert runs[0] == runs[1] != runs[2]


def test_duplicates_leave_the_first_deliveries_alone():
    """Separate streams: turning duplicates on does not move any first delivery."""
    plain, noisy = Network(5, dup=0.0), Network(5, dup=0.4)
    send_burst(plain)
    send_burst(noisy)
    first = lambda events: [(e[0], e[5]) for e in events if e[2] == DELIVER]  # noqa: E731
    noisy_events = drain(noisy)
    assert first(drain(plain)) == first(noisy_events)
    assert 0 < noisy.duplicates < 200


def test_ties_break_by_scheduling_order():
    net = Network(0)
    for node in ("c", "a", "b"):
        net.start(0.0, node)
    assert [(e[2], e[4]) for e in drain(net)] == [(START, "c"), (START, "a"), (START, "b")]


def test_in_flight_counts_first_deliveries_only():
    net = Network(3, dup=0.99)
    net.send("a", "b", "x")
    assert (net.in_flight, len(net)) == (1, 2)
    assert net.next()[2] == DELIVER
    assert (net.in_flight, len(net)) == (0, 1)


@pytest.mark.parametrize("kwargs", [{"dup": 1.0}, {"dup": -0.1}, {"delay": (0.0, 1.0)}, {"delay": (2.0, 1.0)}])
def test_bad_parameters_raise(kwargs):
    with pytest.raises(ValueError):
        Network(0, **kwargs)


def test_subseeds_are_stable_and_separate():
    assert subseed(42, TOPOLOGY) == subseed(42, TOPOLOGY)
    assert len({subseed(42, c) for c in (TOPOLOGY, NETWORK_DELAYS, NETWORK_DUPLICATES)}) == 3
    assert subseed(42, TOPOLOGY) != subseed(43, TOPOLOGY)
    # Fixed across Python versions and processes (SHA-256, not hash()):
    assert subseed(0, "topology") == int.from_bytes(
        __import__("hashlib").sha256(b"0/topology").digest()[:8], "big")
