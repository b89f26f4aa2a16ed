"""``ctl gen --nodes N --shape tree|dag|ring|strong [--seed S] [--max-children K]
[--cpus MIN-MAX] [--name NAME] [--base-port P] [-o FILE [--force]]``

Writes a random topology file (TOML) to stdout or FILE (never over an existing file
without ``--force``: exit 1, naming it). The file opens with a comment
holding the exact command that regenerates it; without ``--seed`` a random seed is
chosen and printed to stderr, so the run can be repeated. Sends no message: it only
writes a file. Exit 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import shlex
import sys

from ctl.argtypes import integer

ORDER = 80
HELP = "write a random topology file (tree, dag, ring or strong)"
DESCRIPTION = """\
Write a random topology (TOML) to stdout or to FILE. Node names are English words.

shapes:
  tree    a random out-tree; each node has at most --max-children children
  dag     a tree plus extra parents; about one extra source per 20 nodes
  ring    a directed cycle
  strong  a directed cycle plus random chords (strongly connected)

The same arguments and seed give the same file; the file's header records the command
that regenerates it. -o FILE never overwrites an existing file unless --force is given.

examples:
  ctl gen --nodes 31 --shape tree --seed 1 -o /tmp/t31.toml
  ctl gen --nodes 12 --shape dag --cpus 2-6 --base-port 7300
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from daemon.topogen import SHAPES

    parser.add_argument(
        "--nodes", "-n", metavar="N", required=True, type=integer("--nodes"), help="number of nodes (at least 1)"
    )
    parser.add_argument("--shape", required=True, metavar="SHAPE", help=", ".join(SHAPES))
    parser.add_argument(
        "--seed", type=integer("--seed"), default=None, help="random seed (default: a random one, printed to stderr)"
    )
    parser.add_argument(
        "--max-children",
        metavar="K",
        type=integer("--max-children"),
        default=3,
        help="tree and dag: at most K children per node in the tree part (default 3)",
    )
    parser.add_argument(
        "--cpus",
        metavar="MIN-MAX",
        default="1-8",
        help="cpus of each node, drawn uniformly from MIN..MAX (default 1-8)",
    )
    parser.add_argument("--name", default=None, help="cluster name (default: SHAPE followed by N)")
    parser.add_argument(
        "--base-port",
        metavar="P",
        type=integer("--base-port"),
        default=7100,
        help="port of the first node; the others follow (default 7100)",
    )
    parser.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        default=None,
        help="write to FILE instead of stdout; an existing FILE is kept unless --force",
    )
    parser.add_argument("--force", action="store_true", help="with -o: overwrite FILE if it exists")


def run(args: argparse.Namespace) -> int:
    import difflib
    import secrets

    from daemon.errors import BadInput, UserError
    from daemon.topogen import SHAPES, generate
    from daemon.topology import dumps

    if args.shape not in SHAPES:
        close = difflib.get_close_matches(args.shape, SHAPES, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise BadInput(f"--shape: unknown shape {args.shape!r}{hint}; choose one of {', '.join(SHAPES)}")
    if args.nodes < 1:
        raise BadInput(f"--nodes must be at least 1, got {args.nodes}")
    if args.max_children < 1:
        raise BadInput(f"--max-children must be at least 1, got {args.max_children}")
    if not 1 <= args.base_port <= 65535:
        raise BadInput(f"--base-port must be a port 1..65535, got {args.base_port}")
    cpus = _cpu_range(args.cpus)
    seed = args.seed
    if seed is None:
        seed = secrets.randbelow(2**31)
        print(f"ctl gen: seed {seed} (repeat with --seed {seed})", file=sys.stderr)

    topology = generate(
        args.nodes,
        args.shape,
        seed,
        max_children=args.max_children,
        cpus=cpus,
        name=args.name,
        base_port=args.base_port,
    )
    command = ["ctl", "gen", "--nodes", str(args.nodes), "--shape", args.shape, "--seed", str(seed)]
    if args.shape in ("tree", "dag"):
        command += ["--max-children", str(args.max_children)]
    command += ["--cpus", f"{cpus[0]}-{cpus[1]}", "--base-port", str(args.base_port)]
    if args.name is not None:
        command += ["--name", args.name]
    header = (
        f"A random {args.shape} of {args.nodes} nodes, written by:\n"
        f"  {shlex.join(command)}\n"
        f"Shape {topology.shape()}, {topology.edge_count} edges, "
        f"Finn initiators: {', '.join(_first(topology.finn_initiators(), 5))}."
    )
    text = dumps(topology, comment=header)

    if args.output is None or args.output == "-":
        sys.stdout.write(text)
        return 0
    try:
        # "x" creates the file or fails if anything is there (a file, a link, a folder):
        # nothing is overwritten without --force, not even by a file made meanwhile
        with open(args.output, "w" if args.force else "x", encoding="utf-8") as f:
            f.write(text)
    except FileExistsError:
        raise UserError(f"{args.output}: already exists; pass --force to overwrite it") from None
    except OSError as exc:
        raise UserError(f"{args.output}: cannot write: {exc.strerror or exc}") from None
    print(
        f"ctl gen: wrote {args.output}: {topology.shape()}, {len(topology)} nodes, {topology.edge_count} edges",
        file=sys.stderr,
    )
    return 0


def _cpu_range(text: str) -> tuple[int, int]:
    """ "2-6" -> (2, 6); "4" -> (4, 4)."""
    from daemon.errors import BadInput

    low, sep, high = text.partition("-")
    try:
        lo = int(low)
        hi = int(high) if sep else lo
    except ValueError:
        raise BadInput(f"--cpus must be MIN-MAX, such as 1-8, got {text!r}") from None
    if lo < 1 or lo > hi:
        raise BadInput(f"--cpus must be MIN-MAX with 1 <= MIN <= MAX, got {text!r}")
    return lo, hi


def _first(names: tuple[str, ...], k: int) -> list[str]:
    return list(names[:k]) + ([f"... ({len(names)} in all)"] if len(names) > k else [])
