"""A run over several servers spreads its work by throughput and queue depth.

Part sizing and the pull decision are pure functions (checked directly); the end-to-end
tests use real servers: a stock one (about half a second per blur item) beside a ``fast=True``
one, and a server whose queue holds another user's items. No wall-clock assertions: what is
checked is who made which image (the manifest's ``server`` column) and the parts recorded.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from invokeai_py_client import InvokeAIClient
from invokeai_py_client.local_server import LocalServer
from invokeai_py_client.run import BatchRun, Ledger, read_manifest
from invokeai_py_client.run._multi_sched import (
    MAX_PART,
    Throughput,
    may_pull,
    next_part_size,
    water_fill,
)
from invokeai_py_client.sweep import Sweep
from invokeai_py_client.workflow import WorkflowDefinition

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "workflows"


def blur(client: InvokeAIClient) -> Any:
    return client.workflow_repo.create_workflow(
        WorkflowDefinition.from_file(EXAMPLES / "blur.json")
    )


# ---------------------------------------------------------------------- pure policy


def test_parts_follow_the_rate_share_and_shrink_toward_the_end() -> None:
    # not measured yet: an even share, in small probe parts
    assert next_part_size(40, {"a": None, "b": None}, "a") == 3
    # measured: proportional to the rate, a quarter of the share of what is left
    fast = [next_part_size(n, {"a": 2.0, "b": 40.0}, "b") for n in (400, 100, 40)]
    slow = [next_part_size(n, {"a": 2.0, "b": 40.0}, "a") for n in (400, 100, 40)]
    assert fast == sorted(fast, reverse=True) and fast[0] > slow[0] * 10
    assert slow == [5, 2, 2]  # at least a second of work at 2 runs/s
    # a server not measured yet counts as the mean of the measured ones
    assert next_part_size(80, {"a": 4.0, "b": None}, "a") == 10
    assert next_part_size(10**6, {"a": 1000.0}, "a") == MAX_PART
    assert next_part_size(1, {"a": None, "b": 1.0}, "a") == 1
    assert next_part_size(0, {"a": 1.0}, "a") == 0


def test_pull_decision_weighs_the_backlog_and_others_items() -> None:
    assert may_pull(0, 0, None, others_idle=True, has_part=True)
    # a part in flight: the next one only when the backlog drains within a second
    assert not may_pull(3, 0, None, others_idle=False, has_part=True)
    assert may_pull(3, 0, 10.0, others_idle=False, has_part=True)
    assert not may_pull(3, 0, 2.0, others_idle=False, has_part=True)
    assert not may_pull(0, 30, 10.0, others_idle=False, has_part=True)
    # nothing in flight, another user's items queued: wait while another server is free
    assert not may_pull(0, 5, None, others_idle=True, has_part=False)
    assert may_pull(0, 5, None, others_idle=False, has_part=False)
    assert may_pull(0, 5, 10.0, others_idle=True, has_part=False)


def test_throughput_counts_busy_time_only() -> None:
    t = Throughput()
    assert t.rate(5, 100.0) is None
    t.begin(0.0)
    t.begin(1.0)
    t.end(2.0)
    assert t.rate(0, 0.2) is None  # too early to tell
    t.end(4.0)  # busy 0..4
    t.begin(10.0)  # idle 4..10 does not count
    assert t.busy_time(11.0) == pytest.approx(5.0)
    assert t.rate(10, 11.0) == pytest.approx(2.0)
    assert t.rate(0, 11.0) == pytest.approx(0.2)  # nothing finished: at most 1 per 5 s


def test_water_fill_evens_out_the_queues() -> None:
    assert water_fill(40, [0, 0]) == [20, 20]
    assert water_fill(40, [10, 0]) == [15, 25]
    assert water_fill(40, [0, 100]) == [40, 0]
    assert water_fill(7, [0, 0, 0]) == [3, 2, 2]
    assert water_fill(5, [3, 0, 1]) == [0, 3, 2]
    assert water_fill(0, [1, 2]) == [0, 0]
    assert water_fill(3, []) == []


# ---------------------------------------------------------------------- real servers


def _parts(out: Path) -> list[dict[str, Any]]:
    ledger = Ledger.open(out)
    try:
        return list(ledger.get_meta("parts") or [])
    finally:
        ledger.close()


@pytest.mark.slow
def test_a_fast_server_makes_most_of_the_images(tmp_path: Path) -> None:
    # started one after the other (see test_batch_run)
    slow = LocalServer(tmp_path / "slow").start()
    fast = LocalServer(tmp_path / "fast", fast=True).start()
    clients = [InvokeAIClient.from_url(s.url) for s in (slow, fast)]
    out = tmp_path / "out"
    try:
        sweep = Sweep().axis("Width", list(range(16, 56))).axis("Blur Radius", [1])
        result = BatchRun(clients, blur(clients[0]), sweep, out).run()
        assert result.ok and result.images == 40, result
        rows = read_manifest(out)
        assert sorted(r["run_index"] for r in rows) == list(range(40))
        names = sorted(p.name for p in (out / "images").iterdir())
        assert len(names) == 40 and names == sorted(Path(r["path"]).name for r in rows)
        by_server = Counter(r["server"] for r in rows)
        assert by_server[fast.url] >= 30, by_server  # at least 75 %
        assert by_server[slow.url] >= 1, by_server  # the slow one helped too
        parts = _parts(out)
        assert all(p["state"] == "done" for p in parts)
        runs = sorted(r for p in parts for r in p["runs"])
        assert runs == list(range(40))  # every run in exactly one part
        sizes = {u: [len(p["runs"]) for p in parts if p["server"] == u] for u in by_server}
        print(sizes)
        assert max(sizes[slow.url]) <= max(sizes[fast.url]), sizes
    finally:
        for c in clients:
            c.close()
        fast.stop()
        slow.stop()


@pytest.mark.slow
def test_a_server_busy_with_other_items_gets_no_part_while_another_is_free(
    tmp_path: Path,
) -> None:
    servers = [LocalServer(tmp_path / f"root{i}", fast=True).start() for i in range(2)]
    clients = [InvokeAIClient.from_url(s.url) for s in servers]
    busy, free = clients
    try:
        busy.http.request("PUT", "/api/v1/queue/default/processor/pause")
        other = BatchRun(busy, blur(busy), Sweep().axis("Width", [16, 24, 32]), tmp_path / "o")
        assert other.submit().remaining == 3  # another user's items, waiting on `busy`
        sweep = Sweep().axis("Width", list(range(16, 36))).axis("Blur Radius", [1])
        result = BatchRun(clients, blur(busy), sweep, tmp_path / "out").run()
        assert result.ok and result.images == 20, result
        rows = read_manifest(tmp_path / "out")
        assert {r["server"] for r in rows} == {free.server_url}
        assert sorted(r["run_index"] for r in rows) == list(range(20))
        status = busy.queue.queue_status()["queue"]
        assert status["pending"] == 3  # the other items are still there, untouched
    finally:
        for c in clients:
            c.close()
        for s in servers:
            s.stop()
