"""The echo and Finn messages as the node core takes and gives them, built the way the
tests wrote them before the waves became kinds of daemon/core/wave.py: one generic
``WaveStart``/``WaveMessage``/``WaveDecided`` (daemon/core/messages.py) around the
kind's own message (daemon/core/echo.py ``Explore``/``Echo``, daemon/core/finn.py
``FinnSets``) and its parameters.

``FINN_TIMEOUT`` is the budget a Finn start gives (Finn sets no deadline: the budget only
travels), ``FINN_BUDGET`` what its first hop carries (daemon/core/node.py hop_budget).
"""

from __future__ import annotations

from daemon.core import messages as m
from daemon.core.echo import Echo as EchoBody
from daemon.core.echo import Explore as ExploreBody
from daemon.core.finn import FinnSets
from daemon.core.node import hop_budget

FINN_TIMEOUT = 60.0
FINN_BUDGET = hop_budget(FINN_TIMEOUT)


def EchoStart(wave: str, detail: bool, timeout: float) -> m.WaveStart:
    return m.WaveStart(wave, "echo", {"detail": detail}, timeout)


def FinnStart(wave: str, tasks: int, cost: float, report: bytes = b"", timeout: float = FINN_TIMEOUT) -> m.WaveStart:
    """A Finn start (its decisions go to whoever sends it: ``report`` is that sender)."""
    return m.WaveStart(wave, "finn", {"tasks": tasks, "cost": cost}, timeout)


def Explore(wave: str, detail: bool, budget: float, report: bytes = b"") -> m.WaveMessage:
    return m.WaveMessage(wave, ExploreBody(wave), {"detail": detail}, budget, report)


def Echo(wave: str, entries) -> m.WaveMessage:
    """An ECHO: it cannot bring the wave to a node, so it carries no parameters, budget or report."""
    return m.WaveMessage(wave, EchoBody(wave, entries), {}, None, b"")


def Finn(wave: str, inc, ninc, tasks: int, cost: float, report: bytes = b"", budget=FINN_BUDGET) -> m.WaveMessage:
    return m.WaveMessage(wave, FinnSets(wave, inc, ninc), {"tasks": tasks, "cost": cost}, budget, report)


def FinnDecided(wave: str, node: str, sent: int, enqueued: list) -> m.WaveDecided:
    return m.WaveDecided(wave, "finn", node, {"sent": sent, "enqueued": enqueued})


def is_explore(msg) -> bool:
    return type(msg) is m.WaveMessage and type(msg.body) is ExploreBody


def is_echo(msg) -> bool:
    return type(msg) is m.WaveMessage and type(msg.body) is EchoBody


def is_finn(msg) -> bool:
    return type(msg) is m.WaveMessage and type(msg.body) is FinnSets


def is_echo_result(msg) -> bool:
    return type(msg) is m.WaveDecided and msg.kind == "echo"


def is_finn_decided(msg) -> bool:
    return type(msg) is m.WaveDecided and msg.kind == "finn"


def entries(msg) -> tuple:
    """An ECHO's entries, or an echo result's (as the core made them: entries and runs)."""
    return msg.body.entries if type(msg) is m.WaveMessage else msg.result


# --- the same as frame fields (wire.encode(kind, epoch, **fields)) ----------------------


def explore_fields(wave: str, detail: bool, budget: float, report: bytes = b"") -> dict:
    """A ``wave`` frame holding an EXPLORE."""
    return dict(wave=wave, msg="explore", body=[], params={"detail": detail}, budget=budget, report=report)


def finn_fields(wave: str, inc, ninc, tasks: int, cost: float, report: bytes = b"", budget=FINN_BUDGET) -> dict:
    """A ``wave`` frame holding Finn's sets."""
    return dict(wave=wave, msg="finn", body=[list(inc), list(ninc)], params={"tasks": tasks, "cost": cost},
                budget=budget, report=report)


def finn_start_fields(wave: str, tasks: int, cost: float, timeout: float = FINN_TIMEOUT) -> dict:
    """A ``wave.start`` frame of a Finn wave."""
    return dict(wave=wave, kind="finn", params={"tasks": tasks, "cost": cost}, timeout=timeout, id=1)


def echo_start_fields(wave: str, detail: bool, timeout: float) -> dict:
    """A ``wave.start`` frame of an echo wave."""
    return dict(wave=wave, kind="echo", params={"detail": detail}, timeout=timeout, id=1)
