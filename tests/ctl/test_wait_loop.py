"""``ctl wait``'s loop (ctl/commands/wait.py ``wait_loop``) over scripted wave outcomes:
what it does after each kind of decision. The waves themselves are tested in
tests/sim/test_termination.py and on real processes in tests/e2e/test_wait.py."""

from __future__ import annotations

from ctl.commands.wait import wait_loop


class Script:
    """Wave outcomes in order, a clock that each wave advances, pings that answer as told."""

    def __init__(self, outcomes, up, seconds_per_wave=1.0):
        self.outcomes = list(outcomes)
        self.up = up
        self.t = 0.0
        self.step = seconds_per_wave
        self.budgets = []
        self.pinged = []

    def run_wave(self, budget):
        self.budgets.append(budget)
        self.t += self.step
        return f"term-{len(self.budgets)}", self.outcomes.pop(0)

    def ping(self, names):
        self.pinged.append(names)
        return {n: self.up.get(n, True) for n in (names or ["a", "b", "c"])}

    def clock(self):
        return self.t


def test_a_detection_returns_at_once():
    s = Script([("a", {"terminated": True, "rounds": 3, "failed": 2})], {})
    out = wait_loop(s.run_wave, s.ping, 10.0, s.clock)
    assert out["terminated"] and out["rounds"] == 3 and out["waves"] == 1 and out["initiator"] == "a"
    assert s.pinged == []


def test_a_lost_token_at_a_live_node_starts_a_new_wave_with_the_time_left():
    s = Script([("a", {"terminated": False, "reason": "lost", "node": "b"}),
                ("a", {"terminated": True, "rounds": 2})], {"b": True})
    out = wait_loop(s.run_wave, s.ping, 10.0, s.clock)
    assert out["terminated"] and out["waves"] == 2 and out["lost"] == ["b"]
    assert s.budgets == [10.0, 9.0] and s.pinged == [["b"]]


def test_a_lost_token_at_a_dead_node_names_it():
    s = Script([("c", {"terminated": False, "reason": "lost", "node": "b"})], {"b": False})
    out = wait_loop(s.run_wave, s.ping, 10.0, s.clock)
    assert not out["terminated"] and out["reason"] == "dead" and out["dead"] == ["b"]


def test_the_deadline_names_the_silent_nodes():
    s = Script([("a", {"terminated": False, "reason": "timeout", "rounds": 7})], {"c": False})
    out = wait_loop(s.run_wave, s.ping, 10.0, s.clock)
    assert out["reason"] == "timeout" and out["rounds"] == 7 and out["dead"] == ["c"]
    s = Script([None], {"a": False})
    out = wait_loop(s.run_wave, s.ping, 10.0, s.clock)
    assert out["reason"] == "timeout" and out["dead"] == ["a"]


def test_restarts_never_outlast_the_timeout():
    s = Script([("a", {"terminated": False, "reason": "lost", "node": "b"})] * 20, {"b": True}, seconds_per_wave=3.0)
    out = wait_loop(s.run_wave, s.ping, 10.0, s.clock)
    assert out["reason"] == "timeout" and out["waves"] == 4 and not out["terminated"]
