"""One sweep spread over several servers.

The plan's runs are handed out in parts. A server takes its next part when it has room (up
to two parts in flight, so generation and downloads overlap), and the part is sized from the
runs nobody has taken yet, the servers still in the run and the server's observed
throughput, so parts shrink toward the end and a slow server gets small ones (see
:mod:`._multi_sched`; ``part_size`` gives fixed parts instead). Items other users left on a
server's queue count too: such a server waits while another one is free. Each part is an
ordinary single-server run (its own ledger under ``parts/NNN/``, one ``enqueue_batch`` of its
runs) writing into the shared ``images/`` directory with the global run index in the file
names. A health check watches every server; one that stops answering for ``dead_after``
seconds is dropped and the runs its parts had not finished (images not on disk) are put back
for the other servers. The manifest records which server made each image (``server``).

``BatchRun.submit()`` with several clients (:func:`._multi_drive.submit_multi`) cuts the
whole plan into parts at once, shared out so that the servers' queues end as even as
possible, sends every part and returns, leaving the items queued.

``resume(out_dir)`` reopens every part: parts still running are resumed on their server
(or given to the others when it is gone), runs no part finished are sent again.

Model inputs are resolved once per server before any work is handed out (keys differ
between installs; see :mod:`invokeai_py_client.dnn_model.per_server`): each server runs the
plan with its own model identifiers (found by hash, then by name and type). The mapping of
each server is recorded in the ledger meta (``models``, and in each part's) so ``resume``
sends the same, and in ``run.json``. A server that lacks a model gets no parts (a warning
is logged); when no server has them,
:class:`~invokeai_py_client.exceptions.ModelSyncError` is raised before anything is sent.
``resume`` first checks each recorded mapping (its models looked up by key): a server whose
model was deleted since is resolved again, and the runs its parts had not finished go to
the servers that have the model. During a run, when a server's items fail and a model it
was sent turns out deleted there, it gets no more parts (the failed items stay reported).

Example::

    run = BatchRun([client_a, client_b], wf, sweep, "out/shared")
    run.run()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from invokeai_py_client.dnn_model.per_server import resolve_servers, stale_mappings
from invokeai_py_client.exceptions import InvokeAIError, RunError
from invokeai_py_client.run._engine import Engine
from invokeai_py_client.run._multi_sched import (
    MAX_PART,
    Throughput,
    may_pull,
    next_part_size,
)
from invokeai_py_client.run._state import TERMINAL, Progress, run_counts
from invokeai_py_client.run.ledger import FileRow, ItemRow, Ledger
from invokeai_py_client.sweep import SubsetPlan, SweepPlan

if TYPE_CHECKING:
    from invokeai_py_client.client import InvokeAIClient

__all__ = ["MultiRun"]

log = logging.getLogger(__name__)
SLOTS_PER_SERVER = 2
#: seconds a server's queue depth reading is reused
DEPTH_TTL = 0.5


@dataclass(slots=True)
class _Part:
    number: int
    url: str
    runs: list[int]
    ledger: Ledger
    plan: SubsetPlan
    engine: Engine | None = None
    state: str = "running"  # running | done | abandoned


@dataclass(slots=True)
class _Server:
    client: InvokeAIClient
    url: str
    dead: bool = False
    failing_since: float | None = None
    uploads: dict[str, str] = field(default_factory=dict)
    models: dict[str, dict[str, Any]] | None = None  # None: not resolved (yet) / unusable
    lost_model: bool = False  # a model it was sent was deleted during the run
    throughput: Throughput = field(default_factory=Throughput)
    foreign: int = 0  # other items pending / running on its queue (last reading)
    depth_at: float = -1e9  # when that was read (monotonic)
    depth_lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class MultiRun:
    """Spread ``plan`` over ``clients`` (internal; :class:`BatchRun` uses it).

    ``meta`` is the run's ledger meta (run id, plan, output nodes...). ``models`` is each
    server's model mapping from :func:`~invokeai_py_client.dnn_model.per_server.resolve_servers`
    (by URL; ``None``: the server cannot run the plan and gets no parts); servers missing
    from it are resolved when :meth:`run` starts (also on resume). ``part_size`` gives
    fixed parts of that many runs (both slots of a server pulling freely, as before adaptive
    sizing); by default parts are sized by :mod:`._multi_sched`.
    """

    def __init__(
        self,
        clients: Sequence[InvokeAIClient],
        plan: SweepPlan,
        out_dir: Path,
        meta: Mapping[str, Any],
        *,
        concurrency: int = 4,
        on_progress: Callable[[Progress], Any] | None = None,
        leave_running_on_cancel: bool = False,
        part_size: int | None = None,
        dead_after: float = 10.0,
        ledger: Ledger | None = None,
        models: Mapping[str, Mapping[str, Any] | None] | None = None,
    ) -> None:
        self.servers = [_Server(c, c.server_url) for c in clients]
        self.plan = plan
        self.out_dir = out_dir
        self.meta = dict(meta)
        self.concurrency = concurrency
        self.on_progress = on_progress
        self.leave_running = leave_running_on_cancel
        self.dead_after = dead_after
        self.part_size = None if part_size is None else max(1, min(part_size, MAX_PART))
        self.todo: deque[int] = deque(range(plan.count))  # runs no part has (yet)
        self.parts: list[_Part] = []
        self.cancel_event = asyncio.Event()
        self.cancelled = False
        self.t0 = time.monotonic()
        self.listeners: list[asyncio.Queue[Progress | None]] = []
        self.resume_parts: dict[str, list[_Part]] = {}
        self._baseline = {"completed": 0, "failed": 0, "images": 0}
        self._recorded: set[str] = set()  # servers whose mapping comes from the ledger
        if ledger is None:
            self.ledger = Ledger.create(
                out_dir,
                {**self.meta, "multi": True, "servers": [s.url for s in self.servers]},
            )
        else:
            self.ledger = ledger
            recorded = ledger.get_meta("models") or {}
            self._recorded = {u for u, m in recorded.items() if m} - set(models or {})
            models = {**recorded, **(models or {})}
            self._load_parts()
        self._set_models(models or {})

    def _set_models(self, models: Mapping[str, Mapping[str, Any] | None]) -> None:
        """Take each server's mapping; a server known to lack a model gets no parts."""
        for s in self.servers:
            if s.url in models:
                m = models[s.url]
                s.models = None if m is None else {k: dict(v) for k, v in m.items()}
                s.dead = m is None
        self.ledger.set_meta("models", {s.url: s.models for s in self.servers})

    async def _check_recorded(self) -> set[str]:
        """Resume: the servers whose recorded mapping names a model they no longer have.

        Their mapping is dropped here (in memory only, so the ledger keeps it until a new
        resolution succeeds) and resolved again like a server without one.
        """
        asked = [s for s in self.servers if s.url in self._recorded and s.models]
        self._recorded = set()
        if not asked:
            return set()
        stale = await stale_mappings([s.client for s in asked], {s.url: s.models for s in asked})
        for s in asked:
            if s.url in stale:
                log.warning(
                    "server %s: %s; resolving its models again, its unfinished runs go to "
                    "servers that have them",
                    s.url,
                    stale[s.url],
                )
                s.models = None
        return set(stale)

    async def _resolve_models(self) -> None:
        """Resolve the model inputs on every server without a mapping (once per server).

        On resume, recorded mappings are checked first (a model deleted since is stale).
        Raises ModelSyncError when no server can run the plan (nothing sent or recorded);
        the parts a now unusable or remapped server was running on resume go to the others
        (resuming them would retry its items as they were sent, with the old keys).
        """
        stale = await self._check_recorded()
        todo = [s for s in self.servers if s.models is None]
        if not todo:
            return
        labels = {
            (str(n), str(f)): (int(i), str(lab))
            for n, f, i, lab in self.ledger.get_meta("model_inputs") or []
        }
        known = {s.url: s.models for s in self.servers}
        found = await resolve_servers(
            [s.client for s in self.servers], self.plan, labels, known=known
        )
        self._set_models(found)
        for s in self.servers:
            if s.models is None or s.url in stale:
                for part in self.resume_parts.pop(s.url, []):
                    done = self.merged([part])
                    left = [
                        r
                        for r in part.runs
                        if r not in done
                        or not (
                            done[r][0].status == "failed"
                            or (done[r][0].status == "completed" and done[r][1])
                        )
                    ]
                    self._give_back(part, left)

    def _load_parts(self) -> None:
        """Resume: reopen each part; queue the runs no part finished or still owns."""
        from invokeai_py_client.run.batch_run import _drop_missing_files

        urls = {s.url for s in self.servers}
        for number, d in enumerate(self.ledger.get_meta("parts") or []):
            sub = Ledger.open(self.out_dir / str(d["dir"]))
            _drop_missing_files(self.out_dir, sub)
            plan = SweepPlan.from_dict(sub.get_meta("plan"))
            assert isinstance(plan, SubsetPlan)
            part = _Part(number, str(d["server"]), list(d["runs"]), sub, plan, state=d["state"])
            if part.state == "running" and part.url not in urls:
                part.state = "abandoned"
            self.parts.append(part)
            if part.state == "running":
                self.resume_parts.setdefault(part.url, []).append(part)
        finished = {
            r
            for r, (row, files, _) in self.merged().items()
            if row.status == "failed" or (row.status == "completed" and files)
        }
        owned = {r for p in self.parts if p.state == "running" for r in p.runs}
        self.todo = deque(r for r in range(self.plan.count) if r not in finished and r not in owned)
        self._save_parts()
        # outcomes of parts that will not run again count from the start
        for row, files, _ in self.merged([p for p in self.parts if p.state != "running"]).values():
            if row.status == "completed" and files:
                self._baseline["completed"] += 1
                self._baseline["images"] += len(files)
            elif row.status == "failed":
                self._baseline["failed"] += 1

    def _save_parts(self) -> None:
        self.ledger.set_meta(
            "parts",
            [
                {"dir": f"parts/{p.number:03d}", "server": p.url, "runs": p.runs, "state": p.state}
                for p in self.parts
            ],
        )

    # ------------------------------------------------------------------ progress

    def merged(
        self, parts: Sequence[_Part] | None = None
    ) -> dict[int, tuple[ItemRow, list[FileRow], str]]:
        """The best record of each run over all parts (completed with files first)."""
        from invokeai_py_client.run.manifest import better, collect_runs

        current: dict[int, tuple[ItemRow, list[FileRow], str]] = {}
        for part in self.parts if parts is None else parts:
            files = part.engine.files if part.engine is not None else None
            for r, rec in collect_runs(part.ledger, part.plan, files).items():
                if better(current.get(r), rec):
                    current[r] = rec
        return current

    def final_counts(self) -> dict[str, int]:
        """Runs by outcome over all servers, exactly (from every part's ledger)."""
        done = failed = canceled = images = 0
        for row, files, _ in self.merged().values():
            images += len(files)
            if row.status == "completed" and files:
                done += 1
            elif row.status == "failed":
                failed += 1
            elif row.status == "canceled":
                canceled += 1
        return run_counts(self.plan.count, done, failed, canceled, images)

    def counts(self) -> dict[str, int]:
        """Runs by outcome over all servers (from each part's counters: cheap)."""
        done, failed, images = (
            self._baseline["completed"],
            self._baseline["failed"],
            self._baseline["images"],
        )
        canceled = 0
        for part in self.parts:
            if part.engine is None:
                continue
            c = part.engine.counts()
            done += c["completed"]
            failed += c["failed"]
            images += c["images"]
            if part.state != "abandoned":  # an abandoned part's canceled runs were moved
                canceled += c["canceled"]
        return run_counts(self.plan.count, done, failed, canceled, images)

    def progress(self, last: Mapping[str, Any] | None = None) -> Progress:
        """The current :class:`Progress` over all servers."""
        return Progress.from_counts(self.counts(), time.monotonic() - self.t0, last=last)

    def _part_progress(self, p: Progress) -> None:
        if self.on_progress is None and not self.listeners:
            return
        merged = self.progress(p.last)
        if self.on_progress is not None:
            self.on_progress(merged)
        for q in self.listeners:
            q.put_nowait(merged)

    # ------------------------------------------------------------------ running

    async def run(self) -> None:
        """Run every part to the end (or until cancelled / every server is gone)."""
        await self._resolve_models()
        monitors = [asyncio.create_task(self._watch(s)) for s in self.servers]
        workers = [
            asyncio.create_task(self._worker(s))
            for s in self.servers
            for _ in range(SLOTS_PER_SERVER)
        ]
        try:
            await asyncio.gather(*workers)
        finally:
            for t in monitors + workers:
                t.cancel()
            # gather, not "suppress(CancelledError): await t": that would also swallow a
            # cancel of this task arriving meanwhile
            await asyncio.gather(*monitors, *workers, return_exceptions=True)
        if self.todo and not self.cancel_event.is_set():
            lost = [s.url for s in self.servers if s.lost_model]
            why = f" or lost a model input ({', '.join(lost)})" if lost else ""
            raise RunError(
                f"every server stopped answering{why}; {len(self.todo)} runs were not made"
            )

    def _busy(self) -> bool:
        return bool(self.todo) or any(p.state == "running" for p in self.parts)

    async def _worker(self, server: _Server) -> None:
        while self._busy() and not self.cancel_event.is_set():
            if server.dead:
                return
            mine = self.resume_parts.get(server.url)
            if mine:
                await self._run_part(server, mine.pop(0), resumed=True)
                continue
            if not self.todo or not await self._may_pull(server) or not self.todo:
                await asyncio.sleep(0.2)  # another server may still give work back
                continue
            runs = [self.todo.popleft() for _ in range(self._next_size(server))]
            part = self._new_part(server, runs)
            await self._run_part(server, part)

    # ------------------------------------------------------------------ scheduling

    def _live(self) -> list[_Server]:
        return [s for s in self.servers if not s.dead and s.models is not None]

    def _own(self, server: _Server) -> int:
        """Runs of this run the server still has to make (sent or not, not yet ended)."""
        n = 0
        for p in self.parts:
            if p.url != server.url or p.state != "running":
                continue
            e = p.engine
            if e is None:
                n += len(p.runs)
                continue
            ended = sum(1 for iid in e.run_item.values() if e.items[iid].status in TERMINAL)
            n += max(0, e.count - ended)
        return n

    def _finished(self, server: _Server) -> int:
        """Runs the server finished in this process (completed or failed)."""
        n = 0
        for p in self.parts:
            if p.url == server.url and p.engine is not None:
                c = p.engine.counts()
                n += max(0, c["completed"] + c["failed"] - p.engine.done_at_start)
        return n

    def _rate(self, server: _Server, now: float) -> float | None:
        return server.throughput.rate(self._finished(server), now)

    async def _read_depth(self, server: _Server) -> None:
        """Read how many items others left on the server's queue (reused DEPTH_TTL s)."""
        async with server.depth_lock:  # both slots: one reading
            if time.monotonic() - server.depth_at < DEPTH_TTL:
                return
            try:
                status = await server.client.queue.aqueue_status()
            except InvokeAIError as exc:
                log.info("queue status of %s: %s", server.url, exc)
                return
            finally:
                server.depth_at = time.monotonic()
            q = status.get("queue") or status
            total = int(q.get("pending", 0)) + int(q.get("in_progress", 0))
            server.foreign = max(0, total - self._own(server))

    async def _may_pull(self, server: _Server) -> bool:
        """Whether the server takes another part now (see :mod:`._multi_sched`)."""
        if self.part_size is not None:
            return True
        await self._read_depth(server)
        others_idle = any(o is not server and o.foreign == 0 for o in self._live())
        return may_pull(
            self._own(server),
            server.foreign,
            self._rate(server, time.monotonic()),
            others_idle=others_idle,
            has_part=server.throughput.in_flight > 0,
        )

    def _next_size(self, server: _Server) -> int:
        if self.part_size is not None:
            return min(self.part_size, len(self.todo))
        now = time.monotonic()
        rates = {s.url: self._rate(s, now) for s in self._live()}
        rates.setdefault(server.url, self._rate(server, now))
        return next_part_size(len(self.todo), rates, server.url)

    def _new_part(self, server: _Server, runs: list[int]) -> _Part:
        number = len(self.parts)
        sub = self.plan.subset(runs)
        part_dir = self.out_dir / "parts" / f"{number:03d}"
        run_id = f"{self.meta['run_id']}-{number}"
        ledger = Ledger.create(
            part_dir,
            {
                **self.meta,
                "run_id": run_id,
                "destination": f"ivkrun:{run_id}",
                "server": server.url,
                "plan": sub.to_dict(),
                "uploads": dict(server.uploads),
                "models": server.models or {},
            },
        )
        part = _Part(number, server.url, runs, ledger, sub)
        self.parts.append(part)
        self._save_parts()
        return part

    async def _prepare(self, server: _Server, part: _Part) -> SweepPlan | None:
        """The part's plan for its server (images uploaded, its model keys); None: given back."""
        from invokeai_py_client.run.batch_run import _upload_images

        try:
            plan = await _upload_images(server.client, part.ledger, part.plan)
            server.uploads.update(part.ledger.get_meta("uploads") or {})
            models = part.ledger.get_meta("models")
            if models is None:  # a part written before models were resolved per server
                models = server.models or {}
                part.ledger.set_meta("models", models)
            return plan.with_models(models)
        except InvokeAIError as exc:
            log.warning("server %s: upload failed (%s); giving the part back", server.url, exc)
            self._give_back(part, part.runs)
            return None

    async def _run_part(self, server: _Server, part: _Part, *, resumed: bool = False) -> None:
        server.throughput.begin(time.monotonic())
        try:
            await self._follow_part(server, part, resumed=resumed)
        finally:
            server.throughput.end(time.monotonic())

    def part_engine(
        self,
        server: _Server,
        part: _Part,
        plan: SweepPlan,
        *,
        leave_running: bool,
        retry_statuses: frozenset[str] = frozenset(),
    ) -> Engine:
        """The engine that sends / follows ``part`` on ``server`` (images in the shared dir)."""
        return Engine(
            server.client,
            part.ledger,
            plan,
            part.ledger.path.parent,
            concurrency=self.concurrency,
            on_progress=self._part_progress,
            leave_running_on_cancel=leave_running,
            images_dir=self.out_dir / "images",
            retry_statuses=retry_statuses,
        )

    async def _follow_part(self, server: _Server, part: _Part, *, resumed: bool) -> None:
        plan = await self._prepare(server, part)
        if plan is None:
            return
        engine = self.part_engine(
            server,
            part,
            plan,
            leave_running=self.leave_running,
            retry_statuses=frozenset({"canceled"}) if resumed else frozenset(),
        )
        part.engine = engine
        task = asyncio.create_task(engine.run())
        seen_failed = engine.counts()["failed"]
        while not task.done():
            await asyncio.wait({task}, timeout=0.5)
            if self.cancel_event.is_set():
                engine.cancel_event.set()
            failed = engine.counts()["failed"]
            if failed > seen_failed:  # (also when the part just ended)
                seen_failed = failed
                await self._check_model(server)
            if server.lost_model:
                await self._drop_part(part, engine, task)
                return
            if server.dead and not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)  # (keeps our own cancel)
                self._give_back(part, self._unfinished(part, engine))
                return
        try:
            task.result()
        except InvokeAIError as exc:
            log.warning(
                "server %s: part %d failed (%s); giving it back", server.url, part.number, exc
            )
            server.dead = True
            self._give_back(part, self._unfinished(part, engine))
            return
        if not self.cancel_event.is_set():
            part.state = "done"
            self._save_parts()

    async def _check_model(self, server: _Server) -> None:
        """Items of the server failed: whether a model its mapping sends was deleted there.

        If so the server gets no more parts (its mapping recorded ``None``); its items that
        failed stay failed, with the server's error, in the manifest.
        """
        if server.models is None or server.lost_model:
            return
        stale = await stale_mappings([server.client], {server.url: server.models})
        if server.url not in stale or server.lost_model:
            return
        log.warning(
            "server %s: %s; it gets no more parts, its unfinished runs go to the others",
            server.url,
            stale[server.url],
        )
        server.lost_model = True
        self._set_models({server.url: None})

    async def _drop_part(self, part: _Part, engine: Engine, task: asyncio.Task[None]) -> None:
        """Stop a part of a server that lost a model; its unfinished runs go to the others."""
        engine.cancel_event.set()
        await asyncio.gather(task, return_exceptions=True)  # (keeps our own cancel)
        try:
            if not self.leave_running:  # its items there would fail: cancel them
                await engine.cancel_on_server()
            await engine._reconcile()
            while engine.need_full:  # the server's errors, images of completed items
                await engine._fetch_full()
            await engine.finish_downloads()
        except InvokeAIError as exc:
            log.info("stopping part %d: %s", part.number, exc)
        self._give_back(part, self._unfinished(part, engine))

    def _unfinished(self, part: _Part, engine: Engine) -> list[int]:
        left = []
        for r in range(part.plan.count):
            iid = engine.run_item.get(r)
            row = engine.items.get(iid) if iid is not None else None
            finished = row is not None and (
                row.status == "failed" or (row.status == "completed" and engine._downloaded(row))
            )
            if not finished or (row is not None and row.status not in TERMINAL):
                left.append(part.plan.global_index(r))
        return left

    def _give_back(self, part: _Part, runs: list[int]) -> None:
        part.state = "abandoned"
        self._save_parts()
        if runs:
            log.info(
                "moving %d unfinished runs of part %d to other servers", len(runs), part.number
            )
            self.todo.extendleft(reversed(runs))

    async def _watch(self, server: _Server) -> None:
        http = None
        while not server.dead:
            await asyncio.sleep(1.0)
            http = http or server.client.async_http()
            try:
                await http.request("GET", "/api/v1/app/version", retry=False, timeout=2.0)
                server.failing_since = None
            except InvokeAIError as exc:
                log.info("health check of %s failed: %s", server.url, exc)
                now = time.monotonic()
                server.failing_since = server.failing_since or now
                if now - server.failing_since > self.dead_after:
                    log.warning("server %s stopped answering; dropping it", server.url)
                    server.dead = True

    async def stop(self) -> None:
        """Cancel every running part's items on its server (unless left running)."""
        for part in self.parts:
            if part.engine is not None and part.state == "running" and not self.leave_running:
                with contextlib.suppress(InvokeAIError):
                    await part.engine.cancel_on_server()
                    await part.engine._reconcile()

    def write_outputs(self) -> Path:
        """The merged manifest / run.json of every part."""
        from invokeai_py_client.run.manifest import write_merged

        return write_merged(self.out_dir, self.ledger, self.plan, self.merged())
