"""Following a run by polling, at several poll intervals, against "ours" (events) and the floor.

On ONE fresh ``LocalServer`` (fast by default) it alternates the given contenders round by
round, with ``compare.py``'s own helpers (child process per run, server reset between runs).
A contender ``ours_poll:0.5`` is ``bench/contenders/ours_poll.py`` (the polling prototype)
with ``BENCH_POLL_INTERVAL=0.5``. Prints one line per run (wall, server span, client CPU,
median completion-notice latency, download stats) and the medians.

    .venv/bin/python bench/poll_intervals.py server_limit ours ours_poll:0.1 ours_poll:0.5
    [--n 300] [--rounds 3] [--mode fast|stock]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

import compare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("contenders", nargs="+")
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--mode", choices=("fast", "stock"), default="fast")
    args = parser.parse_args()
    from invokeai_py_client.local_server import LocalServer

    walls: dict[str, list[float]] = {c: [] for c in args.contenders}
    print(f"load before {os.getloadavg()}", flush=True)
    fast = args.mode == "fast"
    with LocalServer(fast=fast, config={"node_cache_size": 0}) as server:
        warm = compare.ROOT / "out" / "bench" / "warmup"
        compare.run_contender("server_limit", 0, server.url, 10, warm)
        compare.reset_server(server.url)
        for rnd in range(1, args.rounds + 1):
            for c in args.contenders:
                name, _, interval = c.partition(":")
                if interval:
                    os.environ["BENCH_POLL_INTERVAL"] = interval
                else:
                    os.environ.pop("BENCH_POLL_INTERVAL", None)
                out = compare.ROOT / "out" / "bench" / "intervals" / c.replace(":", "_")
                rec = compare.run_contender(name, rnd, server.url, args.n, out)
                span = compare.server_span(server.url) or 0.0
                res = rec.result
                wall = float(res.get("wall_s") or span)
                walls[c].append(wall)
                lat = res.get("notice_latencies_ms") or []
                med = f"{statistics.median(lat):.1f}" if lat else "-"
                print(
                    f"r{rnd} {c:16s} wall={wall:.2f} span={span:.2f} cpu={rec.cpu_s:.2f} "
                    f"notice_med_ms={med} disk={res.get('images_on_disk')} "
                    f"notes={(res.get('notes') or [])[-1:]} load={os.getloadavg()[0]:.2f}",
                    flush=True,
                )
                compare.reset_server(server.url)
    print(f"load after {os.getloadavg()}")
    for c, ws in walls.items():
        rounds = [round(w, 2) for w in ws]
        print(f"{c:16s} median wall {statistics.median(ws):.2f}  rounds {rounds}")


if __name__ == "__main__":
    sys.exit(main())
