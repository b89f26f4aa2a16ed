"""What the wave state machines share: the step they return and the error they raise."""

from __future__ import annotations

from typing import Hashable, NamedTuple


class Step(NamedTuple):
    """The outcome of one event at one node.

    ``sends`` lists ``(destination, message)`` pairs, in the order they are to be sent;
    ``decided`` is true on the one step where the node decides, and only there.
    """

    sends: list[tuple[Hashable, object]]
    decided: bool = False


NOTHING = Step([], False)


class WaveError(Exception):
    """A message that the algorithm cannot accept (it names the node, wave and sender).

    Drivers treat it as garbage from the network: count it and drop it.
    """


# Wave ids: "<kind>-<start time in ns, hex>-<random>". Unique, and a node can tell a wave
# that began before the node itself started — the backlog a DEALER delivers to a restarted
# peer (ARCHITECTURE.md, "Sockets") — and drop it.


def new_wave_id(kind: str, now_ns: int, salt: str) -> str:
    return f"{kind}-{now_ns:x}-{salt}"


def wave_started(wave: str) -> int | None:
    """The start time (ns) in a wave id, or None if the id is not of this form."""
    parts = wave.split("-")
    if len(parts) != 3 or not 0 < len(parts[1]) <= 20:
        return None
    try:
        return int(parts[1], 16)
    except ValueError:
        return None


def round_of(move_id: str) -> str:
    """The balancing round a move belongs to: an operator names a round's moves
    ``<round id>-<k>``, the round id a wave id of kind ``m`` (daemon/operator.py); any
    other move id is a round of its own."""
    head, _, tail = move_id.rpartition("-")
    return head if tail.isdigit() and wave_started(head) is not None else move_id
