"""echofinn's node side: the wave algorithms, their drivers and the processes that run them.

Layers, from the inside out:

- ``daemon.core``      pure state machines: echo and Finn waves, the task board with its
                       exactly-once hand-off, the balancer's plan. No socket, clock,
                       random generator or event loop is imported there.
- ``daemon.topology``  topology files (TOML): load, validate, write.
- ``daemon.sim``       the seeded discrete-event simulator that drives the core.
- ``daemon.wire``      the wire format: the only module that knows msgpack.
- ``daemon.node``      the ZeroMQ driver: one node daemon (``python -m daemon``).
- ``daemon.cluster``   the supervisor: starts, watches, restarts and stops one cluster's
                       daemon processes on a host (``python -m daemon.supervisor``).
"""
