"""daemon/node.py without a cluster: the stop signal's handler, in this process."""

from __future__ import annotations

import os
import signal

import pytest

from daemon.node import NodeHost, Stopping


@pytest.fixture
def stop_signals():
    """SIGTERM's and SIGINT's handlers as they were, restored afterwards."""
    saved = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


@pytest.mark.parametrize("first, second", [(signal.SIGTERM, signal.SIGTERM), (signal.SIGTERM, signal.SIGINT),
                                           (signal.SIGINT, signal.SIGTERM)])
def test_a_second_stop_signal_does_not_interrupt_the_close(stop_signals, first, second):
    # As daemon/node.py's serve() installs it. Under Slurm, scancel signals the node and
    # its supervisor signals it again while it closes its burner and journal.
    host = NodeHost([])
    signal.signal(signal.SIGTERM, host.stop)
    signal.signal(signal.SIGINT, host.stop)
    with pytest.raises(Stopping):
        os.kill(os.getpid(), first)
    os.kill(os.getpid(), second)  # the close goes on: nothing is raised
    assert signal.getsignal(signal.SIGTERM) == signal.getsignal(signal.SIGINT) == signal.SIG_IGN
