"""The two rules that read samples (daemon/core/snapshot.py): work in flight counts once,
at its destination, until the destination reports the move; imbalance is the largest
work per CPU over the cluster's. Figures worked out by hand."""

from __future__ import annotations

import math

import pytest

from daemon.core.snapshot import imbalance, imbalance_of, in_flight, load_cv_of


def sample(name, work, cpus, outgoing=(), unconfirmed=()):
    return {"name": name, "work": work, "cpus": cpus, "outgoing": [list(o) for o in outgoing],
            "unconfirmed": list(unconfirmed)}


def test_in_flight_counts_a_move_at_its_destination_until_it_reports_it():
    a = sample("a", 6.0, 2, outgoing=[("m1", "b", 3, 4.5), ("m2", "c", 1, 0.5), ("m3", "b", 2, 1.0)])
    b, c = sample("b", 0.0, 2), sample("c", 0.0, 1)
    assert in_flight([a, b, c]) == {"b": (5, 5.5), "c": (1, 0.5)}
    c_has_it = sample("c", 0.5, 1, unconfirmed=["m2"])
    assert in_flight([a, b, c_has_it]) == {"b": (5, 5.5)}  # in c's queue now: not in flight
    empty = sample("a", 6.0, 2, outgoing=[("m4", "b", 0, 0.0)])
    assert in_flight([empty, b]) == {}  # a move that carries nothing flies nowhere
    assert in_flight([]) == {}
    assert type(in_flight([a, b])["b"][0]) is int and type(in_flight([a, b])["b"][1]) is float


def test_imbalance_of_samples():
    assert imbalance([sample("a", 6.0, 2), sample("b", 2.0, 2)]) == 1.5  # 3 / (8 / 4)
    assert imbalance([sample("a", 6.0, 1), sample("b", 0.0, 3)]) == 4.0  # 6 / (6 / 4): CPUs weigh
    # 4 s flying from a to b count at b: b holds 4 / 2 against (2 + 4) / 4
    flying = [sample("a", 2.0, 2, outgoing=[("m", "b", 2, 4.0)]), sample("b", 0.0, 2)]
    assert imbalance(flying) == pytest.approx(4 / 2 / (6 / 4))
    accepted = [sample("a", 2.0, 2, outgoing=[("m", "b", 2, 4.0)]), sample("b", 4.0, 2, unconfirmed=["m"])]
    assert imbalance(accepted) == pytest.approx(4 / 2 / (6 / 4))  # counted once, in b's queue
    assert imbalance([sample("a", 0.0, 2), sample("b", 0.0, 2)]) is None  # no work at all
    assert imbalance([sample("a", 0.5, 1), sample("b", 0.0, 1)]) == 2.0  # under a second of work still counts
    assert imbalance([]) is None
    assert imbalance(iter([sample("a", 3.0, 3)])) == 1.0  # any iterable, read once


def test_imbalance_of_work_lists():
    assert imbalance_of([6.0, 2.0], [2, 2]) == 1.5
    assert imbalance_of([6.0, 0.0], [1, 3]) == 4.0
    assert imbalance_of([3.0], [1], total_cpus=3) == 3.0  # two idle CPUs elsewhere
    assert imbalance_of([0.0, 0.0], [1, 1]) == 1.0 and imbalance_of([], []) == 1.0


def test_load_cv_of():
    assert load_cv_of([2.0, 2.0], [1, 1]) == 0.0
    assert load_cv_of([0.0, 0.0], [1, 2]) == 0.0 and load_cv_of([], []) == 0.0
    # per CPU 1 and 3: mean 2, population deviation 1
    assert load_cv_of([2.0, 6.0], [2, 2]) == pytest.approx(0.5)
    # one busy node among four (three idle, not listed): per CPU 4, 0, 0, 0 -> mean 1, sd sqrt(3)
    assert load_cv_of([4.0], [1], nodes=4) == pytest.approx(math.sqrt(3))


# --- the last Finn wave and balancing round, as the nodes report them -------------------

from daemon.core.snapshot import last_finn, last_round  # noqa: E402
from daemon.core.waves import new_wave_id, round_of  # noqa: E402

F1, F2 = new_wave_id("f", 1_000 * 10**9, "a"), new_wave_id("f", 2_000 * 10**9, "b")
R1, R2 = new_wave_id("m", 1_000 * 10**9, "c"), new_wave_id("m", 2_000 * 10**9, "d")


def test_last_finn_is_the_latest_started_wave_with_the_nodes_that_report_it():
    samples = [{"name": "a", "last_finn": [F2, 2_001.0, 2, 3]}, {"name": "b", "last_finn": [F1, 2_005.0, 1, 1]},
               {"name": "c", "last_finn": [F2, 2_002.5, 2, 1]}, {"name": "d"}]
    assert last_finn(samples) == {"wave": F2, "started": 2_000.0, "decided": ["a", "c"], "enqueued": 4,
                                  "messages": 4, "at": 2_002.5}
    assert last_finn([{"name": "d"}]) is None and last_finn([]) is None


def test_last_round_sums_the_donors_moves_and_the_destinations_receipts():
    samples = [{"name": "a", "last_round": [R2, 2_000.5, 2, 7, 0, 0]},
               {"name": "b", "last_round": [R2, 2_000.6, 0, 0, 1, 4]},
               {"name": "c", "last_round": [R1, 1_000.6, 1, 9, 0, 0]}]
    assert last_round(samples) == {"round_id": R2, "started": 2_000.0, "moves": 2, "tasks": 7, "received": 4,
                                   "nodes": ["a", "b"], "at": 2_000.6}


@pytest.mark.parametrize("bad", [None, "x", [F2], [F2, 1.0, 1], [F2, float("nan"), 1, 1], [F2, 1.0, -1, 0],
                                 [F2, 1.0, True, 0], ["", 1.0, 1, 1], ["w" * 65, 1.0, 1, 1], [F2, 1.0, 2**41, 0],
                                 [7, 1.0, 1, 1], [F2, "soon", 1, 1]])
def test_a_malformed_fact_is_left_out(bad):
    """Samples cross the wire unchecked inside the ECHO's stream: a hostile fact must
    neither raise nor be shown (daemon/core/messages.py fact_ok)."""
    good = {"name": "a", "last_finn": [F1, 1.0, 1, 1]}
    assert last_finn([{"name": "x", "last_finn": bad}, good])["wave"] == F1
    assert last_round([{"name": "x", "last_round": bad}]) is None


def test_a_move_belongs_to_the_round_its_id_names():
    assert round_of(f"{R1}-0") == R1 and round_of(f"{R1}-17") == R1
    assert round_of("m1") == "m1" and round_of(f"{R1}-x") == f"{R1}-x" and round_of("a-b-3") == "a-b-3"
