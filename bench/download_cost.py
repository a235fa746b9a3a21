"""What each way of downloading a batch's images costs the server (issue 6, fast mode).

    .venv/bin/python bench/download_cost.py [--n 300] [--rounds 3] [--strategies LIST]

On one fresh fast ``LocalServer`` it alternates the floor's batch (the server-limit
contender) with a separate downloader process that follows the events and writes every image
of the batch to disk, one strategy per run, and prints the server's processing span of the
batch for each (same figure as ``observer_cost.py``) plus how long after the batch's last
``completed_at`` the downloader had the last image on disk (``tail s``) and how many HTTP
requests it made:

* ``plain``: nobody listens (the floor);
* ``events``: subscribed to the queue, downloads nothing;
* ``get4``: one ``GET .../full`` per image as its save node completes, 4 at once (what the
  run engine did before the bulk path);
* ``get1``: the same, one at a time on one keep-alive connection;
* ``bulk``: adaptive bulk zip downloads: one ``POST /images/download`` in flight at a time,
  covering every image completed since the last one, the zip fetched on
  ``bulk_download_complete``; single GETs when only 1-2 images are pending. In practice the
  GETs keep up with a fast server, so this never builds a zip: it behaves as ``get1``;
* ``bulkK`` (e.g. ``bulk16``): images wait until K are pending (or the oldest waited 1 s, or
  all N are known), then go as one zip (single GETs for fewer than 3).

Besides the span it prints the server process's CPU seconds during each run (user + system,
``/proc``; the server's own work, less sensitive to other load on the machine than the
span).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from compare import ROOT, _clean_env, reset_server, run_contender, server_span

DOWNLOADER = r"""
import asyncio, io, json, sys, time, zipfile
from pathlib import Path
import httpx, socketio

SAVE = sys.argv[4]

async def main(url, n, strategy, out):
    out = Path(out); out.mkdir(parents=True, exist_ok=True)
    sio = socketio.AsyncClient()
    pending = []          # image names not yet asked for
    have = set()
    done_evt = asyncio.Event()
    wake = asyncio.Event()
    zips = {}             # bulk item name -> future
    stats = {"gets": 0, "bulk_posts": 0, "bulk_gets": 0, "events": 0}
    last_write = [0.0]

    async def on_any(event, data=None):
        stats["events"] += 1
        if event == "invocation_complete" and data.get("invocation_source_id") == SAVE:
            pending.append(data["result"]["image"]["image_name"]); wake.set()
        elif event in ("bulk_download_complete", "bulk_download_error"):
            fut = zips.get(data.get("bulk_download_item_name"))
            if fut is not None and not fut.done():
                fut.set_result(event)
    sio.on("*", on_any)
    await sio.connect(url, socketio_path="/ws/socket.io", transports=["websocket"])
    await sio.call("subscribe_queue", {"queue_id": "default"})
    await sio.emit("subscribe_bulk_download", {"bulk_download_id": "default"})
    print("subscribed", flush=True)
    if strategy == "events":
        await asyncio.sleep(3600)
    http = httpx.AsyncClient(base_url=url, timeout=60, trust_env=False)

    def write(name, data):
        (out / name).write_bytes(data); have.add(name); last_write[0] = time.time()

    async def get_one(name):
        stats["gets"] += 1
        r = await http.get(f"/api/v1/images/i/{name}/full"); r.raise_for_status()
        write(name, r.content)

    async def bulk(names):
        fut = asyncio.get_running_loop().create_future()
        stats["bulk_posts"] += 1
        r = await http.post("/api/v1/images/download", json={"image_names": names})
        r.raise_for_status()
        item = r.json()["bulk_download_item_name"]
        zips[item] = fut
        kind = await asyncio.wait_for(fut, 30)
        assert kind == "bulk_download_complete", kind
        stats["bulk_gets"] += 1
        r = await http.get(f"/api/v1/images/download/{item}"); r.raise_for_status()
        with zipfile.ZipFile(io.BytesIO(r.content)) as z:
            for info in z.infolist():
                write(info.filename.rsplit("/", 1)[-1], z.read(info))

    width = 4 if strategy == "get4" else 1
    sem = asyncio.Semaphore(width)
    tasks = set()
    min_bulk = int(strategy[4:] or 3) if strategy.startswith("bulk") else 0
    first_pending = [0.0]
    while len(have) < n:
        if min_bulk > 3 and pending:
            try:
                await asyncio.wait_for(wake.wait(), 0.05)
            except TimeoutError:
                pass
        else:
            await wake.wait()
        wake.clear()
        if min_bulk > 3:
            if pending and not first_pending[0]:
                first_pending[0] = time.monotonic()
            end = len(have) + len(pending) >= n
            old = pending and time.monotonic() - first_pending[0] > 1.0
            if len(pending) < min_bulk and not end and not old:
                continue
            first_pending[0] = 0.0
        while pending:
            if min_bulk and len(pending) >= 3:
                names = pending[:]; pending.clear()
                await bulk(names)
                continue
            name = pending.pop(0)
            async def one(name=name):
                async with sem:
                    await get_one(name)
                wake.set()
            t = asyncio.create_task(one()); tasks.add(t); t.add_done_callback(tasks.discard)
            if strategy != "get4":
                await t
        if len(have) < n and not pending:
            if tasks:
                await asyncio.wait(set(tasks), return_when=asyncio.FIRST_COMPLETED)
            continue
    print(json.dumps({"last_write": last_write[0], **stats}), flush=True)
    await http.aclose(); await sio.disconnect()

asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[5]))
"""


def with_downloader(url: str, n: int, strategy: str, out: Path) -> tuple[float | None, str]:
    import json

    from contenders._common import SAVE_NODE_ID

    dl_out = out.with_name("download_cost_files") / strategy
    shutil.rmtree(dl_out, ignore_errors=True)
    proc = subprocess.Popen(
        [sys.executable, "-c", DOWNLOADER, url, str(n), strategy, SAVE_NODE_ID, str(dl_out)],
        stdout=subprocess.PIPE,
        env=_clean_env(),
        text=True,
    )
    assert proc.stdout is not None
    proc.stdout.readline()  # "subscribed"
    time.sleep(0.2)
    run_contender("server_limit", 0, url, n, out)
    info = ""
    if strategy == "events":
        proc.terminate()
    else:
        line = proc.stdout.readline()
        stats = json.loads(line)
        last_done = _last_completed(url)
        files = len(list(dl_out.glob("*.png")))
        info = (
            f"tail {stats['last_write'] - last_done:.2f} s, {files} files, "
            f"gets {stats['gets']}, bulk {stats['bulk_posts']}"
        )
    proc.wait(timeout=60)
    return server_span(url), info


def _last_completed(url: str) -> float:
    import httpx
    from compare import _server_ts

    with httpx.Client(base_url=url, timeout=60.0, trust_env=False) as http:
        ids = http.get("/api/v1/queue/default/item_ids").json().get("item_ids", [])
        rows = http.post(
            "/api/v1/queue/default/item_summaries_by_ids", json={"item_ids": ids[:1000]}
        ).json()
    return max(_server_ts(r["completed_at"]) for r in rows if r.get("completed_at"))


def server_cpu(pid: int | None) -> float:
    """CPU seconds (user + system) used so far by the process ``pid`` and its children."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    total = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    kids = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True, check=False
    ).stdout.split()
    return total + sum(server_cpu(int(k)) for k in kids)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--strategies", default="plain,events,get4,get1,bulk16,bulk64")
    args = parser.parse_args()
    from invokeai_py_client.local_server import LocalServer

    sys.path.insert(0, str(ROOT / "bench"))
    out = ROOT / "out" / "bench" / "download_cost"
    names = args.strategies.split(",")
    spans: dict[str, list[float]] = {name: [] for name in names}
    cpus: dict[str, list[float]] = {name: [] for name in names}
    with LocalServer(fast=True, config={"node_cache_size": 0}) as server:
        run_contender("server_limit", 0, server.url, 10, out)
        reset_server(server.url)
        for _ in range(args.rounds):
            for name in names:
                info = ""
                cpu0 = server_cpu(server.pid)
                if name == "plain":
                    run_contender("server_limit", 0, server.url, args.n, out)
                    span = server_span(server.url)
                else:
                    span, info = with_downloader(server.url, args.n, name, out)
                cpu = server_cpu(server.pid) - cpu0
                cpus[name].append(cpu)
                reset_server(server.url)
                if span is not None:
                    spans[name].append(span)
                print(
                    f"[download_cost] {name}: span {span:.2f} s, server CPU {cpu:.2f} s {info}",
                    file=sys.stderr,
                )
    base = statistics.median(spans[names[0]])
    cpu_base = statistics.median(cpus[names[0]])
    print(
        f"| fast server, N = {args.n} | server span s (median) | ÷ {names[0]} | per round "
        f"| server CPU s (median) | ÷ {names[0]} |"
    )
    print("|---|---:|---:|---|---:|---:|")
    for name, values in spans.items():
        med = statistics.median(values)
        cpu_med = statistics.median(cpus[name])
        rounds = " / ".join(f"{v:.2f}" for v in values)
        print(
            f"| {name} | {med:.2f} | {med / base:.2f} | {rounds} "
            f"| {cpu_med:.2f} | {cpu_med / cpu_base:.2f} |"
        )


if __name__ == "__main__":
    main()
