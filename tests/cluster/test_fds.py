"""The supervisor's descriptors past 1,024 (daemon/cluster/fds.py): a supervisor of more
than a thousand nodes holds more than 1,024 descriptors while they start, which
``select.select`` refuses and the common soft limit on open files forbids."""

from __future__ import annotations

import os
import resource

import pytest

from daemon.cluster.fds import raise_open_files_limit, readable_fds

HIGH_FD = 1_100  # past FD_SETSIZE


@pytest.fixture
def nofile():
    """The soft limit on open files, restored afterwards."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard <= HIGH_FD:
        pytest.skip(f"the hard limit on open files ({hard}) keeps descriptors below {HIGH_FD}")
    yield soft, hard
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_readable_fds_sees_descriptors_past_fd_setsize(nofile):
    resource.setrlimit(resource.RLIMIT_NOFILE, (HIGH_FD + 10, nofile[1]))
    r, w = os.pipe()
    quiet_r, quiet_w = os.pipe()
    try:
        os.dup2(r, HIGH_FD)
        assert readable_fds([HIGH_FD, quiet_r], 0.01) == []  # nothing written yet: time is up
        os.write(w, b"ready 1 tcp://127.0.0.1:1\n")
        assert readable_fds([quiet_r, HIGH_FD], 1.0) == [HIGH_FD]
        os.close(w)
        w = None
        os.read(HIGH_FD, 100)
        assert readable_fds([HIGH_FD], 1.0) == [HIGH_FD]  # end of file reads as readable, as in select
    finally:
        for fd in (r, quiet_r, quiet_w, HIGH_FD, w):
            if fd is not None:
                os.close(fd)


def test_the_open_files_limit_is_raised_for_a_large_cluster_and_never_lowered(nofile):
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, nofile[1]))
    raise_open_files_limit(10)  # 104 are enough
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == 256
    raise_open_files_limit(1_000)
    hard = nofile[1]
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == (4_064 if hard == resource.RLIM_INFINITY else min(4_064, hard))
