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
