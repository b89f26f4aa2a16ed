"""``ctl demo [TOPOLOGY.toml] [--no-top]``: the README's walkthrough, run for real.

Starts the cluster, looks at it with an echo wave, submits a burst of tasks at the
node with the fewest CPUs, looks again, runs one balancing round, runs a Finn wave, then
opens ``ctl top`` when the output is a terminal (``q`` quits) or prints one frame when it
is not, and stops the cluster — also on Ctrl-C or an error. Each step prints the command
it runs, so the demo doubles as a tour of ``ctl``.
"""

ORDER = 90
HELP = "run the walkthrough: start, burst, echo, rebalance, Finn, top, stop"
DESCRIPTION = __doc__


def add_arguments(p):
    from ctl.shipped import help_text

    p.add_argument("topology", nargs="?", default="demo", metavar="TOPOLOGY", help=help_text() + " (default: demo, 15 nodes)")
    p.add_argument("--no-top", action="store_true", help="print one frame instead of opening the live view")
    p.add_argument("--burst", type=int, default=24, metavar="N", help="tasks in the burst (default 24)")


def run(args) -> int:
    import sys

    from ctl.cli import main as ctl
    from daemon.topology import load

    from ctl.shipped import topology_path

    topology = load(topology_path(args.topology))  # a bad file fails here, before anything starts
    path = topology.path or args.topology
    small = min(topology.names, key=lambda n: (topology.node(n).cpus, topology.names.index(n)))

    def step(*argv: str) -> int:
        try:
            print(f"\n$ ctl {' '.join(argv)}", flush=True)
        except OSError:
            pass  # the terminal is gone (SIGHUP): the step must run all the same
        return ctl(list(argv))

    if step("start", path):
        return 1
    try:
        for argv in (
            ("echo", "-t", path),
            ("submit", small, "--tasks", str(args.burst), "--cost", "3", "-t", path),
            ("echo", "-t", path),
            ("rebalance", "-t", path),
            ("finn", "--tasks", "1", "-t", path),
        ):
            if step(*argv) not in (0,):
                return 1
        interactive = sys.stdout.isatty() and sys.stdin.isatty() and not args.no_top
        step("top", "-t", path) if interactive else step("top", "--once", "-t", path)
    finally:
        try:
            step("stop", "-t", path)
        except OSError:
            pass  # stopped; only its report could not be printed
    return 0
