"""``BatchRun.submit()`` over several servers: every part enqueued, then ``resume`` ends it.

Both servers' processors are paused while submitting, so what each queue holds when
``submit()`` returns is exact (nothing can have started or been downloaded). Server A also
holds three items of another user: the shares even out the queues (A gets fewer runs).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from invokeai_py_client import InvokeAIClient
from invokeai_py_client.local_server import LocalServer
from invokeai_py_client.run import BatchRun, Ledger, read_manifest, resume
from invokeai_py_client.sweep import Sweep
from invokeai_py_client.workflow import WorkflowDefinition

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "workflows"


def blur(client: InvokeAIClient) -> Any:
    return client.workflow_repo.create_workflow(
        WorkflowDefinition.from_file(EXAMPLES / "blur.json")
    )


def _processor(client: InvokeAIClient, action: str) -> None:
    client.http.request("PUT", f"/api/v1/queue/default/processor/{action}")


def _pending(client: InvokeAIClient) -> int:
    return int(client.queue.queue_status()["queue"]["pending"])


@pytest.mark.slow
def test_submit_over_two_servers_then_resume_collects_every_image(tmp_path: Path) -> None:
    # started one after the other (see test_batch_run)
    servers = [LocalServer(tmp_path / f"root{i}", fast=True).start() for i in range(2)]
    clients = [InvokeAIClient.from_url(s.url) for s in servers]
    a, b = clients
    out = tmp_path / "out"
    try:
        for c in clients:
            _processor(c, "pause")
        other = BatchRun(a, blur(a), Sweep().axis("Width", [16, 24, 32]), tmp_path / "other")
        assert other.submit().remaining == 3  # another user's items on A

        sweep = Sweep().axis("Width", list(range(16, 56))).axis("Blur Radius", [1])
        submitted = BatchRun(clients, blur(a), sweep, out).submit()
        assert not submitted.cancelled
        assert submitted.total == 40 and submitted.remaining == 40 and submitted.images == 0
        # every run is queued, shared to even out the queues: A 3 + 18, B 22
        assert _pending(a) == 3 + 18 and _pending(b) == 22
        assert not list((out / "images").glob("*.png"))
        ledger = Ledger.open(out)
        parts = ledger.get_meta("parts")
        ledger.close()
        assert {p["state"] for p in parts} == {"running"}
        assert sorted(r for p in parts for r in p["runs"]) == list(range(40))
        assert {p["server"] for p in parts} == {a.server_url, b.server_url}
        rows = read_manifest(out)
        assert {r["status"] for r in rows} == {"pending"}

        for c in clients:
            _processor(c, "resume")
        done = resume(out)
        assert done.ok and done.images == 40, done
        rows = read_manifest(out)
        assert sorted(r["run_index"] for r in rows) == list(range(40))
        assert Counter(r["server"] for r in rows) == {a.server_url: 18, b.server_url: 22}
        names = sorted(p.name for p in (out / "images").iterdir())
        assert len(names) == 40 and names == sorted(Path(r["path"]).name for r in rows)
        assert _pending(a) == 0 and _pending(b) == 0
    finally:
        for c in clients:
            c.close()
        for s in servers:
            s.stop()
