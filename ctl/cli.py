"""Entry point of ``ctl``: builds the parser from ``ctl.commands`` and turns errors into
messages and exit codes (0 ok, 1 failure, 2 bad input, 130 interrupted).

The conventions of a command line tool: ``ctl --version`` prints the package's version;
bare ``ctl`` prints the help (exit 0), as ``ctl help [COMMAND...]`` and ``--help`` do;
``ctl completion bash|zsh|fish`` writes a completion script made from this parser
(ctl/commands/completion.py). Every option whose value is checked against bounds
(ctl/argtypes.py) states them in its help: :func:`state_limits` adds them where the
help text does not already say them.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import signal
import sys
import threading

import ctl.commands
from daemon.errors import UserError

PROLOG = """\
echofinn: a cluster of node daemons over ZeroMQ, balanced by echo waves and fed by
Finn waves. Start a cluster from a topology file, then inject waves into it.

typical session:
  ctl start seed                      start the shipped topology seed (or a file): one daemon
                                      per node, return when all answer
  ctl submit subserviate --tasks 20   create imbalance
  ctl echo                            one echo wave: the spanning tree and every node's load
  ctl rebalance                       echo, plan, move queued tasks to free CPUs
  ctl finn --tasks 1                  one Finn wave: every node enqueues a task as it decides
  ctl top                             the live tree
  ctl stop                            no process of the cluster is left afterwards

ctl help COMMAND (or ctl COMMAND --help) tells more; ctl completion bash|zsh|fish
prints a shell completion script.
"""


def _commands():
    mods = []
    for info in pkgutil.iter_modules(ctl.commands.__path__):
        mod = importlib.import_module(f"ctl.commands.{info.name}")
        if hasattr(mod, "run"):
            mods.append((getattr(mod, "ORDER", 99), info.name, mod))
    return sorted(mods, key=lambda m: (m[0], m[1]))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ctl", description=PROLOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action=_Version, help="print the version of ctl (the echofinn package) and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for _, name, mod in _commands():
        p = sub.add_parser(
            name.replace("_", "-"),
            help=mod.HELP,
            # the modules' docstrings double as help: drop their reST code marks
            description=getattr(mod, "DESCRIPTION", mod.HELP).replace("``", ""),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    state_limits(parser)
    return parser


class _Version(argparse.Action):
    """``--version``, reading the package's metadata only when asked (``ctl --help`` stays quick)."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"ctl (echofinn) {version()}")
        parser.exit()


def version() -> str:
    """The installed package's version (setup.cfg ``version``)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("echofinn")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The parsers of ``parser``'s subcommands, by name ({} if it has none)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def walk(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """(path, parser) of ``parser`` and of every subcommand below it, depth first."""
    yield path, parser
    for name, sub in subcommands(parser).items():
        yield from walk(sub, path + (name,))


def state_limits(parser: argparse.ArgumentParser) -> None:
    """Add each checked option's bounds (``type.bounds``, ctl/argtypes.py) to its help
    where the help does not say them yet: "how many tasks (default 1; 1 to 100,000)"."""
    for _, p in walk(parser):
        for action in p._actions:
            bounds = getattr(action.type, "bounds", None)
            if not bounds or action.help in (None, argparse.SUPPRESS) or bounds in action.help:
                continue
            text = action.help
            action.help = f"{text[:-1]}; {bounds})" if text.endswith(")") else f"{text} ({bounds})"


def _exit_on_signal(signum, frame):
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:  # bare `ctl`: the help, as `ctl help` prints it
        parser.print_help()
        return 0
    if threading.current_thread() is threading.main_thread():
        # SIGTERM and SIGHUP (a closed terminal) unwind like Ctrl-C does, so every
        # command's cleanup — `ctl demo` stopping its cluster above all — still runs.
        for sig in (signal.SIGTERM, signal.SIGHUP):
            if signal.getsignal(sig) is signal.SIG_DFL:
                signal.signal(sig, _exit_on_signal)
    try:
        return int(args._run(args) or 0)
    except UserError as exc:
        print(f"ctl {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"ctl {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
