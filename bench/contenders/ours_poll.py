"""Contender "ours_poll": "ours" followed WITHOUT a socket, by polling (a measured prototype).

Not part of the library: the run engine here is :class:`PollEngine`, a subclass of the
library's ``Engine`` that never opens the socket.io connection. Each poll is one
``GET counts_by_destination`` (cheap counts of the run's items); when more items ended than
last time, the lowest open item ids (the server runs a batch in id order) are read in full
with ``POST items_by_ids`` (status, error, image names: the same path the engine takes when
its socket drops); when they do not account for the change it reconciles (summaries of
every open item). Bulk zips without the ``bulk_download_complete`` event: POST the zip, then
GET it until the server stops answering 404. The server creates the zip file when it starts
writing it, so a GET can catch a half-written zip; it then fails to open and its images go
by single GETs (counted as ``zip_failures``; after 3 the run stops using zips).

Result (docs/benchmarks.md, "Following without a socket"): not better enough to ship.

Same arguments and output as ``ours.py``. ``BENCH_POLL_INTERVAL`` (seconds, default 0.1)
sets the time between two polls.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

import ours

from invokeai_py_client.exceptions import NotFoundError, RunError, TransportError
from invokeai_py_client.run import batch_run
from invokeai_py_client.run._bulk import ZIP_TIMEOUT, ZIP_TIMEOUT_PER_IMAGE, ImageFetcher
from invokeai_py_client.run._engine import Engine
from invokeai_py_client.run._naming import images_from_item
from invokeai_py_client.run._state import TERMINAL
from invokeai_py_client.run.ledger import ItemRow, utc_now

#: seconds between two polls of the run's counts
POLL_INTERVAL = float(os.environ.get("BENCH_POLL_INTERVAL") or 0.1)
#: seconds before the first GET of a zip, then between GETs
ZIP_POLL_FIRST = 0.05
ZIP_POLL = 0.05


class PollFeed:
    """Stands in for the engine's event subscription: nothing arrives, ``get`` only waits."""

    def __init__(self) -> None:
        self._woken = asyncio.Event()

    def add_items(self, item_ids: Iterable[int]) -> None:
        """Nothing to subscribe to."""

    def add_batches(self, batch_ids: Iterable[str]) -> None:
        """Nothing to subscribe to."""

    async def get(self, timeout: float | None = None) -> dict[str, Any] | None:
        """Wait ``timeout`` seconds or until :meth:`wake`; always ``None``."""
        try:
            async with asyncio.timeout(timeout):
                await self._woken.wait()
        except TimeoutError:
            pass
        self._woken.clear()
        return None

    def get_nowait(self) -> dict[str, Any] | None:
        """Always ``None``."""
        return None

    def wake(self) -> None:
        """End a waiting :meth:`get` now (the engine calls it after its last download)."""
        self._woken.set()

    def close(self) -> None:
        """Nothing to close."""


class PollFetcher(ImageFetcher):
    """The library's fetcher, with zips learned ready by asking for them (no events)."""

    def _can_bulk(self) -> bool:
        return True

    async def _zip_bytes(self, names: list[str]) -> dict[str, bytes]:
        import io
        import zipfile

        http = self.client.async_http()
        resp = await http.request("POST", "/api/v1/images/download", json={"image_names": names})
        zip_name = str((resp.json() or {}).get("bulk_download_item_name") or "")
        if not zip_name:
            raise RunError("no bulk_download_item_name in the answer")
        self.stats["zips"] += 1
        path = f"/api/v1/images/download/{quote(zip_name, safe='')}"
        deadline = time.monotonic() + ZIP_TIMEOUT + ZIP_TIMEOUT_PER_IMAGE * len(names)
        await asyncio.sleep(ZIP_POLL_FIRST)
        while True:
            try:
                resp = await http.request("GET", path, retry=False)
                break
            except NotFoundError:
                if time.monotonic() > deadline:
                    raise RunError(f"the zip {zip_name} was not ready in time") from None
                await asyncio.sleep(ZIP_POLL)
        wanted = set(names)
        got: dict[str, bytes] = {}
        with zipfile.ZipFile(io.BytesIO(resp.content)) as zf:
            for info in zf.infolist():
                base = info.filename.rsplit("/", 1)[-1]
                if base in wanted and not info.is_dir():
                    got[base] = zf.read(info)
        self.stats["zip_images"] += len(got)
        return got


class PollEngine(Engine):
    """The library's engine, following the run by polling instead of socket.io events."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fetcher = PollFetcher(
            self.client,
            concurrency=self.concurrency,
            bulk=self.bulk_downloads,
            idle=self._idle,
        )
        self.polled_ended: int | None = None
        self.polled_total = 0

    async def run(self) -> None:
        """``Engine.run`` without the event hub: poll, step, wait ``POLL_INTERVAL``."""
        self.done_at_start = sum(
            1
            for iid in self.run_item.values()
            if self.items[iid].status in TERMINAL
            and (self.items[iid].status != "completed" or self._downloaded(self.items[iid]))
        )
        self.sub = PollFeed()  # type: ignore[assignment]
        try:
            self.images_dir.mkdir(parents=True, exist_ok=True)
            self._emit()
            while not self._finished():
                if self.cancel_event.is_set():
                    self.cancelled = True
                    return
                try:
                    await self._step()
                except TransportError:
                    self.reconcile_needed = True
                    await self._sleep_or_cancel(1.0)
                await self._drain_events(POLL_INTERVAL)
            await self._await_downloads()
        finally:
            self.sub.close()

    async def _step(self) -> None:
        if not self.reconcile_needed:
            await self._poll()
        await super()._step()

    async def _reconcile(self) -> None:
        self.polled_ended = None  # the next poll counts from what the run then knows
        await super()._reconcile()

    async def _poll(self) -> None:
        c = await self.client.async_http().get_json(
            "/api/v1/queue/default/counts_by_destination",
            params={"destination": self.destination},
        )
        ended = sum(int(c.get(k) or 0) for k in TERMINAL)
        total = int(c.get("total") or 0)
        if total > max(len(self.items), self.polled_total) and not self._sending():
            self.polled_total = total
            fresh = await self._find_destination_ids()
            if fresh:
                await self._adopt_ids(fresh)
        previous = self.polled_ended
        if previous is None:
            previous = sum(1 for r in self.items.values() if r.status in TERMINAL)
        self.polled_ended = ended
        if ended <= previous:
            return
        self.last_news = time.monotonic()
        open_ids = sorted(
            iid
            for iid, r in self.items.items()
            if not r.superseded and r.status not in TERMINAL and r.run_index is not None
        )
        look = open_ids[: min(100, ended - previous + 1)]
        if look:
            newly = self._apply_polled(await self.client.queue.aitems_by_ids(look))
            if newly < ended - previous:
                self.reconcile_needed = True

    def _apply_polled(self, items: Sequence[Mapping[str, Any]]) -> int:
        rows: list[ItemRow] = []
        for item in items:
            row = self.items.get(int(item["item_id"]))
            status = str(item.get("status"))
            if row is None or status == row.status:
                continue
            row.status = status
            row.started_at = _s(item.get("started_at")) or row.started_at
            row.completed_at = _s(item.get("completed_at")) or row.completed_at
            if status in TERMINAL:
                row.known_at = row.known_at or utc_now()
                row.error_type = _s(item.get("error_type")) or row.error_type
                row.error_message = _s(item.get("error_message")) or row.error_message
                if status == "completed":
                    row.images = images_from_item(item, self.output_ids)
            rows.append(row)
        if rows:
            self._save(rows)
        for row in rows:
            self._on_status(row, {}, from_event=False)
        return sum(1 for r in rows if r.status in TERMINAL)


def _s(value: Any) -> str | None:
    return None if value is None else str(value)


if __name__ == "__main__":
    batch_run.Engine = PollEngine  # type: ignore[misc]
    ours.FOLLOW = "poll"
    ours.main()
