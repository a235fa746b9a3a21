"""Client CPU and wall time of one fast-mode BatchRun, against the server's own span.

Usage (from the repository root)::

    .venv/bin/python bench/client_cpu.py [--url URL] [--n 300] [--out /tmp/cpu-run] [--yappi]

Without ``--url`` it starts ``LocalServer(fast=True, config={"node_cache_size": 0})``. Runs
``BatchRun`` over examples/workflows/blur.json with input 3 (Blur Radius) swept over N integer
values and prints one JSON line: client CPU seconds of this process (user + sys, all threads,
from after ``import invokeai_py_client`` -- about 0.5 s more with it), wall seconds, the
server's span (first ``started_at`` to last ``completed_at`` of the run's items, from the
manifest), their ratio and the median
completion-notice latency (manifest ``known_at`` - ``completed_at``). ``--yappi`` (needs
``pip install yappi``; not a dependency) writes per-function CPU of all threads to
``<out>.yappi.txt``.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _ts(value: str) -> float:
    dt = datetime.fromisoformat(value)
    return (dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt).timestamp()


def measure(url: str, n: int, out: Path, profile: bool) -> dict[str, Any]:
    from invokeai_py_client import InvokeAIClient
    from invokeai_py_client.run import BatchRun
    from invokeai_py_client.sweep import Sweep

    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.time()
    if profile:
        import yappi

        yappi.set_clock_type("cpu")
        yappi.start()

    client = InvokeAIClient.from_url(url)
    wf = client.workflow_repo.create_workflow_from_file(ROOT / "examples/workflows/blur.json")
    result = BatchRun(client, wf, Sweep().axis(3, [1 + i % 8 for i in range(n)]), out).run()
    wall = time.time() - t0
    client.close()
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    if profile:
        yappi.stop()
        stats = yappi.get_func_stats()
        stats.sort("ttot")
        with open(f"{out}.yappi.txt", "w") as fh:
            stats.print_all(out=fh, columns={0: ("name", 100), 1: ("ncall", 9), 3: ("ttot", 9)})
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    span = max(_ts(r["completed_at"]) for r in rows) - min(_ts(r["started_at"]) for r in rows)
    notice = sorted(
        _ts(r["known_at"]) - _ts(r["completed_at"])
        for r in rows
        if r.get("known_at") and r.get("completed_at")
    )
    return {
        "ok": result.ok,
        "images": result.images,
        "cpu_s": round(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime, 3),
        "wall_s": round(wall, 3),
        "server_span_s": round(span, 3),
        "ratio": round(wall / span, 3),
        "notice_ms_median": round(notice[len(notice) // 2] * 1000, 1) if notice else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url")
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--out", type=Path, default=Path("/tmp/client-cpu-run"))
    parser.add_argument("--yappi", action="store_true")
    args = parser.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    if args.url:
        print(json.dumps(measure(args.url, args.n, args.out, args.yappi)))
        return
    from invokeai_py_client.local_server import LocalServer

    with LocalServer(fast=True, config={"node_cache_size": 0}) as server:
        print(json.dumps(measure(server.url, args.n, args.out, args.yappi)))


if __name__ == "__main__":
    main()
