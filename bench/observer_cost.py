"""What watching a batch costs the server: the floor with and without a socket.io subscriber.

    .venv/bin/python bench/observer_cost.py [--n 300] [--rounds 3] [--mode fast|stock]

On one fresh ``LocalServer`` it alternates three runs of the same N-item batch and prints the
server's processing span (first ``started_at`` to last ``completed_at``) of each:

* ``plain``: the server-limit contender alone (nobody listens to events);
* ``events``: the same, while a separate process holds a socket.io connection subscribed to
  the queue and does nothing with the events (the cost of emitting them to a listener);
* ``connected`` (with ``--connected``): connected to socket.io but not subscribed to the
  queue's room (in single-user mode InvokeAI puts every socket in the ``admin`` room at
  connect, which receives every invocation and status event anyway);
* ``events+downloads``: the raw-client contender (events, plus one ``GET .../full`` per image).

The difference between rows is what a client's mere observation costs the server on this
machine, the part of "ours / server limit" that no client-side change can remove.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from compare import ROOT, _clean_env, reset_server, run_contender, server_span

SUBSCRIBER = """
import asyncio, sys, socketio
async def main(url, subscribe):
    sio = socketio.AsyncClient()
    await sio.connect(url, socketio_path="/ws/socket.io", transports=["websocket"])
    if subscribe:
        await sio.emit("subscribe_queue", {"queue_id": "default"})
    print("subscribed", flush=True)
    await asyncio.sleep(3600)
asyncio.run(main(sys.argv[1], sys.argv[2] == "1"))
"""


def with_subscriber(url: str, n: int, out: Path, subscribe: bool = True) -> float | None:
    sub = subprocess.Popen(
        [sys.executable, "-c", SUBSCRIBER, url, "1" if subscribe else "0"],
        stdout=subprocess.PIPE,
        env=_clean_env(),
        text=True,
    )
    try:
        assert sub.stdout is not None
        sub.stdout.readline()  # "subscribed"
        time.sleep(0.2)
        run_contender("server_limit", 0, url, n, out)
        return server_span(url)
    finally:
        sub.terminate()
        sub.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--mode", choices=("fast", "stock"), default="fast")
    parser.add_argument(
        "--connected",
        action="store_true",
        help="add a row: connected to socket.io but not subscribed to the queue's room",
    )
    args = parser.parse_args()
    from invokeai_py_client.local_server import LocalServer

    out = ROOT / "out" / "bench" / "observer"
    names = ["plain", "connected", "events", "events+downloads"]
    spans: dict[str, list[float]] = {k: [] for k in names if k != "connected" or args.connected}
    with LocalServer(fast=args.mode == "fast", config={"node_cache_size": 0}) as server:
        run_contender("server_limit", 0, server.url, 10, out)
        reset_server(server.url)
        for _ in range(args.rounds):
            for name in spans:
                if name == "plain":
                    run_contender("server_limit", 0, server.url, args.n, out)
                    span = server_span(server.url)
                elif name == "events":
                    span = with_subscriber(server.url, args.n, out)
                elif name == "connected":
                    span = with_subscriber(server.url, args.n, out, subscribe=False)
                else:
                    run_contender("raw_client", 0, server.url, args.n, out)
                    span = server_span(server.url)
                reset_server(server.url)
                if span is not None:
                    spans[name].append(span)
                print(f"[observer] {name}: {span:.2f} s", file=sys.stderr)
    base = statistics.median(spans["plain"])
    print(f"| {args.mode} server, N = {args.n} | server span s (median) | ÷ plain | per round |")
    print("|---|---:|---:|---|")
    for name, values in spans.items():
        med = statistics.median(values)
        rounds = " / ".join(f"{v:.2f}" for v in values)
        print(f"| {name} | {med:.2f} | {med / base:.2f} | {rounds} |")


if __name__ == "__main__":
    main()
