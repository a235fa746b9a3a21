"""The live progress display of ``ivk run`` / ``ivk resume`` (rich), and its JSON twin.

The display shows done / failed / remaining, the rate, the ETA and the current item's node
progress; in ``--json`` mode the same numbers are emitted as ``progress`` lines (at most a
few per second) and each finished item as an ``item`` line.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from rich.console import Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.text import Text

from ._common import emit, stderr

__all__ = ["ProgressView", "RunCounts"]


@dataclass
class RunCounts:
    """What the display shows (updated from the run's progress callback)."""

    total: int = 0
    done: int = 0
    failed: int = 0
    canceled: int = 0
    images: int = 0
    started: float = field(default_factory=time.monotonic)
    node: str = ""
    node_pct: float | None = None
    item_id: int | None = None

    @property
    def finished(self) -> int:
        """Items that reached an end state."""
        return self.done + self.failed + self.canceled

    @property
    def remaining(self) -> int:
        """Items not finished yet."""
        return max(0, self.total - self.finished)

    @property
    def rate(self) -> float:
        """Finished items per second since the display started."""
        elapsed = max(1e-6, time.monotonic() - self.started)
        return self.finished / elapsed

    @property
    def eta(self) -> float | None:
        """Seconds until every item is finished at the current rate (None when unknown)."""
        r = self.rate
        return self.remaining / r if r > 0 and self.finished else None

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


def _fmt_eta(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    s = int(seconds)
    return (
        f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"
    )


class ProgressView:
    """A context manager that shows :class:`RunCounts` live (or as JSON lines).

    Call :meth:`update` with the run's progress events; :meth:`item` for finished items.
    """

    def __init__(self, total: int, *, json_mode: bool, title: str = "run") -> None:
        self.counts = RunCounts(total=total)
        self.json_mode = json_mode
        self.title = title
        self._live: Live | None = None
        self._last_emit = 0.0

    def __enter__(self) -> ProgressView:
        if not self.json_mode and stderr.is_terminal:
            self._live = Live(self._render(), console=stderr, refresh_per_second=8, transient=False)
            self._live.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._live is not None:
            self._live.update(self._render())
            self._live.__exit__(exc_type, exc, tb)
            self._live = None
        elif not self.json_mode:
            stderr.print(self._line())
        if self.json_mode:
            emit(self.counts.to_json())

    def _line(self) -> str:
        c = self.counts
        return (
            f"{self.title}: {c.done} done, {c.failed} failed, {c.canceled} canceled, "
            f"{c.remaining} remaining of {c.total} | {c.rate:.2f}/s | ETA {_fmt_eta(c.eta)}"
        )

    def _render(self) -> Group:
        c = self.counts
        bar = ProgressBar(total=max(1, c.total), completed=c.finished, width=40)
        head = Text.assemble(
            (f"{self.title} ", "bold"),
            (f"{c.done} done", "green"),
            "  ",
            (f"{c.failed} failed", "red" if c.failed else "dim"),
            "  ",
            (f"{c.remaining} remaining", "cyan"),
            f"  of {c.total}   {c.rate:.2f} items/s   ETA {_fmt_eta(c.eta)}",
        )
        parts: list[Any] = [head, bar]
        if c.node and c.remaining:
            pct = "" if c.node_pct is None else f" {c.node_pct * 100:.0f}%"
            parts.append(Text(f"item {c.item_id}: {c.node}{pct}", style="dim"))
        return Group(*parts)

    def refresh(self, force: bool = False) -> None:
        """Redraw (or, in JSON mode, emit a progress line at most 4 times a second)."""
        if self._live is not None:
            self._live.update(self._render())
        elif self.json_mode:
            now = time.monotonic()
            if force or now - self._last_emit >= 0.25:
                self._last_emit = now
                emit(self.counts.to_json())

    def set_counts(self, **counts: int) -> None:
        """Set any of total / done / failed / canceled / images."""
        for k, v in counts.items():
            setattr(self.counts, k, int(v))
        self.refresh()

    def node_progress(self, item_id: int | None, node: str, pct: float | None) -> None:
        """The node the current item is running, and its progress (0..1) if known."""
        self.counts.item_id, self.counts.node, self.counts.node_pct = item_id, node, pct
        self.refresh()

    def item(self, row: Mapping[str, Any]) -> None:
        """A finished item (a manifest-like row): JSON line, or a line above the display."""
        if self.json_mode:
            emit({"type": "item", **row})
        elif row.get("status") == "failed":
            msg = f"item {row.get('item_id')} failed: {row.get('error_type')}: "
            msg += str(row.get("error_message") or "")[:200]
            stderr.print(msg, markup=False, style="red")
