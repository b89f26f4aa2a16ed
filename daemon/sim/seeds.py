"""Sub-seeds: one random stream per concern, all derived from the run's seed.

Theory of operation (TigerBeetle's VOPR, FoundationDB's simulator): a run is one
integer seed. Each concern that draws random numbers — the generated topology, the
network's delays, its duplicates — gets its own generator seeded by a hash of the run
seed and the concern's name, so that changing how one concern draws (say, turning
duplicates on) leaves every other concern's draws exactly as they were.

The hash is SHA-256, not ``hash()``: Python randomises string hashing per process, and
a seed must mean the same run on every machine and in every process.
"""

from __future__ import annotations

import hashlib

TOPOLOGY = "topology"
NETWORK_DELAYS = "network-delays"
NETWORK_DUPLICATES = "network-duplicates"


def subseed(seed: int, concern: str) -> int:
    """A 64-bit seed for ``concern``'s random stream in the run with seed ``seed``."""
    digest = hashlib.sha256(f"{int(seed)}/{concern}".encode()).digest()
    return int.from_bytes(digest[:8], "big")
