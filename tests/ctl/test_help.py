"""The conventions of ``ctl`` as a command line tool, in-process through ``ctl.cli.main``:
``--version``, bare ``ctl`` and ``ctl help [COMMAND...]`` print the help, and every
command's help speaks of the product (no source file, module or folder of the code),
states the bounds of every checked value and lists the choices of every option that
has some."""

from __future__ import annotations

import argparse
import re

import pytest

from ctl.cli import build_parser, main, state_limits, walk
from daemon.core.messages import MAX_COST, MAX_TASKS

# What a help text must not send its reader to: a source file, a module path, a folder
# of the code, a developer's document.
SOURCE_REFERENCE = re.compile(
    r"[\w./-]+\.py\b"                                  # a Python file
    r"|\b(?:daemon|ctl|tests|bench)/"                  # a folder of the code
    r"|\b(?:daemon|ctl)\.(?!fish\b)[a-z_]+\b"          # a module (daemon.supervisor), not ctl.fish
    r"|\b[\w-]+\.md\b"                                 # a developer's document
)


def every_help() -> list[tuple[str, str]]:
    return [(" ".join(("ctl",) + path), p.format_help()) for path, p in walk(build_parser())]


def test_every_command_is_walked():
    names = {name for name, _ in every_help()}
    assert {"ctl", "ctl start", "ctl sim chaos", "ctl trace convert", "ctl bench echo", "ctl help",
            "ctl completion"} <= names


@pytest.mark.parametrize("name,text", every_help(), ids=lambda v: v if v.startswith("ctl") else "")
def test_help_names_no_source_file(name, text):
    found = sorted({m.group(0) for m in SOURCE_REFERENCE.finditer(text)})
    assert not found, f"`{name} --help` sends its reader to the code: {found}"


def test_the_source_check_catches_each_kind():
    for text in ("see daemon.supervisor", "detail_limit (daemon/core/tasks.py)", "lives in ctl/bench/",
                 "README.md, Security", "ctl/common.py resolve_cluster"):
        assert SOURCE_REFERENCE.search(text), text
    for text in ("ctl start seed", "a .toml file", "ctl trace show FILE.etrace", "ui.perfetto.dev"):
        assert not SOURCE_REFERENCE.search(text), text


def _actions():
    for path, p in walk(build_parser()):
        for action in p._actions:
            if not isinstance(action, argparse._SubParsersAction):
                yield " ".join(("ctl",) + path), p, action


def test_every_bounded_value_states_its_bounds():
    checked = 0
    for name, _, action in _actions():
        bounds = getattr(action.type, "bounds", None)
        if bounds:
            checked += 1
            assert bounds in (action.help or ""), f"{name} {action.option_strings}: help does not say {bounds!r}"
    assert checked > 20


def test_every_choice_is_listed():
    checked = 0
    for name, p, action in _actions():
        if action.choices:
            checked += 1
            text = p.format_help()
            for choice in action.choices:
                assert str(choice) in text, f"{name} {action.option_strings}: choice {choice!r} is not listed"
    assert checked >= 8


def test_limits_come_from_the_message_schema(capsys):
    with pytest.raises(SystemExit):
        main(["submit", "--help"])
    text = capsys.readouterr().out
    assert f"{MAX_TASKS:,}" in text and f"{MAX_COST:,g}" in text


def test_state_limits_adds_a_missing_bound_once():
    from ctl.argtypes import integer

    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=integer("--n", 1, 100_000), help="how many (default 1)")
    parser.add_argument("--m", type=integer("--m", 0), help="how many, at least 0")
    state_limits(parser)
    state_limits(parser)
    helps = {a.dest: a.help for a in parser._actions}
    assert helps["n"] == "how many (default 1; 1 to 100,000)"
    assert helps["m"] == "how many, at least 0"


def test_version(capsys):
    with pytest.raises(SystemExit) as exit:
        main(["--version"])
    assert exit.value.code == 0
    from importlib.metadata import version

    assert capsys.readouterr().out.strip() == f"ctl (echofinn) {version('echofinn')}"


def test_bare_ctl_and_ctl_help_print_the_help(capsys):
    assert main([]) == 0
    bare = capsys.readouterr().out
    assert main(["help"]) == 0
    assert capsys.readouterr().out == bare
    assert bare.startswith("usage: ctl") and "start" in bare and "ctl help COMMAND" in bare


def test_ctl_help_command_is_command_help(capsys):
    with pytest.raises(SystemExit):
        main(["sim", "chaos", "--help"])
    expected = capsys.readouterr().out
    assert main(["help", "sim", "chaos"]) == 0
    assert capsys.readouterr().out == expected


def test_ctl_help_unknown_command_names_the_commands(capsys):
    assert main(["help", "sim", "nope"]) == 2
    err = capsys.readouterr().err
    assert "ctl sim has no command 'nope'" in err and "chaos" in err and "replay" in err
