"""``python -m daemon --topology FILE --node NAME``: run one node daemon."""

from daemon.node import main

raise SystemExit(main())
