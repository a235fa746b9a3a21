"""Nothing lost, nothing done twice: SIGKILL the client at precise points, then resume.

A child process runs a BatchRun of a 3 x 4 sweep and stops itself at a chosen point (a hook
prints ``PAUSED`` and sleeps); the test kills it with SIGKILL, then calls ``resume``. After
that every planned run has exactly one image on disk and the server holds exactly one item
per run for the run's destination. A last test restarts the server mid-run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from invokeai_py_client import InvokeAIClient
from invokeai_py_client.local_server import LocalServer
from invokeai_py_client.run import BatchRun, Ledger, Progress, read_manifest, resume
from invokeai_py_client.sweep import Sweep
from invokeai_py_client.workflow import WorkflowDefinition

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "workflows"

SCRIPT = r"""
import sys, time
from pathlib import Path
from invokeai_py_client import InvokeAIClient
from invokeai_py_client.run import BatchRun
from invokeai_py_client.sweep import Sweep
from invokeai_py_client.workflow import WorkflowDefinition

url, out, mode, example = sys.argv[1:5]
# a shell (and so a CI harness) may start us with SIGINT ignored, which Python keeps: then no
# KeyboardInterrupt and asyncio.run installs no Ctrl-C handler (ivk resets it the same way)
import signal
signal.signal(signal.SIGINT, signal.default_int_handler)

def pause():
    print("PAUSED", flush=True)
    time.sleep(600)

client = InvokeAIClient.from_url(url)
wf = client.workflow_repo.create_workflow(WorkflowDefinition.from_file(example))
sweep = Sweep().axis("Width", [32, 48, 64]).axis("Blur Radius", [1, 2, 3, 4])
if mode == "sigint":
    sweep = Sweep().axis("Width", list(range(16, 216))).axis("Blur Radius", [1])
calls = {"n": 0}

def on_progress(p):
    if mode == "mid_run" and p.done >= 3:
        pause()
    if mode == "sigint" and p.done >= 3 and not calls.get("told"):
        calls["told"] = True
        print("PAUSED", flush=True)  # the test sends SIGINT now
        # hold the run's loop until the signal is in (asyncio.run turns the first SIGINT
        # into a cancel of the run's task, delivered when this returns): on a fast server
        # the run could otherwise end before the signal arrives; the server goes on meanwhile
        time.sleep(1.0)

run = BatchRun(client, wf, sweep, out, on_progress=on_progress, concurrency=1)
if mode == "before_enqueue":
    run._hooks["before_enqueue"] = pause
if mode == "lost_response":
    run._hooks["after_enqueue_post"] = pause
if mode == "ids_unrecorded":  # the batch's item ids are committed, its item rows not yet
    run._hooks["after_batch_sent"] = pause
if mode == "mid_download":
    def mid_download():
        calls["n"] += 1
        if calls["n"] == 4:
            images = Path(out) / "images"
            (images / "0003_partial.png.part").write_bytes(b"\x89PNG half")
            pause()
    run._hooks["mid_download"] = mid_download
try:
    run.run()
except KeyboardInterrupt:
    print("INTERRUPTED", flush=True)
    sys.exit(130)
print("FINISHED", flush=True)
"""


def start_child(url: str, out: Path, mode: str, tmp_path: Path) -> subprocess.Popen[str]:
    script = tmp_path / "child.py"
    script.write_text(SCRIPT, encoding="utf-8")
    return subprocess.Popen(
        [sys.executable, str(script), url, str(out), mode, str(EXAMPLES / "blur.json")],
        stdout=subprocess.PIPE,
        text=True,
    )


def run_until_paused(url: str, out: Path, mode: str, tmp_path: Path) -> None:
    proc = start_child(url, out, mode, tmp_path)
    assert proc.stdout is not None
    deadline = time.monotonic() + 120
    try:
        for line in proc.stdout:
            if line.strip() == "PAUSED":
                break
            assert time.monotonic() < deadline, "child did not reach the pause point"
        else:
            pytest.fail(f"child ended without pausing (rc={proc.wait()})")
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


def server_items(client: InvokeAIClient, destination: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = client.http.get_json(
        "/api/v1/queue/default/list_all", params={"destination": destination}
    )
    return items


def check_complete(client: InvokeAIClient, out: Path, expected: int = 12) -> None:
    rows = read_manifest(out)
    assert sorted(r["run_index"] for r in rows) == list(range(expected))
    assert all(r["status"] == "completed" for r in rows)
    files = sorted(p.name for p in (out / "images").iterdir())
    assert len(files) == expected, files  # exactly one image per planned run, no leftovers
    assert sorted(Path(r["path"]).name for r in rows) == files
    for r in rows:
        with Image.open(out / r["path"]) as im:
            assert im.size[0] == r["params"]["Width"]
    destination = Ledger.open(out).get_meta("destination")
    items = server_items(client, destination)
    assert len(items) == expected  # the server holds no duplicate items for the run
    combos = {
        json.dumps(sorted((v["field_name"], v["value"]) for v in it["field_values"]))
        for it in items
    }
    assert len(combos) == expected
    assert {it["status"] for it in items} == {"completed"}


@pytest.mark.server
@pytest.mark.parametrize(
    "mode", ["before_enqueue", "lost_response", "ids_unrecorded", "mid_run", "mid_download"]
)
def test_sigkill_then_resume(
    mode: str, server: LocalServer, client: InvokeAIClient, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    run_until_paused(server.url, out, mode, tmp_path)
    ledger = Ledger.open(out)
    states = [b.state for b in ledger.batches()]
    if mode in ("before_enqueue", "lost_response"):
        assert states == ["sending"]
    else:
        assert states == ["sent"]
    if mode == "ids_unrecorded":
        assert len(ledger.batches()[0].item_ids) == 12 and not list(ledger.items())
    if mode == "mid_download":
        assert (out / "images" / "0003_partial.png.part").exists()
        # a file that was recorded but got damaged afterwards is downloaded again
        done = next(iter(ledger.files().values()))
        (out / done.path).write_bytes(b"broken")
    ledger.close()

    result = resume(out, client=client)
    assert result.ok, result
    check_complete(client, out)
    if mode == "lost_response":
        [batch] = Ledger.open(out).batches()
        assert batch.state == "sent" and len(batch.item_ids) == 12  # adopted, not re-sent
    # resuming a finished run changes nothing
    again = resume(out, client=client)
    assert again.ok
    check_complete(client, out)


@pytest.mark.server
def test_ctrl_c_cancels_on_the_server_then_resume_completes(
    server: LocalServer, client: InvokeAIClient, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    proc = start_child(server.url, out, "sigint", tmp_path)
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.strip() == "PAUSED":
            proc.send_signal(signal.SIGINT)
            break
    rest = proc.stdout.read()
    assert proc.wait(timeout=60) == 130, rest
    assert "INTERRUPTED" in rest
    ledger = Ledger.open(out)
    [batch] = ledger.batches()
    status = client.queue.batch_status(batch.batch_id)
    assert status["pending"] == 0 and status["in_progress"] == 0  # canceled on the server
    assert 0 < status["completed"] < 200
    rows = read_manifest(out)  # written on the way out
    assert {r["status"] for r in rows} <= {"completed", "canceled"}
    ledger.close()
    result = resume(out, client=client)
    assert result.ok and result.images == 200


@pytest.mark.slow
def test_server_restart_mid_run(tmp_path: Path) -> None:
    with LocalServer(tmp_path / "root", fast=True) as srv:
        client = InvokeAIClient.from_url(srv.url)
        wf = client.workflow_repo.create_workflow(
            WorkflowDefinition.from_file(EXAMPLES / "blur.json")
        )
        sweep = Sweep().axis("Width", list(range(16, 96))).axis("Blur Radius", [0.5, 1.5])
        reached = threading.Event()

        def on_progress(p: Progress) -> None:
            if p.done >= 10:
                reached.set()

        run = BatchRun(client, wf, sweep, tmp_path / "out", on_progress=on_progress)
        box: dict[str, Any] = {}
        worker = threading.Thread(target=lambda: box.setdefault("result", run.run()))
        worker.start()
        assert reached.wait(120)
        srv.kill()  # a crash: the item in progress is left "in_progress" in the queue DB,
        srv.restart()  # which the server marks canceled on start; the run retries it
        worker.join(timeout=300)
        assert not worker.is_alive()
        result = box["result"]
        assert result.ok, result
        rows = read_manifest(tmp_path / "out")
        assert sorted(r["run_index"] for r in rows) == list(range(160))
        assert len(list((tmp_path / "out" / "images").iterdir())) == 160
        destination = Ledger.open(tmp_path / "out").get_meta("destination")
        items = server_items(client, destination)
        done = [it for it in items if it["status"] == "completed"]
        # (usually one more item, canceled: the one in progress when the server died)
        assert {it["status"] for it in items} <= {"completed", "canceled"}
        assert len(done) == 160  # items the restart canceled were retried once, not twice
        combos = {
            json.dumps(sorted((v["field_name"], v["value"]) for v in it["field_values"]))
            for it in done
        }
        assert len(combos) == 160
        client.close()


MULTI_SCRIPT = r"""
import sys, time
from invokeai_py_client import InvokeAIClient
from invokeai_py_client.run import BatchRun
from invokeai_py_client.sweep import Sweep
from invokeai_py_client.workflow import WorkflowDefinition

urls, out, example = sys.argv[1].split(","), sys.argv[2], sys.argv[3]
clients = [InvokeAIClient.from_url(u) for u in urls]
wf = clients[0].workflow_repo.create_workflow(WorkflowDefinition.from_file(example))
sweep = Sweep().axis("Width", list(range(16, 56))).axis("Blur Radius", [1])

def on_progress(p):
    if p.done >= 8:
        print("PAUSED", flush=True)
        time.sleep(600)

BatchRun(clients, wf, sweep, out, on_progress=on_progress).run()
"""


@pytest.mark.slow
def test_sigkill_a_run_on_two_servers_then_resume(tmp_path: Path) -> None:
    servers = [LocalServer(tmp_path / f"root{i}", fast=True).start() for i in range(2)]
    try:
        out = tmp_path / "out"
        script = tmp_path / "multi_child.py"
        script.write_text(MULTI_SCRIPT, encoding="utf-8")
        urls = ",".join(s.url for s in servers)
        proc = subprocess.Popen(
            [sys.executable, str(script), urls, str(out), str(EXAMPLES / "blur.json")],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        try:
            assert proc.stdout.readline().strip() == "PAUSED"
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        result = resume(out)  # the servers recorded in the ledger
        assert result.ok and result.images == 40, result
        rows = read_manifest(out)
        assert sorted(r["run_index"] for r in rows) == list(range(40))
        files = sorted(p.name for p in (out / "images").iterdir())
        assert len(files) == 40 and files == sorted(Path(r["path"]).name for r in rows)
        with (
            InvokeAIClient.from_url(servers[0].url) as c0,
            InvokeAIClient.from_url(servers[1].url) as c1,
        ):
            done = [
                it
                for c in (c0, c1)
                for it in c.http.get_json("/api/v1/queue/default/list_all")
                if it["status"] == "completed"
            ]
        assert len(done) == 40  # no run made twice
    finally:
        for s in servers:
            s.stop()
