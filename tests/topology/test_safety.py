"""Names and files that could hurt: names that would leave the run directory, files that
are not regular files or are too big. ``ctl check`` and ``ctl start`` refuse them with
exit 2, a message naming the file, node and field, no traceback and no hang."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

import ctl
from ctl.cli import main
from daemon.topology import MAX_FILE_SIZE, TopologyError, dumps, load, loads

REPO = Path(os.path.abspath(ctl.__file__)).parent.parent
ROOT = '[[node]]\nname = "root"\ncpus = 4\n'
CHILD = '\n[[node]]\nname = "{}"\ncpus = 2\nparents = ["root"]\n'


def ctl(*args, timeout=60, env=None):
    return subprocess.run([sys.executable, "-m", "ctl", *map(str, args)], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                          env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})})


BAD_NAMES = ["../../probe-nodeescape", "probe-../../probe-escaped", ".hidden", "..", "a/b", "two words",
             "tab\tname", "r\u00e9seau", "semi;colon", "star*", "colon:name", "back\\slash", "nul\x00"]


@pytest.mark.parametrize("bad", BAD_NAMES)
def test_bad_node_names_are_refused_naming_file_node_and_field(tmp_path, capsys, bad):
    path = tmp_path / "names.toml"
    path.write_text(ROOT + CHILD.format(bad.replace("\\", "\\\\").replace("\t", "\\t").replace("\x00", "\\u0000")))
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: [[node]] #2: field 'name'" in err and "A-Z a-z 0-9 - _ ." in err, err


@pytest.mark.parametrize("bad", ["probe-../../probe-escaped", "../x", ".dot", "a b", "x/y"])
def test_bad_cluster_names_are_refused(tmp_path, capsys, bad):
    path = tmp_path / "cluster.toml"
    path.write_text(f'[cluster]\nname = "{bad}"\n' + ROOT)
    assert main(["check", str(path)]) == 2
    assert f"{path}: [cluster]: field 'name'" in capsys.readouterr().err


def test_a_file_stem_that_is_no_safe_name_needs_a_cluster_name(tmp_path, capsys):
    path = tmp_path / "my lab.toml"  # the default cluster name is the file's stem
    path.write_text(ROOT)
    assert main(["check", str(path)]) == 2
    assert "[cluster]: field 'name' = 'my lab'" in capsys.readouterr().err
    path.write_text('[cluster]\nname = "my-lab"\n' + ROOT)
    assert main(["check", str(path)]) == 0


@pytest.mark.e2e  # starts a process (tests/conftest.py)
def test_safe_names_pass_and_ctl_start_refuses_a_bad_one_with_exit_2(tmp_path):
    good = loads('[cluster]\nname = "Lab_1.x-y"\n' + ROOT + CHILD.format("a-b_c.9"))
    assert good.names == ("root", "a-b_c.9")
    path = tmp_path / "escape.toml"
    path.write_text(ROOT + CHILD.format("../../probe-nodeescape"))
    r = ctl("start", path, env={"ECHOFINN_HOME": str(tmp_path / "home")})
    assert r.returncode == 2 and "field 'name'" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "home").exists()  # refused before anything was made


def test_security_field(tmp_path):
    assert loads(ROOT).cluster.security == "curve"
    none = loads('[cluster]\nsecurity = "none"\n' + ROOT)
    assert none.cluster.security == "none" and loads(dumps(none)) == none
    assert "security" not in dumps(loads(ROOT))
    with pytest.raises(TopologyError, match=r"\[cluster\]: field 'security' must be \"curve\" .* or \"none\", got \"off\""):
        loads('[cluster]\nsecurity = "off"\n' + ROOT)


@pytest.mark.e2e  # starts a process (tests/conftest.py)
def test_a_fifo_is_refused_at_once(tmp_path):
    fifo = tmp_path / "pipe.toml"
    os.mkfifo(fifo)
    r = ctl("check", fifo, timeout=60)  # a hang would raise TimeoutExpired
    assert r.returncode == 2
    assert r.stderr == f"ctl check: error: {fifo}: is a FIFO (named pipe), not a regular file; a topology file must be one\n"


def test_a_device_is_refused(capsys):
    assert main(["check", "/dev/zero"]) == 2
    assert capsys.readouterr().err == ("ctl check: error: /dev/zero: is a character device, not a regular file; "
                                       "a topology file must be one\n")


def test_a_file_over_the_size_limit_is_refused_unread(tmp_path, capsys):
    big = tmp_path / "big.toml"
    with open(big, "wb") as f:
        f.truncate(MAX_FILE_SIZE + 1)  # sparse: nothing to read, only the size says no
    assert main(["check", str(big)]) == 2
    assert f"{big}: {MAX_FILE_SIZE + 1} bytes; a topology file may have at most" in capsys.readouterr().err
    with open(big, "r+b") as f:
        f.truncate(MAX_FILE_SIZE)  # at the limit: read, and judged by what it says
    with pytest.raises(TopologyError, match="invalid TOML"):
        load(big)


def test_a_symlink_to_a_regular_file_is_fine(tmp_path):
    real = tmp_path / "real.toml"
    real.write_text(ROOT)
    link = tmp_path / "link.toml"
    link.symlink_to(real)
    assert load(link).names == ("root",)
