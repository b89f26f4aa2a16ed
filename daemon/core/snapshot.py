"""What an echo wave collects, and the one way every part of the project reads it.

A node's entry in an echo's convergecast is a :class:`NodeSample` (made by
``TaskBoard.sample`` and completed by the node core, daemon/core/node.py); the operator
gathers them into a :class:`Snapshot` (daemon/operator.py). They travel as msgpack maps
and are printed as JSON, so they are typed dicts: the fields are named and documented
here once.

Two rules read samples, and every reader — the balancer's plan (daemon/core/plan.py),
the accounting (daemon/core/tasks.py ``account``), the simulator, ``ctl echo``,
``ctl rebalance`` and ``ctl top`` — uses these functions for them:

- **In flight** (:func:`in_flight`): the tasks of a move its donor still reports
  ``outgoing`` while no node reports the move ``unconfirmed``. Such tasks are in no
  queue; they count once, at their destination. Once the destination reports the move
  unconfirmed, the tasks are in its queue and the donor's entry no longer counts.
- **Refused keys** (:func:`refused_keys`, :func:`refusal_text`): the pairs [who refused,
  whose key] that samples and pongs report for links whose handshake failed, each once,
  and how they are said.
- **Imbalance** (:func:`imbalance`): the largest remaining work per CPU over the nodes,
  divided by the cluster's work per CPU (total work over total CPUs), with work in
  flight counted at its destination. 1.0 is perfect balance; None means no work at all.
  Work, not task counts: it is what the plan balances and what the makespan follows.
- **The last Finn wave and balancing round** (:func:`last_finn`, :func:`last_round`):
  read from what the nodes say they did (``last_finn``, ``last_round`` in each sample,
  daemon/core/node.py), never from the memory of whichever client started them; the
  latest by the id's start time, with how many sampled nodes report it and their sums.
  A fact that is not shaped as daemon/core/messages.py ``fact_ok`` says is left out.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, TypedDict

from daemon.core.messages import LAST_FINN, LAST_ROUND, fact_ok
from daemon.core.waves import wave_started


class NodeSample(TypedDict, total=False):
    """One node's state as an echo wave sampled it."""

    name: str
    father: str | None  # in the wave's spanning tree (None at the initiator)
    parents: list[str]  # in the topology (added by the operator)
    cpus: int
    running: int  # tasks holding a CPU slot
    queued: int
    done: int
    submitted: int  # tasks created at this node (submit, Finn, initial)
    work: float  # seconds of work left: running remainders plus the queue
    load: float  # (running + queued) / cpus
    outgoing: list[list[Any]]  # [move id, destination, task count, work] not acknowledged yet
    unconfirmed: list[str]  # move ids accepted here whose FORGET has not come
    running_tasks: list[list[Any]]  # [task id, seconds left] (only when the wave asked for detail)
    queued_tasks: list[list[Any]]  # [task id, cost] in queue order (idem; up to a limit, see tasks.py)
    queue_runs: list[list[float]]  # [cost, count] runs of the whole queue, at most 32 (idem)
    pid: int
    cpu_percent: float | None  # psutil: the node and its burner, % of one core
    sent: int  # messages this node sent in the wave
    missing: list[str]  # neighbours this node gave up on at the wave's deadline
    last_finn: list[Any]  # messages.LAST_FINN: [wave, decided at, tasks enqueued, sends] (absent: none yet)
    last_round: list[Any]  # messages.LAST_ROUND: [round, at, moves out, tasks out, moves in, tasks in]
    refused: list[list[str]]  # [who refused, whose key] per link of this node whose handshake failed
    # (only when there is one; at most messages.MAX_REFUSALS): a stale or foreign key


class Snapshot(TypedDict):
    """One echo wave's result, as ``Operator.echo`` returns it."""

    cluster: str
    wave: str
    initiator: str
    complete: bool  # every node of the topology is in ``nodes``
    missing: list[str]  # the nodes that are not
    messages: int
    elapsed_ms: float
    time: float
    nodes: list[NodeSample]


STALE = "a stale or foreign key"
OPERATOR = "operator"  # who a refused handshake names for the operator's key (daemon/security.py)


def refusal_text(refuser: str, refused: str) -> str:
    """A refused handshake, [who refused, whose key], in words for people (``ctl echo``,
    ``status``, ``top``, the nodes' logs)."""
    if refused == OPERATOR:
        return f"{refuser} refused the operator key ({STALE})"
    if refuser == OPERATOR:
        return f"the operator refused {refused}'s key: not the one in its keys/nodes/{refused}.key ({STALE})"
    return f"{refuser} refused {refused}'s key ({STALE})"


def unexplained(missing: Iterable[str], refused: Iterable[Iterable[str]]) -> list[str]:
    """The nodes of ``missing`` that no refused handshake names: silent, for all anyone
    can tell (the others are said with :func:`refusal_text`)."""
    named = {name for pair in refused for name in pair}
    return [name for name in missing if name not in named]


def refused_keys(
    samples: Iterable[dict[str, Any]], pongs: Iterable[dict[str, Any] | None] = ()
) -> list[tuple[str, str]]:
    """Every (who refused, whose key) that echo samples and pongs report, each once, in
    the order first seen: the one reading of ``refused`` (``ctl echo``, ``status``, ``top``)."""
    pairs: dict[tuple[str, str], None] = {}
    for entry in [*samples, *pongs]:
        for pair in (entry or {}).get("refused") or ():
            if len(pair) == 2 and all(isinstance(x, str) for x in pair):
                pairs[(pair[0], pair[1])] = None
    return list(pairs)


def in_flight(samples: Iterable[dict[str, Any]]) -> dict[str, tuple[int, float]]:
    """Destination -> (tasks, seconds of work) in flight to it (the module text's rule).
    A sample lists each move it still has outgoing as [move id, destination, task
    count, work]."""
    samples = list(samples)
    unconfirmed = {move_id for s in samples for move_id in s["unconfirmed"]}
    flying: dict[str, tuple[int, float]] = {}
    for s in samples:
        for move_id, dest, count, work in s["outgoing"]:
            if move_id not in unconfirmed and count > 0:
                tasks, seconds = flying.get(dest, (0, 0.0))
                flying[dest] = (tasks + int(count), seconds + float(work))
    return flying


def imbalance(samples: Iterable[dict[str, Any]]) -> float | None:
    """Max over average of work per CPU, in-flight work at its destination (module text)."""
    samples = list(samples)
    flying = in_flight(samples)
    work = [s["work"] + flying.get(s["name"], (0, 0.0))[1] for s in samples]
    if not samples or sum(work) <= 0:
        return None
    return imbalance_of(work, [s["cpus"] for s in samples])


def imbalance_of(work: list[float], cpus: list[int], total_cpus: int | None = None) -> float:
    """Max over nodes of work per CPU, divided by total work over total CPUs; 1.0 when
    there is no work. With ``total_cpus``, the cluster has more CPUs, on idle nodes not
    listed."""
    total = sum(work)
    if not work or total <= 0:
        return 1.0
    return max(w / c for w, c in zip(work, cpus)) / (total / (total_cpus or sum(cpus)))


def load_cv_of(work: list[float], cpus: list[int], nodes: int | None = None) -> float:
    """Coefficient of variation (population standard deviation over mean) of work per
    CPU across nodes, each node counting once; 0.0 when all are idle. With ``nodes``,
    the cluster has that many nodes, the ones not listed idle."""
    per_cpu = [w / c for w, c in zip(work, cpus)]
    count = nodes or len(per_cpu)
    if not count:
        return 0.0
    mean = sum(per_cpu) / count
    if mean <= 0:
        return 0.0
    spread = sum((x - mean) ** 2 for x in per_cpu) + (count - len(per_cpu)) * mean**2
    return math.sqrt(spread / count) / mean


def _latest(
    samples: Iterable[dict[str, Any]], key: str, fields: tuple[str, ...]
) -> tuple[str | None, list[tuple[str, list[Any]]]]:
    """The id that started last among the samples' well-formed ``key`` facts, and the
    (node, fact) pairs that report it."""
    # what fact_ok lets through: a list whose first item is the id (a str)
    facts: list[tuple[Any, Any]] = [(s.get("name"), s.get(key)) for s in samples if fact_ok(s.get(key), fields)]
    if not facts:
        return None, []
    latest = max((f[0] for _, f in facts), key=lambda ident: (wave_started(ident) or 0, ident))
    return latest, [(name, f) for name, f in facts if f[0] == latest]


def last_finn(samples: Iterable[dict[str, Any]]) -> dict[str, Any] | None:
    """The Finn wave that started last among those the sampled nodes decided: ``wave``,
    ``started`` (unix seconds, from its id; None if the id has no time), ``decided`` (the
    nodes that report it), ``enqueued`` and ``messages`` (their sums), ``at`` (the latest
    decision, by the deciding node's clock). None if no node reports one."""
    wave, facts = _latest(samples, "last_finn", LAST_FINN)
    if wave is None:
        return None
    started = wave_started(wave)
    return {
        "wave": wave,
        "started": None if started is None else started / 1e9,
        "decided": sorted(name for name, _ in facts),
        "enqueued": sum(f[2] for _, f in facts),
        "messages": sum(f[3] for _, f in facts),
        "at": max(f[1] for _, f in facts),
    }


def last_round(samples: Iterable[dict[str, Any]]) -> dict[str, Any] | None:
    """The balancing round that started last among those in which the sampled nodes
    moved tasks: ``round_id``, ``started`` (as for :func:`last_finn`), ``moves`` and
    ``tasks`` (sent, summed over the donors), ``received`` (tasks accepted, summed over
    the destinations: less than ``tasks`` while some are in flight, or at a node not
    sampled), ``nodes`` (those that report it), ``at``. None if no node reports one."""
    rnd, facts = _latest(samples, "last_round", LAST_ROUND)
    if rnd is None:
        return None
    started = wave_started(rnd)
    return {
        "round_id": rnd,
        "started": None if started is None else started / 1e9,
        "moves": sum(f[2] for _, f in facts),
        "tasks": sum(f[3] for _, f in facts),
        "received": sum(f[5] for _, f in facts),
        "nodes": sorted(name for name, _ in facts),
        "at": max(f[1] for _, f in facts),
    }
