"""How a run over several servers sizes its parts and decides when a server takes more.

Guided self-scheduling weighted by throughput: a server's next part is a fraction of its
share of the runs nobody has taken yet, its share being its observed rate (runs finished per
second of its busy time) over the sum of the rates of the servers still in the run. Parts
therefore shrink toward the end of the run, and a slow server gets small ones, so the last
parts finish at about the same time everywhere. Before a server has been measured it gets an
even share, in smaller "probe" parts. A measured server's part lasts at least
:data:`MIN_PART_SECONDS` (fewer, larger parts where parts are cheap to make). A part is at
most :data:`MAX_PART` runs (one ``enqueue_batch``).

Pulling: a server always has one part of the run in flight; it takes another (its second
slot, so that generating and downloading overlap) only when what it still has to make, its
own queue included (items other users put there), would be done within :data:`HORIZON`
seconds at its rate. A server whose queue holds others' items does not start on the run while
another server has an empty queue.

All functions here are pure (no I/O): :class:`~invokeai_py_client.run.multi.MultiRun` feeds
them what it measured.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "HORIZON",
    "MAX_PART",
    "Throughput",
    "may_pull",
    "next_part_size",
    "water_fill",
]

#: a part is 1/GUIDE of the server's share of the runs left
GUIDE = 4
#: before a server is measured its parts are PROBE times smaller still
PROBE = 2
#: one enqueue_batch at most
MAX_PART = 1000
#: a measured server's part takes at least this long at its rate
MIN_PART_SECONDS = 1.0
#: a busy server takes its next part when its backlog drains within this many seconds
HORIZON = 1.0
#: seconds of busy time before a rate counts as measured
MEASURE_AFTER = 0.5


@dataclass(slots=True)
class Throughput:
    """A server's busy time in this run (seconds with at least one part in flight)."""

    in_flight: int = 0
    busy: float = 0.0
    since: float | None = None

    def begin(self, now: float) -> None:
        """A part starts on the server."""
        if self.in_flight == 0:
            self.since = now
        self.in_flight += 1

    def end(self, now: float) -> None:
        """A part of the server ended (finished, given back or cancelled)."""
        self.in_flight = max(0, self.in_flight - 1)
        if self.in_flight == 0 and self.since is not None:
            self.busy += now - self.since
            self.since = None

    def busy_time(self, now: float) -> float:
        """Seconds the server has had work of the run so far."""
        return self.busy + (now - self.since if self.since is not None else 0.0)

    def rate(self, finished: int, now: float) -> float | None:
        """Runs per second, ``None`` until measured.

        With nothing finished yet after :data:`MEASURE_AFTER` seconds the rate is taken as
        one run per busy time so far (an upper bound that keeps falling while it stays so).
        """
        elapsed = self.busy_time(now)
        if elapsed < MEASURE_AFTER:
            return None
        return max(finished, 1) / elapsed


def next_part_size(
    remaining: int, rates: Mapping[str, float | None], me: str, *, cap: int = MAX_PART
) -> int:
    """How many of the ``remaining`` unassigned runs server ``me`` takes next.

    ``rates`` holds every server still in the run (``me`` included), ``None`` for one not
    measured yet.
    """
    if remaining <= 0:
        return 0
    known = [r for r in rates.values() if r is not None and r > 0]
    mine = rates.get(me)
    if mine is None or mine <= 0:
        size = math.ceil(remaining / max(1, len(rates)) / (GUIDE * PROBE))
    else:
        guess = sum(known) / len(known)
        total = sum(r if r is not None and r > 0 else guess for r in rates.values())
        size = math.ceil(remaining * mine / total / GUIDE)
        size = max(size, math.ceil(mine * MIN_PART_SECONDS))
    return max(1, min(size, remaining, cap))


def may_pull(
    own: int, foreign: int, rate: float | None, *, others_idle: bool, has_part: bool
) -> bool:
    """Whether a server takes another part now.

    ``own``: runs of the run it still has to make (sent or not); ``foreign``: other items
    pending or running on its queue; ``rate``: its runs/s (``None``: not measured);
    ``others_idle``: another server of the run has no foreign items; ``has_part``: it has a
    part of the run in flight.
    """
    backlog = own + foreign
    if backlog == 0:
        return True
    if rate is not None and backlog / rate <= HORIZON:
        return True
    if has_part:
        return False
    # nothing of ours in flight: wait in line only when every other server is as busy
    return foreign == 0 or not others_idle


def water_fill(count: int, depths: Sequence[int]) -> list[int]:
    """Share ``count`` runs out so that the queues end as even as possible.

    ``depths`` are the items already pending on each server; a server with a deep queue gets
    fewer runs (none when the others can take everything before reaching its depth).
    """
    n = len(depths)
    if n == 0:
        return []
    shares = [0] * n
    order = sorted(range(n), key=lambda i: depths[i])
    left = count
    # raise the lowest queues to the next level until the runs are gone
    level = depths[order[0]]
    k = 1
    while left > 0:
        while k < n and depths[order[k]] <= level:
            k += 1
        room = (depths[order[k]] - level) * k if k < n else left
        step = min(left, room)
        per, extra = divmod(step, k)
        for j, i in enumerate(order[:k]):
            shares[i] += per + (1 if j < extra else 0)
        left -= step
        level = depths[order[k]] if k < n and step == room else level + per
    return shares
