"""``BatchRun``: a sweep submitted as one request, followed to the last image on disk.

Example::

    from invokeai_py_client import InvokeAIClient
    from invokeai_py_client.run import BatchRun, resume
    from invokeai_py_client.sweep import Sweep

    client = InvokeAIClient.from_url("http://127.0.0.1:9090")
    wf = client.workflow_repo.create_workflow_from_file("blur.json")
    sweep = Sweep().axis("Width", [32, 48, 64]).axis("Blur Radius", [1, 2, 3, 4])

    run = BatchRun(client, wf, sweep, "out/blur-sweep", on_progress=print)
    run.count              # 12, known before anything is sent
    run.payload()          # the exact enqueue_batch body (dry run)
    result = run.run()     # blocking; ``await run.arun()`` in asyncio
    result.completed, result.manifest

    # or send everything and return at once; the server keeps working:
    BatchRun(client, wf, sweep, "out/overnight").submit()
    resume("out/overnight")   # later, from any process: follows the items, downloads

    # after a crash (any point), or to retry failed items:
    resume("out/blur-sweep", retry_failed=True)

Output directory: ``images/`` (one file per image, named ``0007_width-48_blur-radius-4.png``),
``manifest.jsonl`` / ``manifest.csv`` / ``run.json`` (see :mod:`.manifest`), and
``ledger.sqlite`` (see :mod:`.ledger`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from invokeai_py_client.exceptions import InvokeAIError, RunError
from invokeai_py_client.run._engine import Engine, Progress
from invokeai_py_client.run.ledger import LEDGER_NAME, Ledger, utc_now
from invokeai_py_client.run.manifest import write_outputs
from invokeai_py_client.sweep import HandleLike, Sweep, SweepPlan

if TYPE_CHECKING:
    from invokeai_py_client.client import InvokeAIClient
    from invokeai_py_client.run.multi import MultiRun

__all__ = ["LEDGER_NAME", "BatchRun", "Progress", "RunResult", "aresume", "resume", "write_outputs"]

ORIGIN = "invokeai_py_client.run"


@dataclass(frozen=True, slots=True)
class RunResult:
    """What a finished (or cancelled) run produced.

    ``ok`` is True when every planned run completed and all its images are on disk.
    """

    out_dir: Path
    total: int
    completed: int
    failed: int
    canceled: int
    remaining: int
    images: int
    manifest: Path
    cancelled: bool = False

    @property
    def ok(self) -> bool:
        """Every run completed, every image downloaded."""
        return self.completed == self.total and not self.cancelled

    @classmethod
    def from_counts(
        cls, out_dir: Path, counts: Mapping[str, int], manifest: Path, cancelled: bool
    ) -> RunResult:
        """Build from an engine's ``counts()`` (total/completed/failed/... by name)."""
        return cls(
            out_dir=out_dir,
            total=counts["total"],
            completed=counts["completed"],
            failed=counts["failed"],
            canceled=counts["canceled"],
            remaining=counts["remaining"],
            images=counts["images"],
            manifest=manifest,
            cancelled=cancelled,
        )


def _clients(client_or_clients: Any) -> list[InvokeAIClient]:
    if isinstance(client_or_clients, Sequence) and not isinstance(client_or_clients, str):
        clients = list(client_or_clients)
        if not clients:
            raise RunError("BatchRun needs at least one client")
        return clients
    return [client_or_clients]


def _output_nodes(handle: Any, template: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The nodes whose images the run downloads.

    The handle's output nodes (types with a ``board`` input) that save to the gallery (not
    intermediate); if none, all of them; without any, every non-intermediate graph node.
    """
    out: list[dict[str, Any]] = []
    getter = getattr(handle, "output_nodes", None)
    if callable(getter):
        for o in getter():
            out.append(
                {
                    "node_id": str(o.node_id),
                    "label": str(getattr(o, "label", "") or o.node_id),
                    "board_id": getattr(o, "board_id", None),
                }
            )
    nodes = (template.get("batch") or {}).get("graph", {}).get("nodes", {})
    saved = [o for o in out if not (nodes.get(o["node_id"]) or {}).get("is_intermediate", False)]
    if saved:
        return saved
    if not out:
        for nid, node in nodes.items():
            if not node.get("is_intermediate", False):
                out.append(
                    {"node_id": str(nid), "label": str(node.get("type", nid)), "board_id": None}
                )
    return out


class BatchRun:
    """Run a sweep of a workflow on a server and bring every image home.

    Args:
        client_or_clients: an :class:`~invokeai_py_client.client.InvokeAIClient`, or a list
            of clients to spread the run over several servers (see :mod:`.multi`).
        handle: the ``WorkflowHandle`` with the fixed input values set.
        sweep: the :class:`~invokeai_py_client.sweep.Sweep` (``None``: one run).
        out_dir: the output directory (created; must not hold another run).
        board: a board id every output node saves to (default: the workflow's own boards).
        concurrency: parallel image downloads.
        on_progress: called with a :class:`Progress` after every change.
        leave_running_on_cancel: on cancel / Ctrl-C, leave the items queued on the server.

    The plan is built at construction: a bad sweep raises
    :class:`~invokeai_py_client.exceptions.SweepError` before anything is sent, and
    :attr:`count` / :meth:`payload` show what would be sent.
    """

    def __init__(
        self,
        client_or_clients: InvokeAIClient | Sequence[InvokeAIClient],
        handle: HandleLike,
        sweep: Sweep | None,
        out_dir: str | os.PathLike[str],
        *,
        board: str | None = None,
        concurrency: int = 4,
        on_progress: Callable[[Progress], Any] | None = None,
        leave_running_on_cancel: bool = False,
    ) -> None:
        self.clients = _clients(client_or_clients)
        self.client = self.clients[0]
        self.handle = handle
        self.sweep = sweep if sweep is not None else Sweep()
        self.out_dir = Path(out_dir)
        self.board = board
        self.concurrency = concurrency
        self.on_progress = on_progress
        self.leave_running_on_cancel = leave_running_on_cancel
        self.plan: SweepPlan = self.sweep.plan(handle)
        self.output_nodes = _output_nodes(handle, self.plan.template)
        if board is not None:
            self._apply_board(board)
        self.run_id = uuid.uuid4().hex[:12]
        self.destination = f"ivkrun:{self.run_id}"
        self._engine: Engine | None = None
        self._cancel_requested = False
        self._hooks: dict[str, Callable[[], Any]] = {}
        self._ledger: Ledger | None = None
        self._ended = False
        self._multi: MultiRun | None = None

    def _apply_board(self, board: str) -> None:
        nodes = self.plan.template["batch"]["graph"]["nodes"]
        ids = {o["node_id"] for o in self.output_nodes}
        template = json.loads(json.dumps(self.plan.template))
        for nid in ids:
            if nid in nodes:
                template["batch"]["graph"]["nodes"][nid]["board"] = {"board_id": board}
        self.plan = SweepPlan(template=template, axes=self.plan.axes, runs=self.plan.runs)
        for o in self.output_nodes:
            o["board_id"] = board

    # ------------------------------------------------------------------ dry run

    @property
    def count(self) -> int:
        """How many runs (queue items) the run makes."""
        return self.plan.count

    def payload(self) -> dict[str, Any]:
        """The exact enqueue_batch body of the run (local images shown as placeholders)."""
        return self.plan.payload(destination=self.destination, origin=ORIGIN)

    # ------------------------------------------------------------------ running

    def run(self) -> RunResult:
        """Run to the end (blocking). Ctrl-C cancels the run's items on the server."""
        return asyncio.run(self.arun())

    async def arun(self) -> RunResult:
        """Run to the end (asyncio). Cancelling the task cancels the items on the server."""
        try:
            return await self._arun()
        finally:
            self._ended = True

    async def _arun(self) -> RunResult:
        if len(self.clients) > 1:
            return await self._arun_multi()
        ledger = self._create_ledger()
        try:
            plan = await _upload_images(self.client, ledger, self.plan)
            engine = Engine(
                self.client,
                ledger,
                plan,
                self.out_dir,
                concurrency=self.concurrency,
                on_progress=self.on_progress,
                leave_running_on_cancel=self.leave_running_on_cancel,
                hooks=self._hooks,
            )
            self._engine = engine
            if self._cancel_requested:
                engine.cancel_event.set()
            return await _drive(engine, ledger)
        finally:
            ledger.close()

    async def _arun_multi(self) -> RunResult:
        from invokeai_py_client.run._multi_drive import drive_multi

        return await drive_multi(await self._make_multi())

    async def _make_multi(self) -> MultiRun:
        from invokeai_py_client.dnn_model.per_server import model_input_labels, resolve_servers
        from invokeai_py_client.run.multi import MultiRun

        labels = model_input_labels(self.handle)
        # each server's own model keys, before anything is written or sent
        models = await resolve_servers(self.clients, self.plan, labels)
        meta = self._meta()
        meta["model_inputs"] = [[n, f, i, lab] for (n, f), (i, lab) in labels.items()]
        multi = MultiRun(
            self.clients,
            self.plan,
            self.out_dir,
            meta,
            concurrency=self.concurrency,
            on_progress=self.on_progress,
            leave_running_on_cancel=self.leave_running_on_cancel,
            models=models,
        )
        self._multi = multi
        if self._cancel_requested:
            multi.cancel_event.set()
        return multi

    def submit(self) -> RunResult:
        """Send the whole run to the server and return without following it (blocking).

        See :meth:`asubmit`.
        """
        return asyncio.run(self.asubmit())

    async def asubmit(self) -> RunResult:
        """Send the whole run to the server and return without following it (asyncio).

        Plans, uploads the local images, records everything in the output directory's ledger
        and enqueues every run (when the server's queue is full, waits until the rest fits);
        then returns, leaving the items queued on the server. Images that already finished
        by then are downloaded; :func:`resume` on the output directory (``ivk resume DIR``),
        from this or any other process, follows the rest and downloads every image.

        Returns the :class:`RunResult` at the time of return (``remaining`` is what the
        server still has to do; ``cancelled`` is False unless :meth:`cancel` was called).

        With several clients the model inputs are resolved on each server first, then the
        whole plan is cut into parts at once and shared out so that the servers' queues end
        as even as possible (items other users left there count); every part is sent as
        above, and it returns when all of them are queued. ``resume`` follows every part
        on its server.

        Example::

            run = BatchRun(client, wf, Sweep().axis("Width", [32, 48, 64]), "out/night")
            submitted = run.submit()     # returns once all 3 runs are queued
            submitted.remaining          # what the server still has to make
            result = resume("out/night")  # later: waits for them, every image on disk
            result.ok
        """
        self.leave_running_on_cancel = True
        if len(self.clients) > 1:
            from invokeai_py_client.run._multi_drive import submit_multi

            try:
                return await submit_multi(await self._make_multi())
            finally:
                self._ended = True
        before = self._hooks.get("after_enqueue")
        hook = SubmitHook(lambda: self._ledger, self.count, self.cancel, before)
        self._hooks["after_enqueue"] = hook
        try:
            result = await self.arun()
        finally:
            if before is None:
                self._hooks.pop("after_enqueue", None)
            else:
                self._hooks["after_enqueue"] = before
        if hook.sent and result.cancelled:
            # "cancelled" here only means: stopped following; nothing was canceled
            result = dataclasses.replace(result, cancelled=False)
        return result

    def cancel(self) -> None:
        """Stop the run: its items are canceled on the server (unless left running)."""
        self._cancel_requested = True
        if self._engine is not None:
            self._engine.cancel_event.set()
        if self._multi is not None:
            self._multi.cancel_event.set()

    async def progress(self) -> AsyncIterator[Progress]:
        """Progress snapshots while :meth:`arun` runs in another task; ends with the run.

        Example::

            task = asyncio.create_task(run.arun())
            async for p in run.progress():
                print(p.done, p.remaining, p.eta)
            result = await task
        """
        while self._engine is None and self._multi is None:
            if self._ended:
                return
            await asyncio.sleep(0.01)
        source: Engine | MultiRun = self._engine if self._engine is not None else self._multi  # type: ignore[assignment]
        if self._ended:
            yield source.progress()
            return
        q: asyncio.Queue[Progress | None] = asyncio.Queue()
        source.listeners.append(q)
        while True:
            p = await q.get()
            if p is None:
                return
            yield p

    # ------------------------------------------------------------------ ledger

    def _create_ledger(self) -> Ledger:
        ledger = Ledger.create(self.out_dir, self._meta())
        self._ledger = ledger
        return ledger

    def _meta(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "destination": self.destination,
            "server": self.client.server_url,
            "created_at": utc_now(),
            "workflow": (self.plan.template.get("batch") or {}).get("workflow"),
            "workflow_name": _workflow_name(self.handle),
            "sweep": self.sweep.to_dict(),
            "plan": self.plan.to_dict(),
            "output_nodes": self.output_nodes,
            "board": self.board,
            "uploads": {},
        }


class SubmitHook:
    """The ``after_enqueue`` hook of a submit: once every run is sent, ``stop`` following.

    ``ledger`` returns the run's ledger (``None`` before it exists); ``before`` is a hook
    that was already there (called first). :attr:`sent` tells whether it fired.
    """

    def __init__(
        self,
        ledger: Callable[[], Ledger | None],
        count: int,
        stop: Callable[[], Any],
        before: Callable[[], Any] | None = None,
    ) -> None:
        self.ledger = ledger
        self.count = count
        self.stop = stop
        self.before = before
        self.sent = False

    def __call__(self) -> None:
        if self.before is not None:
            self.before()
        ledger = self.ledger()
        if ledger is not None and ledger.sent_until() >= self.count:
            self.sent = True
            self.stop()


def _workflow_name(handle: Any) -> str:
    definition = getattr(handle, "definition", None)
    name = getattr(definition, "name", None)
    return str(name) if name else ""


async def _upload_images(client: InvokeAIClient, ledger: Ledger, plan: SweepPlan) -> SweepPlan:
    """Upload each local image once (by content hash), record it, return the final plan."""
    pending = plan.pending_images()
    if not pending:
        return plan
    names: dict[str, str] = dict(ledger.get_meta("uploads") or {})
    http = client.async_http()
    for img in pending:
        if img.sha256 in names:
            continue
        path = Path(img.path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise RunError(f"cannot read image {img.path!r}: {exc}") from exc
        resp = await http.request(
            "POST",
            "/api/v1/images/upload",
            params={"image_category": "user", "is_intermediate": "false"},
            files={"file": (path.name, data, "image/png")},
            retry=False,
        )
        names[img.sha256] = str(resp.json()["image_name"])
        ledger.set_meta("uploads", names)
    return plan.with_uploads(names)


async def _drive(engine: Engine, ledger: Ledger) -> RunResult:
    """Run the engine; on cancel (event or task cancellation) stop cleanly; write outputs."""
    interrupted = False
    try:
        await engine.run()
    except asyncio.CancelledError:
        interrupted = True
        engine.cancelled = True
    except InvokeAIError:
        # the run cannot go on (e.g. the server refused the batch): write what finished
        await engine.finish_downloads()
        _finish(engine, ledger)
        for q in engine.listeners:
            q.put_nowait(None)
        raise
    try:
        if engine.cancelled:
            await asyncio.shield(_stop(engine))
        result = _finish(engine, ledger)
    finally:
        for q in engine.listeners:
            q.put_nowait(None)
    if interrupted:
        raise asyncio.CancelledError
    return result


async def _stop(engine: Engine) -> None:
    if not engine.leave_running:
        try:
            await engine.cancel_on_server()
            await engine._reconcile()
        except InvokeAIError as exc:
            raise RunError(f"could not cancel the run's items on the server: {exc}") from exc
    await engine.finish_downloads()


def _finish(engine: Engine, ledger: Ledger) -> RunResult:
    path = write_outputs(engine.out_dir, ledger, engine.plan, engine.files)
    return RunResult.from_counts(engine.out_dir, engine.counts(), path, engine.cancelled)


# --------------------------------------------------------------------------- resume


def resume(
    out_dir: str | os.PathLike[str],
    *,
    retry_failed: bool = False,
    client: InvokeAIClient | None = None,
    concurrency: int = 4,
    on_progress: Callable[[Progress], Any] | None = None,
) -> RunResult:
    """Finish a run from its output directory (blocking); see :func:`aresume`."""
    return asyncio.run(
        aresume(
            out_dir,
            retry_failed=retry_failed,
            client=client,
            concurrency=concurrency,
            on_progress=on_progress,
        )
    )


async def aresume(
    out_dir: str | os.PathLike[str],
    *,
    retry_failed: bool = False,
    client: InvokeAIClient | None = None,
    concurrency: int = 4,
    on_progress: Callable[[Progress], Any] | None = None,
    hooks: Mapping[str, Callable[[], Any]] | None = None,
) -> RunResult:
    """Finish a run after the client died at any point.

    Batches recorded ``sending`` are looked up on the server (adopted when it has them,
    sent again when it has not); items already there are followed; images missing or
    partial on disk are downloaded again; runs never sent are sent; canceled items (a
    cancelled run, a server restart) are retried. ``retry_failed`` also asks the server to
    retry the failed items (``retry_items_by_id``). ``client`` defaults to
    the server URL recorded in the ledger (every recorded server, for a run spread over
    several), with the ``INVOKEAI_API_KEY`` token if set, else the server's own token saved
    by ``ivk login``, else none.
    """
    out = Path(out_dir)
    ledger = Ledger.open(out)
    if ledger.get_meta("multi"):
        from invokeai_py_client.run._multi_drive import aresume_multi

        return await aresume_multi(out, ledger, client, concurrency, on_progress)
    own_client = client is None
    if client is None:
        from invokeai_py_client import _tokens
        from invokeai_py_client.client import InvokeAIClient

        url = str(ledger.get_meta("server"))
        client = InvokeAIClient.from_url(url, api_key=_tokens.token_for(url))
    try:
        plan = SweepPlan.from_dict(ledger.get_meta("plan"))
        plan = await _upload_images(client, ledger, plan)
        _drop_missing_files(out, ledger)
        engine = Engine(
            client,
            ledger,
            plan,
            out,
            concurrency=concurrency,
            on_progress=on_progress,
            hooks=hooks,
            retry_statuses=frozenset({"canceled", "failed"} if retry_failed else {"canceled"}),
        )
        return await _drive(engine, ledger)
    finally:
        ledger.close()
        if own_client:
            client.close()


def _drop_missing_files(out: Path, ledger: Ledger) -> None:
    """Forget ledger file rows whose file is gone or has the wrong size; remove ``.part``s."""
    for f in ledger.files().values():
        p = out / f.path
        if not p.is_file() or p.stat().st_size != f.bytes:
            ledger.delete_file(f.image_name)
    images = out / "images"
    if images.is_dir():
        for part in images.glob("*.part"):
            part.unlink()
