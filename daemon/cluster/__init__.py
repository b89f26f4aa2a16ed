"""The middle layer: one cluster's processes on one host, supervised.

One module a job (ARCHITECTURE.md, "The supervisor's package"):

- ``hosts``      which nodes of a topology run on this host (light: ``ctl`` imports it
                 without the supervisor, the zygote, the node daemon or ZeroMQ)
- ``process``    one supervised process and its restart policy: the state machine, its
                 transition table in one place
- ``record``     ``cluster.json``'s schema as dataclasses, read and checked by ``ctl``
- ``supervisor`` the event loop: start, ready lines, reaping, restarts, stop
- ``spawn``      making a node daemon process (forked or exec'd); clearing old journals
- ``children``   the processes by pid: reaped on exit, signalled only while unreaped
- ``fds``        the loop's descriptors: poll past FD_SETSIZE, signals as bytes on a pipe
- ``runfolder``  the supervisor's hold on its run directory: claim, record, keys, log
- ``balancer``   balancing rounds on a thread of their own
- ``control``    the operator's requests (``ctl stop|start|restart NODE``): a request file
                 in the run directory and SIGUSR1, answered by a reply file (light: ``ctl``
                 imports it)

This package's ``__init__`` imports nothing, so importing ``daemon.cluster.hosts`` or
``daemon.cluster.record`` costs only those modules.
"""
