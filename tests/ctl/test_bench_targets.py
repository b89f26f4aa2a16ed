"""``ctl bench`` marks every figure over its target: in its table cell ("2.67 MISSED"),
in a closing line of the text, and in the JSON's "missed" (the tables are rendered by
pure functions of the rows; the benches themselves run in tests/e2e/test_bench.py)."""

from ctl.commands.bench import (BURST_COLUMNS, BURST_TARGETS, ECHO_COLUMNS, ECHO_TARGETS, QUEUE_TARGETS,
                                SCALE_COLUMNS, SCALE_TARGETS, missed, table)


def echo_row(case, ratio):
    return {"case": case, "nodes": 31, "waves": 200, "p50_ms": ratio * 3, "p90_ms": 0, "min_ms": 0,
            "floor_p50_ms": 3.0, "ratio": ratio, "lost": 0}


def test_an_echo_ratio_over_2_is_marked_and_one_within_is_not():
    rows = [echo_row("floor: raw pyzmq relay tree, idle", 1.0), echo_row("echo, idle", 2.67),
            echo_row("echo, loaded", 1.5)]
    text = table(rows, ECHO_COLUMNS, ECHO_TARGETS)
    lines = text.splitlines()
    assert "2.67 MISSED" in lines[3] and "MISSED" not in lines[2] + lines[4], text
    assert [m["text"] for m in missed(rows, ECHO_TARGETS)] == ["echo, idle: ratio 2.67 over its target 2"]


def test_the_burst_target_holds_heap_only():
    rows = [{"policy": "heap", "ratio": 1.3}, {"policy": "none", "ratio": 4.0}]
    assert [(m["row"], m["key"]) for m in missed(rows, BURST_TARGETS)] == [(0, "ratio")]
    assert table(rows, BURST_COLUMNS, BURST_TARGETS).count("MISSED") == 1


def test_scale_targets_are_read_from_the_row():
    row = {"nodes": 1000, "start_s": 16.0, "start_target_s": 15.0, "uss_mb_per_node": 5.9, "uss_target_mb": 6,
           "stop_s": 5.0, "stop_target_s": 5.0}
    assert [m["key"] for m in missed([row], SCALE_TARGETS)] == ["start_s"]  # at the target is not over it
    assert "16.00 MISSED" in table([row], SCALE_COLUMNS, SCALE_TARGETS)


def test_a_lost_task_misses_the_queue_target():
    row = {"round_ms_max": 200, "round_target_ms": 1000, "transfer_bytes": 10, "frame_target_bytes": 2**20, "lost": 1}
    assert [m["text"] for m in missed([row], QUEUE_TARGETS)] == ["row 1: lost 1 over its target 0"]
