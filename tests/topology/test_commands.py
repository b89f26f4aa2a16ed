"""``ctl gen`` and ``ctl check``, run in-process through ``ctl.cli.main``."""

import json
import shlex

import pytest

from ctl.cli import main
from daemon.topology import load, loads


def test_gen_writes_a_file_whose_header_regenerates_it(tmp_path, capsys):
    out = tmp_path / "t.toml"
    assert main(["gen", "--nodes", "12", "--shape", "dag", "--seed", "5", "--cpus", "2-6", "-o", str(out)]) == 0
    text = out.read_text()
    t = load(out)
    assert len(t) == 12 and t.shape() == "dag"
    assert all(2 <= n.cpus <= 6 for n in t.nodes)
    assert "wrote" in capsys.readouterr().err

    command = text.splitlines()[1].lstrip("# ").strip()
    argv = shlex.split(command)
    assert argv[:2] == ["ctl", "gen"]
    assert main(argv[1:]) == 0
    assert capsys.readouterr().out == text


def test_gen_without_seed_prints_the_seed(capsys):
    assert main(["gen", "--nodes", "6", "--shape", "strong"]) == 0
    captured = capsys.readouterr()
    seed = captured.err.split("--seed ")[1].rstrip(")\n")
    assert main(["gen", "--nodes", "6", "--shape", "strong", "--seed", seed]) == 0
    assert capsys.readouterr().out == captured.out
    assert loads(captured.out).shape() == "cyclic"


def test_gen_name_base_port_and_single_cpu_count(capsys):
    assert main(["gen", "-n", "3", "--shape", "tree", "--seed", "1", "--name", "lab", "--base-port", "9000",
                 "--cpus", "4"]) == 0
    t = loads(capsys.readouterr().out)
    assert t.cluster.name == "lab"
    assert [(n.port, n.cpus) for n in t.nodes] == [(9000, 4), (9001, 4), (9002, 4)]


@pytest.mark.parametrize("argv, fragment", [
    (["--nodes", "0", "--shape", "tree"], "--nodes must be at least 1, got 0"),
    (["--nodes", "5", "--shape", "dga"], "unknown shape 'dga' (did you mean 'dag'?)"),
    (["--nodes", "5", "--shape", "ring", "--cpus", "5-2"], "--cpus must be MIN-MAX with 1 <= MIN <= MAX"),
    (["--nodes", "5", "--shape", "ring", "--cpus", "many"], "--cpus must be MIN-MAX, such as 1-8"),
    (["--nodes", "5", "--shape", "ring", "--max-children", "0"], "--max-children must be at least 1"),
    (["--nodes", "5", "--shape", "ring", "--base-port", "70000"], "--base-port must be a port 1..65535"),
])
def test_gen_bad_arguments_exit_2(argv, fragment, capsys):
    assert main(["gen", *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("ctl gen: error: ") and fragment in captured.err


def test_gen_non_integer_is_an_argparse_error_exit_2(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["gen", "--nodes", "many", "--shape", "tree"])
    assert caught.value.code == 2
    assert "--nodes must be an integer, got 'many'" in capsys.readouterr().err


def test_gen_unwritable_output_exits_1(tmp_path, capsys):
    target = tmp_path / "no" / "such" / "dir.toml"
    assert main(["gen", "--nodes", "3", "--shape", "tree", "--seed", "1", "-o", str(target)]) == 1
    assert f"{target}: cannot write" in capsys.readouterr().err


def test_gen_never_overwrites_without_force(tmp_path, capsys):
    target = tmp_path / "mine.toml"
    target.write_text("# hand-written, keep me\n")
    argv = ["gen", "--nodes", "3", "--shape", "tree", "--seed", "1", "-o", str(target)]
    assert main(argv) == 1
    assert f"{target}: already exists; pass --force to overwrite it" in capsys.readouterr().err
    assert target.read_text() == "# hand-written, keep me\n"
    link = tmp_path / "link.toml"  # a dangling link is something there too: not followed to create its target
    link.symlink_to(tmp_path / "elsewhere.toml")
    assert main([*argv[:-1], str(link)]) == 1
    assert not (tmp_path / "elsewhere.toml").exists()
    assert main([*argv, "--force"]) == 0
    assert load(target).cluster.name == "tree3"


def test_check_summary(tmp_path, capsys):
    path = tmp_path / "mixed.toml"
    path.write_text("""
[cluster]
name = "mixed"
rebalance_interval = 0
[[node]]
name = "alpha"
cpus = 2
tasks = 4
[[node]]
name = "bravo"
cpus = 3
parents = ["alpha", "delta"]
[[node]]
name = "charlie"
cpus = 1
parents = ["delta"]
[[node]]
name = "delta"
cpus = 8
parents = ["charlie"]
port = 9000
""")
    assert main(["check", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"{path}: ok"
    for fragment in ["mixed (task_time 1 s, rebalancing off)", "nodes            4", "edges            4",
                     "shape            cyclic", "sources          alpha", "finn initiators  alpha, charlie",
                     "14 in total, 1..8 per node", "initial tasks    4",
                     "127.0.0.1:7100-9000 (4 ports, not contiguous)"]:
        assert fragment in out

    assert main(["check", str(path), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["shape"] == "cyclic"
    assert summary["finn_initiators"] == ["alpha", "charlie"]
    assert summary["cpus"] == {"total": 14, "min": 1, "max": 8}
    assert summary["ports"] == [{"host": "127.0.0.1", "min": 7100, "max": 9000, "count": 4}]


def test_check_shortens_long_name_lists(capsys, tmp_path):
    path = tmp_path / "wide.toml"
    assert main(["gen", "--nodes", "400", "--shape", "dag", "--seed", "2", "-o", str(path)]) == 0
    capsys.readouterr()
    assert main(["check", str(path)]) == 0
    sources_line = next(line for line in capsys.readouterr().out.splitlines() if "sources" in line)
    assert "in all)" in sources_line
