"""Fetching a run's images: InvokeAI's bulk zip download when many wait, single GETs otherwise.

On a server that shares its cores with the client, every download request takes time from
generation. One ``GET /api/v1/images/i/{name}/full`` per image costs the server a request each;
one bulk download (``POST /api/v1/images/download`` with the image names, a
``bulk_download_complete`` event once the server has written the zip, then
``GET /api/v1/images/download/{zip}``, which the server deletes after sending) costs it three
requests for any number of images. The zip is stored, not deflated (``ZipFile(..., "w")``).
Measured on a fast ``LocalServer`` (2 cores, 300 images): server CPU per image on an idle
server, one GET 1.1 ms, zips of 16 / 64 / 300 images 0.5 / 0.3 / 0.2 ms; while it generates
(``bench/download_cost.py``), one GET per image added ~20 % to the server's CPU and span
of the batch, zips of 16-64 images 1-10 %. A GET that arrives while the server generates
costs it far more than on an idle server (GIL hand-overs): wait, and fetch many at once.

:class:`ImageFetcher` collects the image names the engine asks for and, one bulk request in
flight at a time, fetches them:

* the run's first image at once, by a single GET (a quick first result);
* in one zip as soon as :data:`BULK_TARGET` are waiting;
* when the oldest has waited :data:`MAX_WAIT` seconds, the run has nothing left to
  generate (``idle()``), or images come too slowly for :data:`BULK_MIN` of them to gather
  within :data:`MAX_WAIT` (so on a slow server each image is fetched as soon as it is
  made): in one zip if at least :data:`BULK_MIN` wait, else by single GETs (``concurrency``
  at once);
* by single GETs for good after the bulk endpoint refused (403 in multi-user mode for a
  forbidden image, 404/405 on a server without it, 422), and for the images of a zip that
  failed (``bulk_download_error``, no event in time, a broken zip, a missing entry).

The zip is read whole in memory and checked before any image of it is handed back, so a
failed or partial zip never leaves a file behind: the engine writes each image atomically.
"""

from __future__ import annotations

import asyncio
import io
import logging
import time
import zipfile
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from invokeai_py_client.exceptions import (
    APIError,
    InvokeAIError,
    NotFoundError,
    RunError,
    TransportError,
)

if TYPE_CHECKING:
    from invokeai_py_client.client import InvokeAIClient

__all__ = ["BULK_MIN", "BULK_TARGET", "MAX_WAIT", "ImageFetcher"]

log = logging.getLogger(__name__)

#: fewest waiting images fetched as one zip (fewer go by single GETs)
BULK_MIN = 16
#: waiting images that go as one zip at once, without waiting any longer
BULK_TARGET = 64
#: the most images in one zip (InvokeAI's MAX_IMAGE_BATCH_SIZE is 1000)
BULK_MAX = 500
#: seconds an image may wait for others to share a zip before it is fetched anyway
MAX_WAIT = 1.0
#: seconds to wait for a zip's bulk_download_complete event (plus per image)
ZIP_TIMEOUT = 15.0
ZIP_TIMEOUT_PER_IMAGE = 0.05
#: status codes after which the bulk endpoint is not tried again in this run
_BULK_REFUSED = frozenset({401, 403, 404, 405, 422})
#: the socket.io room of single-user mode's bulk download events
_BULK_ROOM = "default"
_IMAGES = "/api/v1/images"


class ImageFetcher:
    """Hands out image bytes by name, fetching them in bulk zips or singly (see module)."""

    def __init__(
        self,
        client: InvokeAIClient,
        *,
        concurrency: int = 4,
        bulk: bool = True,
        idle: Callable[[], bool] | None = None,
    ) -> None:
        self.client = client
        self.bulk = bulk
        self.idle = idle or (lambda: False)
        self.hurry = False  # fetch whatever waits at once (the run is finishing)
        self.sem = asyncio.Semaphore(max(1, concurrency))
        self.stats: dict[str, int] = {"gets": 0, "zips": 0, "zip_images": 0, "zip_failures": 0}
        self._waiting: dict[str, asyncio.Future[bytes]] = {}
        self._oldest = 0.0
        self._started = False  # the first image goes at once (a quick first result)
        self._wake = asyncio.Event()
        self._pump: asyncio.Task[None] | None = None
        self._singles: set[asyncio.Task[None]] = set()
        self._last_ask: float | None = None
        self._gap: float | None = None
        self._joined = False  # the hub keeps the bulk room joined across reconnects once asked

    # ------------------------------------------------------------------ public

    async def fetch(self, image_name: str) -> bytes:
        """The image's bytes (raises :class:`NotFoundError` when the server has no such image)."""
        fut = self._waiting.get(image_name)
        if fut is None:
            fut = asyncio.get_running_loop().create_future()
            now = time.monotonic()
            if self._last_ask is not None:  # smoothed time between images (their rate)
                gap = now - self._last_ask
                self._gap = gap if self._gap is None else 0.7 * self._gap + 0.3 * gap
            self._last_ask = now
            if not self._waiting:
                self._oldest = now
            self._waiting[image_name] = fut
            self._wake.set()
            if self._pump is None or self._pump.done():
                self._pump = asyncio.create_task(self._run_pump())
        return await fut

    def wake(self) -> None:
        """Re-check whether what waits can go (call when ``idle()`` may have become true)."""
        self._wake.set()
        if self._waiting and (self._pump is None or self._pump.done()):
            self._pump = asyncio.create_task(self._run_pump())

    # ------------------------------------------------------------------ pump

    async def _run_pump(self) -> None:
        while self._waiting:
            self._drop_abandoned()
            n = len(self._waiting)
            if not n:
                return
            if not self._started:  # the run's first image alone, at once
                self._started = True
                for name, fut in self._take(1).items():
                    self._single(name, fut)
                continue
            age = time.monotonic() - self._oldest
            due = self.hurry or age >= MAX_WAIT or self.idle() or not self._zip_soon(n, age)
            if self.bulk and (n >= BULK_TARGET or (due and n >= BULK_MIN)) and self._can_bulk():
                await self._zip(self._take(BULK_MAX))
                continue
            if due or not self.bulk:
                for name, fut in self._take(n).items():
                    self._single(name, fut)
                continue
            self._wake.clear()
            timer = asyncio.get_running_loop().call_later(MAX_WAIT - age, self._wake.set)
            try:
                await self._wake.wait()
            finally:
                timer.cancel()

    def _zip_soon(self, waiting: int, age: float) -> bool:
        """Whether, at the rate images come, a zip's worth will wait before ``MAX_WAIT``.

        When images come slowly (a stock server: one every half second) waiting would only
        delay them, so they are fetched at once.
        """
        if not self.bulk or self._gap is None:
            return False
        coming = (MAX_WAIT - age) / max(self._gap, 1e-3)
        return waiting + coming >= BULK_MIN

    def _drop_abandoned(self) -> None:
        for name in [k for k, f in self._waiting.items() if f.done()]:
            del self._waiting[name]

    def _take(self, limit: int) -> dict[str, asyncio.Future[bytes]]:
        names = list(self._waiting)[:limit]
        taken = {name: self._waiting.pop(name) for name in names}
        self._oldest = time.monotonic()
        return taken

    def _single(self, name: str, fut: asyncio.Future[bytes]) -> None:
        task = asyncio.create_task(self._get_into(name, fut))
        self._singles.add(task)
        task.add_done_callback(self._singles.discard)

    async def _get_into(self, name: str, fut: asyncio.Future[bytes]) -> None:
        if fut.done():
            return
        try:
            async with self.sem:
                data = await self._get_image(name)
        except Exception as exc:
            if not fut.done():
                fut.set_exception(exc)
            return
        if not fut.done():
            fut.set_result(data)

    async def _get_image(self, image_name: str) -> bytes:
        http = self.client.async_http()
        delay = 0.5
        path = f"{_IMAGES}/i/{quote(image_name, safe='')}/full"
        for attempt in range(40):
            try:
                self.stats["gets"] += 1
                return (await http.request("GET", path)).content
            except NotFoundError:
                raise
            except (TransportError, APIError) as exc:
                if attempt == 39:
                    raise
                log.info("download of %s failed (%s); retrying", image_name, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        raise RunError(f"could not download {image_name}")

    # ------------------------------------------------------------------ bulk zips

    def _can_bulk(self) -> bool:
        return self.client.events.connected

    async def _zip(self, batch: dict[str, asyncio.Future[bytes]]) -> None:
        """Fetch ``batch`` as one zip; whatever the zip does not deliver goes singly."""
        got: dict[str, bytes] = {}
        try:
            got = await self._zip_bytes(list(batch))
        except _BulkRefused as exc:
            log.info("bulk image download unavailable (%s); downloading one by one", exc)
            self.bulk = False
        except Exception as exc:  # error event, no event in time, a broken zip, ...
            self.stats["zip_failures"] += 1
            log.info("bulk image download failed (%s); downloading one by one", exc)
            if self.stats["zip_failures"] >= 3:
                self.bulk = False
        for name, fut in batch.items():
            data = got.get(name)
            if data is None:
                self._single(name, fut)
            elif not fut.done():
                fut.set_result(data)

    async def _zip_bytes(self, names: list[str]) -> dict[str, bytes]:
        hub = self.client.events
        if not self._joined:  # single-user mode sends zip events to this room (kept joined)
            room = {"bulk_download_id": _BULK_ROOM}
            await asyncio.wrap_future(hub.join_room("subscribe_bulk_download", room))
            self._joined = True
        # listen only while a zip is being made: every event of the run would pass this filter
        seen: dict[str, str] = {}
        news = asyncio.Event()

        def on_event(evt: Mapping[str, Any]) -> None:
            seen[str(evt.get("bulk_download_item_name"))] = str(evt.get("event_type"))
            news.set()

        sub = hub.asubscribe(all_events=True, callback=on_event, event_filter=_bulk_event)
        try:
            http = self.client.async_http()
            try:
                resp = await http.request(
                    "POST", f"{_IMAGES}/download", json={"image_names": names}
                )
            except APIError as exc:
                if exc.status_code in _BULK_REFUSED:
                    raise _BulkRefused(f"HTTP {exc.status_code}") from exc
                raise
            zip_name = str((resp.json() or {}).get("bulk_download_item_name") or "")
            if not zip_name:
                raise _BulkRefused("no bulk_download_item_name in the answer")
            self.stats["zips"] += 1
            deadline = time.monotonic() + ZIP_TIMEOUT + ZIP_TIMEOUT_PER_IMAGE * len(names)
            while zip_name not in seen:
                news.clear()
                async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                    await news.wait()
        finally:
            sub.close()
        if seen[zip_name] != "bulk_download_complete":
            raise RunError(f"the server could not build the zip {zip_name} ({seen[zip_name]})")
        resp = await http.request("GET", f"{_IMAGES}/download/{quote(zip_name, safe='')}")
        wanted = set(names)
        got: dict[str, bytes] = {}
        with zipfile.ZipFile(io.BytesIO(resp.content)) as zf:
            for info in zf.infolist():
                base = info.filename.rsplit("/", 1)[-1]
                if base in wanted and not info.is_dir():
                    got[base] = zf.read(info)  # checks each entry's CRC
        self.stats["zip_images"] += len(got)
        return got


class _BulkRefused(InvokeAIError):
    """The server will not do bulk downloads for this client."""


def _bulk_event(evt: Mapping[str, Any]) -> bool:
    return evt.get("event_type") in ("bulk_download_complete", "bulk_download_error")
