"""The state of a run in progress: items, runs, files, and cheap outcome counters.

:class:`EngineState` is the base of :class:`~invokeai_py_client.run._engine.Engine`: it loads
the ledger, keeps each run's current item and outcome, and answers ``counts()`` /
``progress()`` / "is the run finished" in O(1). No I/O besides the ledger.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from invokeai_py_client.run._bulk import ImageFetcher
from invokeai_py_client.run.ledger import FileRow, ItemRow, Ledger
from invokeai_py_client.sweep import SubsetPlan, SweepPlan

if TYPE_CHECKING:
    from invokeai_py_client.client import InvokeAIClient

__all__ = ["IMAGES_DIR", "TERMINAL", "EngineState", "Progress"]

TERMINAL = frozenset({"completed", "failed", "canceled"})
IMAGES_DIR = "images"
SAFETY_POLL = 3.0  # seconds without news before asking the server
MAX_AUTO_RETRIES = 3


@dataclass(frozen=True, slots=True)
class Progress:
    """A snapshot of a run's progress.

    ``done`` counts runs whose images are all on disk; ``failed`` / ``canceled`` runs whose
    item ended so; ``remaining`` the rest. ``rate`` is finished runs per second since the
    start of this process, ``eta`` seconds left at that rate (None until known).
    ``last`` is the manifest-like dict of the run that just finished, if any.
    """

    total: int
    done: int
    failed: int
    canceled: int
    remaining: int
    images: int
    elapsed: float
    rate: float
    eta: float | None
    last: Mapping[str, Any] | None = None

    @classmethod
    def from_counts(
        cls,
        c: Mapping[str, int],
        elapsed: float,
        *,
        finished_before: int = 0,
        last: Mapping[str, Any] | None = None,
    ) -> Progress:
        """A snapshot from :func:`run_counts`; the rate leaves out ``finished_before`` runs."""
        finished = c["completed"] + c["failed"] + c["canceled"] - finished_before
        rate = finished / elapsed if elapsed > 0 else 0.0
        return cls(
            total=c["total"],
            done=c["completed"],
            failed=c["failed"],
            canceled=c["canceled"],
            remaining=c["remaining"],
            images=c["images"],
            elapsed=elapsed,
            rate=rate,
            eta=c["remaining"] / rate if rate > 0 else None,
            last=last,
        )


def run_counts(total: int, done: int, failed: int, canceled: int, images: int) -> dict[str, int]:
    """Runs by outcome (``remaining`` is what is not completed, failed or canceled)."""
    return {
        "total": total,
        "completed": done,
        "failed": failed,
        "canceled": canceled,
        "remaining": total - done - failed - canceled,
        "images": images,
    }


class EngineState:
    """The state of a run in progress and its counters (the base of :class:`Engine`)."""

    #: fetch images in bulk zips when many wait (see :mod:`._bulk`); False: one GET each
    bulk_downloads = True

    def __init__(
        self,
        client: InvokeAIClient,
        ledger: Ledger,
        plan: SweepPlan,
        out_dir: Path,
        *,
        concurrency: int = 4,
        on_progress: Callable[[Progress], Any] | None = None,
        leave_running_on_cancel: bool = False,
        images_dir: Path | None = None,
        hooks: Mapping[str, Callable[[], Any]] | None = None,
        retry_statuses: frozenset[str] = frozenset(),
    ) -> None:
        self.client = client
        self.retry_statuses = retry_statuses
        self.ledger = ledger
        self.plan = plan
        self.out_dir = out_dir
        self.images_dir = images_dir if images_dir is not None else out_dir / IMAGES_DIR
        self.concurrency = max(1, int(concurrency))
        self.on_progress = on_progress
        self.leave_running = leave_running_on_cancel
        self.hooks = dict(hooks or {})
        self.destination = str(ledger.get_meta("destination"))
        self.outputs: list[dict[str, Any]] = list(ledger.get_meta("output_nodes") or [])
        self.output_ids = [str(o["node_id"]) for o in self.outputs]
        self.count = plan.count
        whole = plan.base.count if isinstance(plan, SubsetPlan) else plan.count
        self.width = max(4, len(str(max(whole - 1, 0))))
        # state
        self.items: dict[int, ItemRow] = {}
        self.run_item: dict[int, int] = {}
        self.files: dict[str, FileRow] = ledger.files()
        self.event_images: dict[int, list[dict[str, str]]] = {}
        self.unreliable: set[int] = set()
        self.need_full: set[int] = set()
        self.unknown_ids: set[int] = set()
        self.retry_counts: dict[int, int] = {}
        self.downloads: dict[str, asyncio.Task[None]] = {}
        self.dl_items: dict[int, int] = {}  # item id -> its downloads in progress
        self.fetcher = ImageFetcher(
            client, concurrency=self.concurrency, bulk=self.bulk_downloads, idle=self._idle
        )
        self.cancel_event = asyncio.Event()
        self.wake = asyncio.Event()
        self.queue_cap: int | None = None
        self._last_room_check = 0.0
        self.disconnected_once = False
        self.reconcile_needed = True
        self.last_news = time.monotonic()
        self.t0 = time.monotonic()
        self.done_at_start = 0
        self.listeners: list[asyncio.Queue[Progress | None]] = []
        self.cancelled = False
        self._runs_by_batch_key: dict[str, dict[str, list[int]]] = {}
        self._batches = {b.batch_id: b for b in ledger.batches()}
        for row in ledger.items():
            self.items[row.item_id] = row
            self.unreliable.add(row.item_id)
            if not row.superseded and row.run_index is not None:
                self.run_item[row.run_index] = row.item_id
        # a batch the server answered whose items were not recorded yet (the client stopped
        # between the two commits): its items are adopted by the first step
        for b in self._batches.values():
            if b.state == "sent":
                self.unknown_ids.update(i for i in b.item_ids if i not in self.items)
        self._outcomes: dict[int, str | None] = {}
        self._tally: dict[str, int] = {"completed": 0, "failed": 0, "canceled": 0}
        self._images = sum(1 for f in self.files.values() if f.item_id in self.items)
        self._refresh(self.items[i] for i in self.run_item.values())

    # ------------------------------------------------------------------ hooks / progress

    def _hook(self, name: str) -> None:
        fn = self.hooks.get(name)
        if fn is not None:
            fn()

    def _outcome(self, run_index: int) -> str | None:
        iid = self.run_item.get(run_index)
        if iid is None:
            return None
        row = self.items[iid]
        if row.status == "completed":
            return "completed" if self._downloaded(row) else None
        return row.status if row.status in ("failed", "canceled") else None

    def _refresh(self, rows: Iterable[ItemRow]) -> None:
        """Update the outcome counters for the runs of these rows (O(rows), not O(run))."""
        for row in rows:
            r = row.run_index
            if r is None:
                continue
            new = self._outcome(r)
            old = self._outcomes.get(r)
            if new != old:
                if old is not None:
                    self._tally[old] -= 1
                if new is not None:
                    self._tally[new] += 1
                self._outcomes[r] = new

    def _save(self, rows: Iterable[ItemRow]) -> None:
        rows = list(rows)
        self.ledger.upsert_items(rows)
        self._refresh(rows)
        if self.downloads:
            self.fetcher.wake()  # the run may have nothing left to make: fetch what waits

    def counts(self) -> dict[str, int]:
        """Runs by outcome: completed (all images on disk), failed, canceled, remaining."""
        t = self._tally
        return run_counts(self.count, t["completed"], t["failed"], t["canceled"], self._images)

    def progress(self, last: Mapping[str, Any] | None = None) -> Progress:
        """The current :class:`Progress`."""
        return Progress.from_counts(
            self.counts(),
            time.monotonic() - self.t0,
            finished_before=self.done_at_start,
            last=last,
        )

    def _emit(self, last: Mapping[str, Any] | None = None) -> None:
        if self.on_progress is None and not self.listeners:
            return
        p = self.progress(last)
        if self.on_progress is not None:
            self.on_progress(p)
        for q in self.listeners:
            q.put_nowait(p)

    # ------------------------------------------------------------------ helpers

    def _download_done(self, item_id: int) -> None:
        left = self.dl_items.get(item_id, 0) - 1
        if left > 0:
            self.dl_items[item_id] = left
        else:
            self.dl_items.pop(item_id, None)

    def _idle(self) -> bool:
        """True when every run not yet done is only waiting for its downloads (O(batches)).

        Then nothing more will complete soon, and the images waiting to share a bulk zip
        are fetched at once.
        """
        t = self._tally
        open_runs = self.count - t["completed"] - t["failed"] - t["canceled"]
        return open_runs <= len(self.dl_items) and self._sent_until() >= self.count

    def _downloaded(self, row: ItemRow) -> bool:
        return row.images is not None and all(im["image_name"] in self.files for im in row.images)

    def _runs_for(self, batch_id: str) -> dict[str, list[int]]:
        cached = self._runs_by_batch_key.get(batch_id)
        if cached is None:
            b = self._batches[batch_id]
            cached = self.plan.runs_by_key(b.lo, b.hi)
            self._runs_by_batch_key[batch_id] = cached
        return cached

    def _sent_until(self) -> int:
        return max(
            (b.hi for b in self._batches.values() if b.state in ("sent", "sending")), default=0
        )

    def _sending(self) -> bool:
        return any(b.state == "sending" for b in self._batches.values())

    def _finished(self) -> bool:
        # cheap first: the outcome counters say whether every run has its final outcome
        if self.retry_statuses or self.downloads:
            return False
        t = self._tally
        if t["completed"] + t["failed"] + t["canceled"] < self.count:
            return False
        return self._sent_until() >= self.count and not self._sending()
