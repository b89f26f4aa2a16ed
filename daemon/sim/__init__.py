"""The seeded discrete-event simulator: drives the pure core (``daemon.core``) with an
event queue keyed (time, sequence) and seeded delays, reorderings and duplicates."""
