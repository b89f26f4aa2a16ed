"""One module per ``ctl`` command.

Each module defines ``ORDER`` (its place in ``ctl --help``), ``HELP`` (one line),
``DESCRIPTION`` (the longer text ``ctl CMD --help`` shows), ``add_arguments(parser)`` and
``run(args) -> int``. Heavy imports (zmq, blessed) go inside ``run`` so that
``ctl --help`` stays instant. ``ctl.cli`` discovers the modules; nothing else to register.
"""
