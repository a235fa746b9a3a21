"""Wall time of one sweep over a slow and a fast server: fixed parts vs adaptive parts.

Starts two real InvokeAI servers, a stock one (about half a second per ``blur.json`` item)
and a ``fast=True`` one (about 20 ms), and runs the same sweep over both twice (the order
alternates over ``--repeat``):

- ``fixed``: the previous scheme, parts of ``count / (servers * 4)`` runs, both slots of a
  server pulling whenever free;
- ``adaptive``: the default, parts sized from the runs left and each server's observed rate
  (see ``invokeai_py_client.run._multi_sched``).

Prints per mode the wall time of each repeat and how many images each server made.

Usage::

    .venv/bin/python bench/multi_spread.py               # 40 runs, 2 repeats
    .venv/bin/python bench/multi_spread.py --n 80 --repeat 3
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from invokeai_py_client import InvokeAIClient
from invokeai_py_client.local_server import LocalServer
from invokeai_py_client.run import BatchRun, read_manifest
from invokeai_py_client.run._multi_drive import drive_multi
from invokeai_py_client.sweep import Sweep
from invokeai_py_client.workflow import WorkflowDefinition

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "workflows" / "blur.json"


async def one(clients: list[InvokeAIClient], n: int, out: Path, fixed: bool) -> float:
    wf = clients[0].workflow_repo.create_workflow(WorkflowDefinition.from_file(EXAMPLE))
    sweep = Sweep().axis("Width", [16 + i % 48 for i in range(n)]).axis("Blur Radius", [1])
    t0 = time.perf_counter()
    run = BatchRun(clients, wf, sweep, out)
    multi = await run._make_multi()
    if fixed:
        multi.part_size = max(1, math.ceil(n / (len(clients) * 4)))
    result = await drive_multi(multi)
    wall = time.perf_counter() - t0
    assert result.ok and result.images == n, result
    return wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=40, help="runs in the sweep")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        # one after the other (see tests/test_batch_run.py)
        slow = LocalServer(root / "slow").start()
        fast = LocalServer(root / "fast", fast=True).start()
        clients = [InvokeAIClient.from_url(s.url) for s in (slow, fast)]
        names = {slow.url: "slow", fast.url: "fast"}
        walls: dict[str, list[float]] = {"fixed": [], "adaptive": []}
        made: dict[str, Counter[str]] = {"fixed": Counter(), "adaptive": Counter()}
        try:
            for k in range(args.repeat):
                order = ["fixed", "adaptive"] if k % 2 == 0 else ["adaptive", "fixed"]
                for mode in order:
                    out = root / f"{mode}-{k}"
                    wall = asyncio.run(one(clients, args.n, out, mode == "fixed"))
                    walls[mode].append(wall)
                    rows: list[dict[str, Any]] = read_manifest(out)
                    made[mode].update(names[str(r["server"])] for r in rows)
                    print(f"{mode:9s} repeat {k}: {wall:6.2f} s", flush=True)
        finally:
            for c in clients:
                c.close()
            fast.stop()
            slow.stop()
    print(f"\n{args.n} runs of blur.json over a stock and a fast=True server:")
    for mode, ws in walls.items():
        share = {k: v // args.repeat for k, v in sorted(made[mode].items())}
        print(
            f"  {mode:9s} wall median {statistics.median(ws):6.2f} s "
            f"(all: {', '.join(f'{w:.2f}' for w in ws)}); images per run {share}"
        )


if __name__ == "__main__":
    main()
