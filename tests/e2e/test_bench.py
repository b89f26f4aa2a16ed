"""``ctl bench`` on small sizes with real processes: the output's shape, the accounting
and the clean-up, never a speed (the machine is shared; speeds are BENCHMARKS.md's)."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.e2e


def bench(cluster_env, *args, timeout=300):
    cluster_env.hold_bench_ports()  # its clusters' ports are the bench's choice, not the fixture's
    r = cluster_env.ctl("bench", *args, timeout=timeout)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    return r


def test_echo_json_gives_p50_floor_and_ratio_and_plots(cluster_env, tmp_path):
    # as from a user's shell: no ECHOFINN_HOME, so each bench cluster lives in a private
    # home and the waves sent from ctl bench itself must find the operator key there
    cluster_env.env.pop("ECHOFINN_HOME")
    cluster_env.env["XDG_RUNTIME_DIR"] = str(tmp_path / "xdg")
    png = tmp_path / "echo.png"
    r = bench(cluster_env, "echo", "--nodes", "3,7", "--waves", "5", "--json", "--plot", png)
    out = json.loads(r.stdout)
    assert out["bench"] == "echo" and out["p50_ms"] > 0 and out["floor_p50_ms"] > 0
    assert out["ratio"] == pytest.approx(out["p50_ms"] / out["floor_p50_ms"], rel=1e-2)
    cases = [(row["case"], row["nodes"]) for row in out["rows"]]
    assert cases == [("floor: raw pyzmq relay tree, idle", 3), ("echo, idle", 3),
                     ("floor: raw pyzmq relay tree, idle", 7), ("echo, idle", 7)]
    assert all(row["lost"] == 0 and row["waves"] == 5 for row in out["rows"])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "ctl bench: echo:" in r.stderr  # progress lines
    assert out["conditions"]["cores"] >= 1


def test_echo_table_names_the_yardstick(cluster_env):
    r = bench(cluster_env, "echo", "--nodes", "3", "--waves", "3", "--gap", "0.01", "--client", "ctl")
    assert "floor p50 ms" in r.stdout and "ratio" in r.stdout and "client ctl" in r.stdout
    assert "echo, idle" in r.stdout and "conditions: " in r.stdout


def test_echo_measures_a_cluster_for_each_number_of_nodes_per_process(cluster_env, tmp_path):
    png = tmp_path / "echo.png"
    r = bench(cluster_env, "echo", "--nodes", "7", "--waves", "3", "--per-process", "1,3", "--json", "--plot", png)
    rows = json.loads(r.stdout)["rows"]
    assert [(row["case"], row["nodes_per_process"]) for row in rows] == [
        ("floor: raw pyzmq relay tree, idle", 1), ("echo, idle", 1), ("echo, idle, 3 nodes per process", 3)]
    floor = rows[0]["p50_ms"]
    for row in rows[1:]:
        assert row["lost"] == 0 and row["waves"] == 3 and row["floor_p50_ms"] == floor  # one floor for both
        assert row["ratio"] == pytest.approx(row["p50_ms"] / floor, rel=1e-2)
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_scale_with_nodes_per_process_counts_processes_and_memory_per_node(cluster_env):
    r = bench(cluster_env, "scale", "--nodes", "6", "--per-process", "3", "--json")
    row = json.loads(r.stdout)["rows"][0]
    assert row["nodes_per_process"] == 3 and row["node_processes"] == 2 and row["echo_entries"] == 6
    assert row["left"] == [] and 0 < row["uss_mb_per_node"] < row["uss_mb_median"]
    assert not cluster_env.processes()


def test_balance_burst_reports_makespan_against_lb_and_every_task_done(cluster_env, tmp_path):
    png = tmp_path / "balance.png"
    r = bench(cluster_env, "balance", "--policy", "heap,none", "--tasks", "12", "--cost", "0.2", "--interval", "0.2",
              "--json", "--plot", png)
    rows = json.loads(r.stdout)["rows"]
    assert [row["policy"] for row in rows] == ["heap", "none"]
    for row in rows:
        assert row["lb_s"] == pytest.approx(max(12 * 0.2 / 38, 0.2))  # seed.toml: 38 cpus
        assert row["makespan_s"] >= row["lb_s"] * 0.99  # LB bounds any schedule, real time included
        assert row["timeline"] and len(row["timeline"][0]["load"]) == len(row["nodes"]) == 8
    assert rows[1]["moved"] == 0 and rows[1]["rounds"] == 0
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_balance_queue_counts_every_task_after_bulk_moves(cluster_env):
    r = bench(cluster_env, "balance", "--scenario", "queue", "--tasks", "600", "--rounds", "2", "--cost", "30", "--json")
    row = json.loads(r.stdout)["rows"][0]
    assert row["balanced"] and row["submitted"] == row["found"] == 600 and row["lost"] == 0
    assert row["rounds"][0]["moved"] > 0
    assert row["echo_bytes_max"] > 0 and row["transfer_bytes"] > 0


def test_scale_starts_measures_and_stops_leaving_nothing(cluster_env):
    r = bench(cluster_env, "scale", "--nodes", "3,5", "--json")
    rows = json.loads(r.stdout)["rows"]
    assert [row["nodes"] for row in rows] == [3, 5]
    for row in rows:
        assert row["node_processes"] == row["echo_entries"] == row["nodes"]
        assert row["left"] == [] and 0 < row["uss_mb_median"] <= row["rss_mb_median"] and row["uss_mb_after_echo"] > 0
    assert not cluster_env.processes()


def test_sim_rows_per_policy_and_plan_properties(cluster_env):
    r = bench(cluster_env, "sim", "--nodes", "20", "--snapshots", "20", "--json")
    rows = json.loads(r.stdout)["rows"]
    assert [row.get("policy") for row in rows[:3]] == ["heap", "seed", "none"]
    assert all(row["ratio"] >= 1.0 for row in rows[:3])
    assert rows[3]["case"] == "plan properties" and rows[3]["makespan_rose"] == 0


@pytest.mark.parametrize("args, message", [
    (["echo", "--nodes", "3,x"], "--nodes must be node counts"),
    (["echo", "--per-process", "0"], "--per-process must be node counts from 1 to 1024"),
    (["scale", "--per-process", "2000"], "--per-process"),
    (["balance", "--policy", "heap,fast"], "--policy takes heap, seed, none"),
    (["balance", "nowhere.toml"], "nowhere.toml"),
    (["balance", "--at", "nobody"], "nobody"),
])
def test_bad_input_exits_2_naming_it(cluster_env, args, message):
    r = cluster_env.ctl("bench", *args)
    assert r.returncode == 2, r.stdout + r.stderr
    assert message in r.stderr and "Traceback" not in r.stderr


def test_a_plot_that_cannot_be_written_is_named(cluster_env, tmp_path):
    r = cluster_env.ctl("bench", "sim", "--nodes", "5", "--plot", tmp_path / "no" / "such" / "dir.png")
    assert r.returncode == 1 and "cannot write the plot" in r.stderr and "Traceback" not in r.stderr
