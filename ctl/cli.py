"""Entry point of ``ctl``: builds the parser from ``ctl.commands`` and turns errors into
messages and exit codes (0 ok, 1 failure, 2 bad input, 130 interrupted)."""

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
  ctl start topologies/seed.toml      start one daemon per node, return when all answer
  ctl submit subserviate --tasks 20   create imbalance
  ctl echo                            one echo wave: the spanning tree and every node's load
  ctl rebalance                       echo, plan, move queued tasks to free CPUs
  ctl finn --tasks 1                  one Finn wave: every node enqueues a task as it decides
  ctl top                             the live tree
  ctl stop                            no process of the cluster is left afterwards
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
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
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
    return parser


def _exit_on_signal(signum, frame):
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
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
