"""Client cost of planning and submitting a 10,000-run sweep (issue 5 benchmark).

Starts a real InvokeAI server (``LocalServer(fast=True)``) unless ``--url`` is given, builds a
100 x 100 sweep of the model-free ``blur.json`` example, and measures the client's CPU time
(all threads of this process) from building the sweep until the run has recorded every item
id in its ledger (plan, ledger, the one ``enqueue_batch`` request, reading the items'
``field_values``). It then cancels the run's items on the server (it does not wait for 10,000
images). Prints CPU ms per run (target < 0.2) and peak RSS (target < 200 MB).

Usage::

    .venv/bin/python bench/bench_sweep_plan.py            # starts its own server
    .venv/bin/python bench/bench_sweep_plan.py --url http://127.0.0.1:9090 --n 100
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from invokeai_py_client import InvokeAIClient
from invokeai_py_client.local_server import LocalServer
from invokeai_py_client.run import BatchRun
from invokeai_py_client.sweep import Sweep
from invokeai_py_client.workflow import WorkflowDefinition

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "workflows" / "blur.json"


def peak_rss_mb() -> float:
    """Peak resident set size of this process, in MB (Linux reports KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(url: str, n: int) -> dict[str, Any]:
    client = InvokeAIClient.from_url(url)
    wf = client.workflow_repo.create_workflow(WorkflowDefinition.from_file(EXAMPLE))
    client.events.wait_connected(10)
    marks: dict[str, float] = {}
    cpu0, wall0 = time.process_time(), time.perf_counter()
    sweep = (
        Sweep()
        .axis("Width", list(range(16, 16 + n)))
        .axis("Blur Radius", [i / 10 for i in range(n)])
    )
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as out:
        run = BatchRun(client, wf, sweep, Path(out) / "run")
        marks["plan_cpu"] = time.process_time() - cpu0

        def submitted() -> None:
            marks["submit_cpu"] = time.process_time() - cpu0
            marks["submit_wall"] = time.perf_counter() - wall0
            run.cancel()

        run._hooks["after_enqueue"] = submitted
        result = run.run()
    client.close()
    count = run.count
    return {
        "runs": count,
        "enqueued": result.total - result.remaining + result.canceled if result else None,
        "plan_ms_per_run": 1000 * marks["plan_cpu"] / count,
        "cpu_ms_per_run": 1000 * marks["submit_cpu"] / count,
        "submit_wall_s": marks["submit_wall"],
        "peak_rss_mb": peak_rss_mb(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="an InvokeAI server (default: start one, fast mode)")
    parser.add_argument("--n", type=int, default=100, help="values per axis (runs = n*n)")
    args = parser.parse_args(argv)
    if args.url:
        res = measure(args.url, args.n)
    else:
        with LocalServer(fast=True) as srv:
            res = measure(srv.url, args.n)
    ok_cpu = res["cpu_ms_per_run"] < 0.2
    ok_rss = res["peak_rss_mb"] < 200
    print(f"runs planned and submitted:          {res['runs']}")
    print(f"planning CPU per run:                {res['plan_ms_per_run']:.4f} ms")
    print(
        f"planning + submitting CPU per run:   {res['cpu_ms_per_run']:.4f} ms "
        f"(target < 0.2: {'ok' if ok_cpu else 'MISSED'})"
    )
    print(f"submit wall time (incl. server):     {res['submit_wall_s']:.2f} s")
    print(
        f"peak RSS:                            {res['peak_rss_mb']:.0f} MB "
        f"(target < 200: {'ok' if ok_rss else 'MISSED'})"
    )
    return 0 if ok_cpu and ok_rss else 1


if __name__ == "__main__":
    sys.exit(main())
