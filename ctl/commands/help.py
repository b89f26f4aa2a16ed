"""``ctl help [COMMAND...]``: the help of ``ctl``, or of a command (``ctl help sim chaos``).

Prints what ``ctl COMMAND --help`` prints, exit 0; an unknown command is named with the
commands there are (exit 2).
"""

ORDER = 98
HELP = "show the help of ctl, or of a command (ctl help sim chaos)"
DESCRIPTION = __doc__


def add_arguments(p):
    p.add_argument("topic", nargs="*", metavar="COMMAND", help="a command, and its subcommand if it has some")


def run(args) -> int:
    from ctl.cli import build_parser, subcommands
    from daemon.errors import BadInput

    parser = build_parser()
    for word in args.topic:
        choices = subcommands(parser)
        if word not in choices:
            where = parser.prog
            known = ", ".join(choices) or "none"
            raise BadInput(f"{where} has no command {word!r}; its commands: {known}")
        parser = choices[word]
    parser.print_help()
    return 0
