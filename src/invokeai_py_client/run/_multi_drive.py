"""Driving a :class:`~invokeai_py_client.run.multi.MultiRun`: run, submit, resume.

Each driver ends the same way: the merged manifest / ``run.json`` written, every ledger
closed, a :class:`~invokeai_py_client.run.batch_run.RunResult` over all servers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from invokeai_py_client.exceptions import InvokeAIError, RunError
from invokeai_py_client.run._multi_sched import MAX_PART, water_fill
from invokeai_py_client.run._state import Progress
from invokeai_py_client.run.ledger import Ledger
from invokeai_py_client.run.multi import MultiRun, _Part, _Server
from invokeai_py_client.sweep import SweepPlan

if TYPE_CHECKING:
    from invokeai_py_client.client import InvokeAIClient
    from invokeai_py_client.run.batch_run import RunResult

__all__ = ["aresume_multi", "drive_multi", "send_all", "submit_multi"]

log = logging.getLogger(__name__)


def _close(multi: MultiRun) -> None:
    multi.ledger.close()
    for part in multi.parts:
        part.ledger.close()


async def drive_multi(multi: MultiRun) -> RunResult:
    """Run a :class:`MultiRun`; on cancel stop cleanly; write the merged outputs."""
    from invokeai_py_client.run.batch_run import RunResult

    interrupted = False
    try:
        await multi.run()
    except asyncio.CancelledError:
        interrupted = True
        multi.cancel_event.set()
    except InvokeAIError:
        _close(multi)
        raise
    try:
        if multi.cancel_event.is_set():
            multi.cancelled = True
            await asyncio.shield(multi.stop())
        path = multi.write_outputs()
        c = multi.final_counts()
    finally:
        for q in multi.listeners:
            q.put_nowait(None)
        _close(multi)
    if interrupted:
        raise asyncio.CancelledError
    return RunResult.from_counts(multi.out_dir, c, path, multi.cancelled)


async def submit_multi(multi: MultiRun) -> RunResult:
    """Send every part of a :class:`MultiRun` and return once all its runs are enqueued.

    The items stay queued on their servers (``resume`` follows them). ``cancelled`` in the
    result is True only when the submission itself was cancelled.
    """
    from invokeai_py_client.run.batch_run import RunResult

    try:
        try:
            await send_all(multi)
        except InvokeAIError:
            multi.write_outputs()
            raise
        path = multi.write_outputs()
        c = multi.final_counts()
    finally:
        for q in multi.listeners:
            q.put_nowait(None)
        _close(multi)
    return RunResult.from_counts(multi.out_dir, c, path, multi.cancel_event.is_set())


async def aresume_multi(
    out: Path,
    ledger: Ledger,
    client: InvokeAIClient | None,
    concurrency: int,
    on_progress: Callable[[Progress], Any] | None,
) -> RunResult:
    """Resume a run spread over several servers (the recorded ones; ``client`` replaces
    the first)."""
    from invokeai_py_client.client import InvokeAIClient

    urls = [str(u) for u in ledger.get_meta("servers") or []]
    from invokeai_py_client import _tokens

    # INVOKEAI_API_KEY for every server, else each server's own saved token (ivk login)
    own = [
        InvokeAIClient.from_url(u, api_key=_tokens.token_for(u)) for u in urls[1 if client else 0 :]
    ]
    clients = ([client] if client is not None else []) + own
    try:
        plan = SweepPlan.from_dict(ledger.get_meta("plan"))
        meta = {
            k: ledger.get_meta(k)
            for k in ("run_id", "destination", "server", "workflow", "workflow_name")
        }
        meta.update(
            plan=ledger.get_meta("plan"),
            output_nodes=ledger.get_meta("output_nodes"),
            board=ledger.get_meta("board"),
            sweep=ledger.get_meta("sweep"),
            created_at=ledger.get_meta("created_at"),
            uploads={},
        )
        multi = MultiRun(
            clients,
            plan,
            out,
            meta,
            concurrency=concurrency,
            on_progress=on_progress,
            ledger=ledger,
        )
        return await drive_multi(multi)
    finally:
        for c in own:
            c.close()


async def send_all(multi: MultiRun) -> None:
    """Send every run and return once all are queued on the servers (not followed).

    The runs nobody has are shared out so that the servers' queues end as even as
    possible (items others left there count), in parts of at most one enqueue each; each
    part is sent like ``BatchRun.submit()`` on one server (its items left queued, the part
    recorded running, so ``resume`` follows it). A server that fails while sending is
    dropped and its share goes to the others; RunError when none is left.
    """
    await multi._resolve_models()
    while multi.todo and not multi.cancel_event.is_set():
        live = multi._live()
        if not live:
            raise RunError(f"no server left to send to; {len(multi.todo)} runs were not sent")
        for s in live:
            s.depth_at = -1e9  # read now
            await multi._read_depth(s)
        shares = water_fill(len(multi.todo), [s.foreign for s in live])
        work: list[tuple[_Server, list[list[int]]]] = []
        for s, n in zip(live, shares, strict=True):
            runs = [multi.todo.popleft() for _ in range(n)]
            work.append((s, [runs[i : i + MAX_PART] for i in range(0, n, MAX_PART)]))
        await asyncio.gather(*(_submit_to(multi, s, chunks) for s, chunks in work if chunks))


async def _submit_to(multi: MultiRun, server: _Server, chunks: list[list[int]]) -> None:
    for k, runs in enumerate(chunks):
        if server.dead or multi.cancel_event.is_set():
            for rest in reversed(chunks[k:]):
                multi.todo.extendleft(reversed(rest))
            return
        await _send_part(multi, server, multi._new_part(server, runs))


async def _send_part(multi: MultiRun, server: _Server, part: _Part) -> None:
    """Enqueue every run of a new part on its server, then stop following it."""
    from invokeai_py_client.run.batch_run import SubmitHook

    plan = await multi._prepare(server, part)
    if plan is None:
        server.dead = True
        return
    engine = multi.part_engine(server, part, plan, leave_running=True)
    engine.hooks["after_enqueue"] = SubmitHook(
        lambda: part.ledger, plan.count, engine.cancel_event.set
    )
    part.engine = engine
    try:
        await engine.run()
        await engine.finish_downloads()  # images that were already made
    except InvokeAIError as exc:
        log.warning("server %s: sending part %d failed (%s)", server.url, part.number, exc)
        server.dead = True
        multi._give_back(part, multi._unfinished(part, engine))
        return
    if not engine.cancelled:  # everything made and downloaded already
        part.state = "done"
        multi._save_parts()
