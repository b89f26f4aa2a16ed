"""``ctl completion bash|zsh|fish``: the scripts complete what ``ctl``'s parser accepts,
run by the real shells — bash through its completion interface (``COMP_WORDS``,
``COMP_CWORD``, the function ``complete -F`` binds), zsh through a terminal (Tab pressed
in an interactive ``zsh``), fish through its own engine (``complete -C``). A shell that
is not installed is skipped, named."""

from __future__ import annotations

import os
import pty
import select
import shutil
import subprocess
import time

import pytest

from ctl.cli import main
from ctl.shipped import shipped_names

pytestmark = pytest.mark.e2e

# (words typed so far, the word being completed) -> what must be offered, what must not
CASES = [
    (["ctl"], "", {"start", "status", "sim", "completion", "help"}, {"--policy"}),
    (["ctl"], "st", {"start", "status", "stop"}, {"sim"}),
    (["ctl", "sim"], "", {"echo", "finn", "balance", "chaos", "replay"}, {"start"}),
    (["ctl", "sim", "chaos"], "--s", {"--seed", "--seeds", "--shape"}, {"--policy"}),
    (["ctl", "rebalance", "--policy"], "", {"heap", "seed"}, {"--json"}),
    (["ctl", "sim", "balance", "--nodes", "40", "--policy"], "", {"heap", "seed", "none"}, set()),
    (["ctl", "start"], "se", {"seed"}, {"strong"}),
    (["ctl", "completion"], "", {"bash", "zsh", "fish"}, set()),
    (["ctl", "help"], "re", {"rebalance"}, set()),
]


def script(shell: str, capsys) -> str:
    assert main(["completion", shell]) == 0
    return capsys.readouterr().out


def need(shell: str) -> str:
    path = shutil.which(shell)
    if path is None:
        pytest.skip(f"{shell} is not installed")
    return path


def test_bash(tmp_path, capsys):
    need("bash")
    (tmp_path / "ctl.bash").write_text(script("bash", capsys))
    calls = []
    for words, cur, _, _ in CASES:
        quoted = " ".join(f"'{w}'" for w in [*words, cur])
        calls.append(f'COMP_WORDS=({quoted}); COMP_CWORD={len(words)}; COMPREPLY=(); _ctl; '
                     f'echo "${{COMPREPLY[*]}}"')
    out = subprocess.run(["bash", "--norc", "-c", f"source {tmp_path}/ctl.bash\n" + "\n".join(calls)],
                         capture_output=True, text=True, timeout=30, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == len(CASES)
    for (words, cur, offered, not_offered), line in zip(CASES, lines):
        got = set(line.split())
        assert offered <= got and not (not_offered & got), (words, cur, line)


def test_bash_completes_files_where_a_value_is_a_file(tmp_path, capsys):
    need("bash")
    (tmp_path / "ctl.bash").write_text(script("bash", capsys))
    (tmp_path / "mine.toml").write_text("")
    out = subprocess.run(["bash", "--norc", "-c", f"source {tmp_path}/ctl.bash\n"
                          "COMP_WORDS=(ctl status -t mi); COMP_CWORD=3; _ctl; echo \"${COMPREPLY[*]}\"\n"
                          "COMP_WORDS=(ctl start mi); COMP_CWORD=2; _ctl; echo \"${COMPREPLY[*]}\""],
                         capture_output=True, text=True, timeout=30, cwd=tmp_path)
    assert out.stdout.splitlines() == ["mine.toml", "mine.toml"], out


def test_fish(tmp_path, capsys):
    need("fish")
    (tmp_path / "ctl.fish").write_text(script("fish", capsys))
    for words, cur, offered, not_offered in CASES:
        line = " ".join([*words, cur])
        out = subprocess.run(["fish", "--no-config", "-c", f"source {tmp_path}/ctl.fish; complete -C '{line}'"],
                             capture_output=True, text=True, timeout=30, cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        got = {row.split("\t")[0] for row in out.stdout.splitlines()}
        assert offered <= got and not (not_offered & got), (line, out.stdout)


def _type_in_terminal(argv: list[str], setup: str, typed: str, cwd) -> str:
    """Start ``argv`` on a pseudo-terminal, run ``setup``, type ``typed`` (Tab included)
    and return what the terminal showed after it; the shell is stopped by its pid."""
    master, slave = pty.openpty()
    shell = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, cwd=cwd, start_new_session=True,
                             env={**os.environ, "TERM": "dumb", "HOME": str(cwd)})
    os.close(slave)
    out = b""

    def read(seconds: float) -> None:
        nonlocal out
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            ready, _, _ = select.select([master], [], [], 0.05)
            if ready:
                try:
                    out += os.read(master, 65536)
                except OSError:
                    return

    try:
        read(0.5)
        os.write(master, setup.encode() + b"\n")
        read(1.0)
        out = b""
        os.write(master, typed.encode())
        read(1.5)
        return out.decode(errors="replace")
    finally:
        shell.kill()
        shell.wait(10)
        os.close(master)


def test_zsh_in_a_terminal(tmp_path, capsys):
    need("zsh")
    (tmp_path / "_ctl").write_text(script("zsh", capsys))
    setup = f"PS1='> '; source {tmp_path}/_ctl"
    for typed, offered in ((["ctl", "sim", ""], {"balance", "chaos", "echo", "finn", "replay"}),
                           (["ctl", "rebalance", "--policy", ""], {"heap", "seed"}),
                           (["ctl", "rebalance", "--pol"], {"--policy"})):
        shown = _type_in_terminal(["zsh", "-f", "-i"], setup, " ".join(typed) + "\t", tmp_path)
        assert all(word in shown for word in offered), (typed, shown)


def test_the_shipped_names_are_offered(capsys):
    text = script("bash", capsys)
    assert all(name in text for name in shipped_names()) and "chaos/ring" in shipped_names()
