"""The live progress display of ``ivk run`` / ``ivk resume`` (rich), and its JSON twin.

Three outputs, chosen by where stderr goes:

- a terminal: a live display (redrawn 8 times a second) with done / failed / remaining, a
  bar, the rate, the ETA and the current item's node progress; it stays on screen at the end;
- anything else (a pipe, a log file): plain lines without escape codes, one when the counts
  changed and at most one every :data:`PLAIN_EVERY` seconds, and always a final line;
- ``--json``: the same numbers as ``progress`` lines on stdout (at most 4 a second) and each
  finished item as an ``item`` line.

The rate counts only what finished while this display watched (a resumed run's earlier runs
are left out) over about the last :data:`RATE_WINDOW` seconds; the rate and the ETA show as
``--`` until :data:`MIN_SAMPLES` observations of the finished count exist, and the ETA also
while nothing finishes.

Example::

    with ProgressView(plan.count, json_mode=False, title="blur") as view:
        view.set_counts(total=6, done=2, failed=1, canceled=0, images=2)
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.text import Text

from ._common import emit, stderr

__all__ = ["MIN_SAMPLES", "PLAIN_EVERY", "RATE_WINDOW", "ProgressView", "RunCounts"]

#: seconds between two plain progress lines when stderr is not a terminal
PLAIN_EVERY = 10.0
#: the rate is measured over about this many recent seconds
RATE_WINDOW = 60.0
#: observations of the finished count (the first one included) before a rate is shown
MIN_SAMPLES = 3


@dataclass
class RunCounts:
    """What the display shows (updated from the run's progress callback).

    Call :meth:`observe` after changing the counts: it records a sample for the rate.
    """

    total: int = 0
    done: int = 0
    failed: int = 0
    canceled: int = 0
    images: int = 0
    node: str = ""
    node_pct: float | None = None
    item_id: int | None = None
    clock: Callable[[], float] = field(default=time.monotonic, repr=False, compare=False)
    started: float | None = None
    samples: deque[tuple[float, int]] = field(default_factory=deque, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.started is None:
            self.started = self.clock()

    @property
    def finished(self) -> int:
        """Items that reached an end state."""
        return self.done + self.failed + self.canceled

    @property
    def remaining(self) -> int:
        """Items not finished yet."""
        return max(0, self.total - self.finished)

    @property
    def elapsed(self) -> float:
        """Seconds since the display started."""
        return self.clock() - (self.started or 0.0)

    def observe(self) -> None:
        """Record ``(now, finished)`` when the finished count changed (a sample for the rate).

        A count that went down (canceled runs queued again by a resume) starts the rate anew.
        """
        now, finished, s = self.clock(), self.finished, self.samples
        if s and s[-1][1] == finished:
            return
        if s and finished < s[-1][1]:
            s.clear()
        s.append((now, finished))
        while len(s) > MIN_SAMPLES and s[1][0] < now - RATE_WINDOW:
            s.popleft()

    @property
    def rate(self) -> float:
        """Items finished per second lately (0.0 until :data:`MIN_SAMPLES` samples exist)."""
        s = self.samples
        if len(s) < MIN_SAMPLES:
            return 0.0
        (t0, f0), (_, f1) = s[0], s[-1]
        span = self.clock() - t0
        return (f1 - f0) / span if span > 0 and f1 > f0 else 0.0

    @property
    def eta(self) -> float | None:
        """Seconds until every item is finished at the current rate (None when unknown)."""
        if not self.remaining:
            return 0.0
        r = self.rate
        return self.remaining / r if r > 0 else None

    def to_json(self) -> dict[str, Any]:
        """The counts as a ``progress`` JSON object."""
        eta = self.eta
        return {
            "type": "progress",
            "total": self.total,
            "done": self.done,
            "failed": self.failed,
            "canceled": self.canceled,
            "remaining": self.remaining,
            "images": self.images,
            "rate": round(self.rate, 3),
            "eta_s": None if eta is None else round(eta, 1),
            "node": self.node or None,
            "node_progress": self.node_pct,
        }


def _fmt_duration(seconds: float | None) -> str:
    """``M:SS`` or ``H:MM:SS``; ``--:--`` when unknown."""
    if seconds is None:
        return "--:--"
    s = int(seconds)
    return (
        f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"
    )


def _fmt_rate(c: RunCounts) -> str:
    """``--`` while unknown; two decimals, or two significant digits below 0.1 (slow models)."""
    r = c.rate
    if r <= 0:
        return "--"
    return f"{r:.2f}" if r >= 0.1 else f"{r:.{1 - math.floor(math.log10(r))}f}"


def _fmt_time(c: RunCounts) -> str:
    """``took M:SS`` once nothing remains, else ``ETA M:SS`` (``--:--`` when unknown)."""
    if not c.remaining:
        return f"took {_fmt_duration(c.elapsed)}"
    return f"ETA {_fmt_duration(c.eta)}"


class ProgressView:
    """A context manager that shows :class:`RunCounts` live (or as plain or JSON lines).

    Call :meth:`set_counts` with the run's progress, :meth:`node_progress` with node events
    and :meth:`item` for finished items.

    Args:
        total: the runs planned.
        json_mode: ``progress`` / ``item`` JSON lines on stdout instead of a display.
        title: the first word of the display (the output directory's name).
        console: where the display goes (default: ``ivk``'s stderr console).
        clock: seconds, monotonic (default :func:`time.monotonic`).
        plain_every: seconds between two plain lines when ``console`` is not a terminal.
    """

    def __init__(
        self,
        total: int,
        *,
        json_mode: bool,
        title: str = "run",
        console: Console | None = None,
        clock: Callable[[], float] = time.monotonic,
        plain_every: float = PLAIN_EVERY,
    ) -> None:
        self.counts = RunCounts(total=total, clock=clock)
        self.json_mode = json_mode
        self.title = title
        self.console = console if console is not None else stderr
        self.plain_every = plain_every
        self._clock = clock
        self._live: Live | None = None
        self._last_emit: float | None = None
        self._last_shown: tuple[int, ...] | None = None

    def __enter__(self) -> ProgressView:
        if not self.json_mode and self.console.is_terminal:
            # the Live redraws this view (``__rich__``) by itself, 8 times a second
            self._live = Live(self, console=self.console, refresh_per_second=8, transient=False)
            self._live.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._live is not None:
            self._live.__exit__(exc_type, exc, tb)  # draws the final state and leaves it
            self._live = None
        elif not self.json_mode and (
            self._shown_key() != self._last_shown or self.counts.remaining
        ):
            self._print_line()  # the final line (unless the last line already said it all)
        if self.json_mode:
            emit(self.counts.to_json())

    def line(self) -> str:
        """The counts as one plain line (what a pipe or a log file gets)."""
        c = self.counts
        return (
            f"{self.title}: {c.done} done, {c.failed} failed, {c.canceled} canceled, "
            f"{c.remaining} remaining of {c.total} | {_fmt_rate(c)}/s | {_fmt_time(c)}"
        )

    def __rich__(self) -> Group:
        """The live display: a head line, a bar and the current item's node."""
        c = self.counts
        bar = ProgressBar(total=max(1, c.total), completed=c.finished, width=40)
        head = Text.assemble(
            (f"{self.title} ", "bold"),
            (f"{c.done} done", "green"),
            "  ",
            (f"{c.failed} failed", "red" if c.failed else "dim"),
            "  ",
            (f"{c.canceled} canceled  " if c.canceled else "", "yellow"),
            (f"{c.remaining} remaining", "cyan"),
            f"  of {c.total}   {_fmt_rate(c)} items/s   {_fmt_time(c)}",
        )
        parts: list[Any] = [head, bar]
        if c.node and c.remaining:
            pct = "" if c.node_pct is None else f" {c.node_pct * 100:.0f}%"
            parts.append(Text(f"item {c.item_id}: {c.node}{pct}", style="dim"))
        return Group(*parts)

    def _shown_key(self) -> tuple[int, ...]:
        c = self.counts
        return (c.total, c.done, c.failed, c.canceled)

    def _print_line(self) -> None:
        self._last_shown = self._shown_key()
        self._last_emit = self._clock()
        self.console.print(self.line(), markup=False, highlight=False)

    def refresh(self, force: bool = False) -> None:
        """Show the counts now if it is time (``force``: now, whatever the time).

        Live: redrawn by the Live itself (``force`` redraws at once). Plain: a line when the
        counts changed, at most every ``plain_every`` seconds. JSON: a ``progress`` line at
        most 4 times a second.
        """
        if self._live is not None:
            if force:
                self._live.refresh()
            return
        now = self._clock()
        due = self._last_emit is None or force
        if self.json_mode:
            if due or now - (self._last_emit or 0.0) >= 0.25:
                self._last_emit = now
                emit(self.counts.to_json())
            return
        if self._shown_key() == self._last_shown and not force:
            return
        if due or now - (self._last_emit or 0.0) >= self.plain_every:
            self._print_line()

    def set_counts(self, **counts: int) -> None:
        """Set any of total / done / failed / canceled / images."""
        for k, v in counts.items():
            setattr(self.counts, k, int(v))
        self.counts.observe()
        self.refresh()

    def node_progress(self, item_id: int | None, node: str, pct: float | None) -> None:
        """The node the current item is running, and its progress (0..1) if known."""
        self.counts.item_id, self.counts.node, self.counts.node_pct = item_id, node, pct
        self.refresh()

    def item(self, row: Mapping[str, Any]) -> None:
        """A finished item (a manifest-like row): JSON line, or a line for a failed one."""
        if self.json_mode:
            emit({"type": "item", **row})
        elif row.get("status") == "failed":
            msg = f"item {row.get('item_id')} failed: {row.get('error_type')}: "
            msg += str(row.get("error_message") or "")[:200]
            self.console.print(msg, markup=False, highlight=False, style="red")
