"""The pure core: state machines that take an event (and the time, where it matters) and
return what to send and what to do. Nothing here imports a socket, a clock, a random
generator or an event loop; ``tests/core/test_purity.py`` checks that."""
