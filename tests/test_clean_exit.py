"""Programs using the client exit cleanly: no unclosed sessions, sockets or pending tasks.

Each program runs in a fresh interpreter (``-W default`` so that ``ResourceWarning`` is shown)
against the real server; its stderr must not mention an unclosed aiohttp session
(socket.io), an unclosed socket / transport (httpx), a destroyed pending task or a coroutine
that was never awaited.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from invokeai_py_client.local_server import LocalServer

BLUR = Path(__file__).resolve().parents[1] / "examples" / "workflows" / "blur.json"

#: What an unclean exit prints (aiohttp, asyncio, ResourceWarning, RuntimeWarning).
BAD = ("Unclosed", "unclosed", "Task was destroyed", "was never awaited")

PRELUDE = """
import asyncio, sys, time, uuid
from invokeai_py_client import InvokeAIClient, WorkflowDefinition
URL, BLUR = sys.argv[1], sys.argv[2]

def body(c):
    wf = c.workflow_repo.create_workflow(WorkflowDefinition.from_file(BLUR))
    return wf.build_payload(batch_id=str(uuid.uuid4()))
"""

PROGRAMS = {
    "with_block": """
with InvokeAIClient.from_url(URL) as c:
    ids = c.queue.enqueue_batch(body(c))["item_ids"]
    print([i["status"] for i in c.events.iter_finished(ids, timeout=60)])
""",
    "never_closed": """
c = InvokeAIClient.from_url(URL)
ids = c.queue.enqueue_batch(body(c))["item_ids"]
print([i["status"] for i in c.events.iter_finished(ids, timeout=60)])
""",
    "dropped_without_close": """
import gc, threading
def work():
    c = InvokeAIClient.from_url(URL)
    ids = c.queue.enqueue_batch(body(c))["item_ids"]
    print([i["status"] for i in c.events.iter_finished(ids, timeout=60)])
work()
gc.collect()
assert not [t for t in threading.enumerate() if t.name == "invokeai-events"], "hub still runs"
""",
    # closed at every moment of the socket's connect (the leak this file was written for)
    "closed_while_connecting": """
for i in range(30):
    with InvokeAIClient.from_url(URL) as c:
        c.events.start()
        time.sleep(i * 0.002)
print("ok")
""",
    "async_with": """
async def main():
    async with InvokeAIClient.from_url(URL) as c:
        ids = (await c.queue.aenqueue_batch(body(c)))["item_ids"]
        print([i["status"] async for i in c.events.aiter_finished(ids, timeout=60)])
asyncio.run(main())
""",
    "async_sync_close_inside_loop": """
async def main():
    with InvokeAIClient.from_url(URL) as c:
        ids = (await c.queue.aenqueue_batch(body(c)))["item_ids"]
        print([i["status"] async for i in c.events.aiter_finished(ids, timeout=60)])
asyncio.run(main())
""",
    "async_closed_after_the_loop": """
c = InvokeAIClient.from_url(URL)
async def main():
    ids = (await c.queue.aenqueue_batch(body(c)))["item_ids"]
    print([i["status"] async for i in c.events.aiter_finished(ids, timeout=60)])
asyncio.run(main())
c.close()
""",
    "async_never_closed": """
c = InvokeAIClient.from_url(URL)
async def main():
    ids = (await c.queue.aenqueue_batch(body(c)))["item_ids"]
    print([i["status"] async for i in c.events.aiter_finished(ids, timeout=60)])
asyncio.run(main())
""",
}


def _run(args: list[str], timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("INVOKEAI_URL", "INVOKEAI_API_KEY")}
    env.pop("PYTHONWARNINGS", None)
    return subprocess.run(
        [sys.executable, "-W", "default", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )


def _assert_clean(res: subprocess.CompletedProcess[str]) -> None:
    assert res.returncode == 0, res.stdout + res.stderr
    found = [bad for bad in BAD if bad in res.stderr]
    assert not found, f"{found} in stderr:\n{res.stderr}"


@pytest.mark.server
@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_program_exits_without_leak_warnings(server: LocalServer, name: str) -> None:
    code = textwrap.dedent(PRELUDE) + textwrap.dedent(PROGRAMS[name])
    res = _run(["-c", code, server.url, str(BLUR)])
    _assert_clean(res)
    assert "completed" in res.stdout or res.stdout.strip() == "ok", res.stdout


@pytest.mark.server
@pytest.mark.parametrize("servers", [1, 2], ids=["one-server", "two-servers"])
def test_ivk_run_exits_without_leak_warnings(
    server: LocalServer, tmp_path: Path, servers: int
) -> None:
    # two servers: the same one under a second name, so the multi-server path (one client
    # per server, health checks on each client's async transport) runs too
    urls = [server.url, server.url.replace("127.0.0.1", "localhost")][:servers]
    server_args = [arg for url in urls for arg in ("--server", url)]
    res = _run(
        [
            "-m",
            "invokeai_py_client.cli",
            "run",
            str(BLUR),
            "--sweep",
            "Blur Radius=0,1,2,3",
            *server_args,
            "--out",
            str(tmp_path / "run"),
            "--json",
        ]
    )
    _assert_clean(res)
    assert '"ok": true' in res.stdout.splitlines()[-1]


def test_unreachable_server_exits_without_leak_warnings() -> None:
    code = textwrap.dedent(
        """
        from invokeai_py_client import InvokeAIClient
        with InvokeAIClient.from_url("http://127.0.0.1:9") as c:
            print(c.events.wait_ready(3))
        """
    )
    res = _run(["-c", code])
    _assert_clean(res)
    assert res.stdout.strip() == "False"
