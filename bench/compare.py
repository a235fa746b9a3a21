"""Side-by-side benchmark: ours vs the reference library (PyPI 1.1.1) vs the server's own limit.

Usage (from the repository root)::

    .venv/bin/python bench/compare.py --mode both            # stock N=40 and fast N=300
    .venv/bin/python bench/compare.py --mode fast --rounds 5
    .venv/bin/python bench/compare.py --mode stock --n 20 --contenders server_limit,reference

For each server mode it starts ONE fresh ``LocalServer`` and runs the contenders alternating
(A B C A B C ...) against it, each in its own subprocess, measuring the child's CPU seconds and
peak RSS with ``os.wait4``. Between two runs (outside every timing) it prunes the queue and
deletes the images of the previous run, so each run meets the same server state. It prints one
Markdown table per mode plus the target ratios of issue 6, and writes all raw figures to JSON.
The reference library is installed by this script into ``.bench-venvs/reference``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
CONTENDERS_DIR = BENCH / "contenders"
REF_VENV = ROOT / ".bench-venvs" / "reference"
REF_PACKAGE = "invokeai-py-client==1.1.1"
WORKFLOW = ROOT / "examples" / "workflows" / "blur.json"
WORKFLOW_V3 = BENCH / "workflows" / "blur64.json"

DEFAULT_N = {"stock": 40, "fast": 300}
ALL_CONTENDERS = ("server_limit", "ours", "reference", "raw_client")
#: on request only: "ours" with the bulk zip downloads off (one GET per image), and "ours"
#: followed by polling instead of socket.io events (a prototype that lives in bench/ only)
EXTRA_CONTENDERS = ("ours_single", "ours_poll")
LABELS = {
    "ours_single": "ours, one GET per image",
    "ours_poll": "ours, followed by polling (no socket)",
    "server_limit": "server limit (floor)",
    "ours": "ours",
    "reference": "reference (PyPI 1.1.1)",
    "raw_client": "raw client (design prototype)",
}
# issue 6 targets: (ours / server limit) max, (reference / ours) min
TARGETS = {"fast": (1.10, 10.0), "stock": (1.05, 1.5)}
NOTICE_TARGET_MS = 50.0
RUN_TIMEOUT_S = 3600.0


# ---------------------------------------------------------------------- reference environment


def ref_python() -> Path:
    return REF_VENV / "bin" / "python"


def ensure_reference_venv() -> str:
    """Create ``.bench-venvs/reference`` with the reference library if missing; its version."""
    probe = [
        str(ref_python()),
        "-c",
        "import importlib.metadata as m; print(m.version('invokeai-py-client'))",
    ]
    if ref_python().exists():
        done = subprocess.run(probe, capture_output=True, text=True, env=_clean_env())
        if done.returncode == 0 and done.stdout.strip() == REF_PACKAGE.split("==")[1]:
            return done.stdout.strip()
    print(f"[bench] creating {REF_VENV.relative_to(ROOT)} with {REF_PACKAGE}", file=sys.stderr)
    REF_VENV.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(REF_VENV)], check=True)
    pip = [str(ref_python()), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, REF_PACKAGE], check=True, env=_clean_env())
    done = subprocess.run(probe, capture_output=True, text=True, check=True, env=_clean_env())
    return done.stdout.strip()


def _clean_env() -> dict[str, str]:
    """Environment for child processes: no PYTHONPATH leaking our package into other venvs."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env.pop("PYTHONHOME", None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


# ---------------------------------------------------------------------- running contenders


@dataclass
class RunRecord:
    contender: str
    round: int
    returncode: int
    cpu_s: float
    peak_rss_mb: float
    result: dict[str, Any] = field(default_factory=dict)
    server_span_s: float | None = None
    stderr_tail: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and bool(self.result) and not self.result.get("pending")


def contender_command(name: str) -> list[str]:
    script = str(CONTENDERS_DIR / f"{name}.py")
    if name == "reference":
        return [str(ref_python()), script, "--workflow", str(WORKFLOW_V3)]
    return [sys.executable, script, "--workflow", str(WORKFLOW)]


def run_contender(name: str, rnd: int, url: str, n: int, out: Path) -> RunRecord:
    """Run one contender in a child process; CPU and peak RSS come from ``os.wait4``."""
    shutil.rmtree(out, ignore_errors=True)  # every run starts from an empty directory
    out.mkdir(parents=True, exist_ok=True)
    cmd = [*contender_command(name), "--url", url, "--n", str(n), "--out", str(out)]
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        proc = subprocess.Popen(cmd, stdout=stdout, stderr=stderr, cwd=ROOT, env=_clean_env())
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid == proc.pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
        proc.returncode = os.waitstatus_to_exitcode(status)
        stdout.seek(0)
        stderr.seek(0)
        lines = stdout.read().decode("utf-8", "replace").strip().splitlines()
        err_tail = stderr.read().decode("utf-8", "replace")[-1500:]
    result: dict[str, Any] = {}
    if lines:
        try:
            result = json.loads(lines[-1])
        except json.JSONDecodeError:
            result = {}
    # ru_maxrss survives exec (it starts at our own size at fork), so prefer the child's own
    # VmHWM, which it reports at exit; ru_maxrss only as an upper bound when it did not.
    peak = result.get("peak_rss_mb") or usage.ru_maxrss / 1024.0
    return RunRecord(
        contender=name,
        round=rnd,
        returncode=proc.returncode,
        cpu_s=usage.ru_utime + usage.ru_stime,
        peak_rss_mb=float(peak),
        result=result,
        stderr_tail=err_tail if proc.returncode != 0 or not result else "",
    )


def server_span(url: str) -> float | None:
    """First ``started_at`` to last ``completed_at`` of the items now in the queue.

    Called after a run and before :func:`reset_server` pruned the queue: the items are exactly
    the ones that run made. That is the server's processing time for this very run, under the
    same load, including whatever the client's own requests cost the server.
    """
    with httpx.Client(base_url=url, timeout=120.0, trust_env=False) as http:
        ids = http.get("/api/v1/queue/default/item_ids").json().get("item_ids", [])
        starts: list[float] = []
        ends: list[float] = []
        for lo in range(0, len(ids), 1000):
            rows = http.post(
                "/api/v1/queue/default/item_summaries_by_ids",
                json={"item_ids": ids[lo : lo + 1000]},
            ).json()
            for row in rows:
                if row.get("started_at") and row.get("completed_at"):
                    starts.append(_server_ts(row["started_at"]))
                    ends.append(_server_ts(row["completed_at"]))
    return max(ends) - min(starts) if starts else None


def _server_ts(value: str) -> float:
    dt = datetime.fromisoformat(value)
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


def reset_server(url: str) -> None:
    """Outside all timings: wait until idle, prune the queue, delete every image."""
    with httpx.Client(base_url=url, timeout=120.0, trust_env=False) as http:
        for _ in range(600):
            queue = http.get("/api/v1/queue/default/status").json()["queue"]
            if queue["pending"] + queue["in_progress"] == 0:
                break
            time.sleep(0.5)
        http.put("/api/v1/queue/default/prune").raise_for_status()
        while True:
            page = http.get("/api/v1/images/", params={"limit": 1000, "offset": 0}).json()
            names = [item["image_name"] for item in page.get("items", [])]
            if not names:
                break
            http.post("/api/v1/images/delete", json={"image_names": names}).raise_for_status()
        http.delete("/api/v1/images/intermediates")


# ---------------------------------------------------------------------- figures


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def summarize(records: list[RunRecord], n: int) -> dict[str, Any]:
    ok = [r for r in records if r.ok]
    lat: list[float] = []
    for r in ok:
        lat.extend(r.result.get("notice_latencies_ms") or [])
    walls = [float(r.result["wall_s"]) for r in ok if r.result.get("wall_s") is not None]
    firsts = [float(r.result["first_image_s"]) for r in ok if r.result.get("first_image_s")]
    on_disk = [r.result.get("images_on_disk") for r in ok]
    pending = any(r.result.get("pending") for r in records)
    errors = [e for r in records for e in (r.result.get("errors") or [])]
    spans = [r.server_span_s for r in ok if r.server_span_s]
    own = [
        float(r.result["wall_s"]) / r.server_span_s
        for r in ok
        if r.server_span_s and r.result.get("wall_s") is not None
    ]
    return {
        "server_span_s": median(spans),
        "wall_over_own_span": median(own),
        "runs": len(records),
        "runs_ok": len(ok),
        "pending": pending and not ok,
        "mode": next((r.result.get("mode") for r in ok if r.result.get("mode")), None),
        "wall_s": median(walls),
        "wall_s_all": walls,
        "per_item_ms": (median(walls) or 0.0) * 1000.0 / n if walls else None,
        "first_image_s": median(firsts),
        "cpu_s": median([r.cpu_s for r in ok]),
        "peak_rss_mb": median([r.peak_rss_mb for r in ok]),
        "notice_median_ms": median(lat),
        "notice_p95_ms": pct(lat, 95),
        "notice_samples": len(lat),
        "images_on_disk": on_disk,
        "errors": errors[:10],
        "failures": [
            {"round": r.round, "rc": r.returncode, "result": r.result, "stderr": r.stderr_tail}
            for r in records
            if not r.ok
        ],
    }


def _f(value: float | None, fmt: str = "{:.2f}") -> str:
    return "–" if value is None else fmt.format(value)


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def markdown(mode: str, n: int, rounds: int, summary: dict[str, dict[str, Any]]) -> str:
    floor = summary.get("server_limit", {}).get("wall_s")
    head = (
        f"### {mode} server, N = {n}, {rounds} rounds (medians)\n\n"
        "| contender | wall s | min–max s | ms / item | ÷ server limit | server span s "
        "| ÷ own span | first image s | client CPU s | peak RSS MB | notice ms median / p95 "
        "| images on disk |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    rows = []
    for name, s in summary.items():
        label = LABELS.get(name, name)
        if name == "ours" and s.get("mode"):
            label += f" ({s['mode']})"
        if s["pending"]:
            rows.append(f"| {label} | pending | | | | | | | | | | |")
            continue
        if not s["runs_ok"]:
            rows.append(f"| {label} | failed ({s['runs']} runs) | | | | | | | | | | |")
            continue
        walls = s["wall_s_all"]
        disk = s["images_on_disk"]
        disk_txt = "n/a (no download)" if all(d is None for d in disk) else "/".join(map(str, disk))
        notice = (
            f"{_f(s['notice_median_ms'], '{:.1f}')} / {_f(s['notice_p95_ms'], '{:.1f}')}"
            if s["notice_samples"]
            else "–"
        )
        rows.append(
            f"| {label} | {_f(s['wall_s'])} | {min(walls):.2f}–{max(walls):.2f} "
            f"| {_f(s['per_item_ms'], '{:.1f}')} | {_f(ratio(s['wall_s'], floor))} "
            f"| {_f(s['server_span_s'])} | {_f(s['wall_over_own_span'])} "
            f"| {_f(s['first_image_s'])} | {_f(s['cpu_s'])} | {_f(s['peak_rss_mb'], '{:.0f}')} "
            f"| {notice} | {disk_txt} |"
        )
    return head + "\n".join(rows) + "\n\n" + targets_text(mode, summary) + "\n"


def targets_text(mode: str, summary: dict[str, dict[str, Any]]) -> str:
    max_floor, min_ref = TARGETS[mode]
    get = lambda name: summary.get(name, {}).get("wall_s")  # noqa: E731
    ours, ref, floor, raw = get("ours"), get("reference"), get("server_limit"), get("raw_client")
    lines = []

    def check(label: str, value: float | None, target: str, met: bool | None) -> None:
        verdict = "pending" if value is None else ("met" if met else "MISSED")
        lines.append(f"- {label}: {_f(value)} (target {target}): {verdict}")

    r1 = ratio(ours, floor)
    check("ours / server limit", r1, f"≤ {max_floor:.2f}", r1 is not None and r1 <= max_floor)
    own = summary.get("ours", {}).get("wall_over_own_span")
    if own is not None:
        lines.append(
            f"- ours / server span of its own items (same run, same load): {own:.2f} "
            f"(target {max_floor:.2f} applied to it: {'met' if own <= max_floor else 'MISSED'})"
        )
    r2 = ratio(ref, ours)
    check("reference / ours", r2, f"≥ {min_ref:g}", r2 is not None and r2 >= min_ref)
    med = summary.get("ours", {}).get("notice_median_ms")
    lines.append(
        f"- ours completion-notice latency median: {_f(med, '{:.1f}')} ms "
        f"(target < {NOTICE_TARGET_MS:.0f} ms): "
        + ("pending" if med is None else ("met" if med < NOTICE_TARGET_MS else "MISSED"))
    )
    if raw is not None:
        lines.append(
            f"- for scale: raw client / server limit {_f(ratio(raw, floor))}, "
            f"reference / raw client {_f(ratio(ref, raw), '{:.1f}')}"
        )
    return "\n".join(lines)


# ---------------------------------------------------------------------- main


def conditions(ref_version: str) -> dict[str, Any]:
    import importlib.metadata as md

    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "date_utc": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu_cores": os.cpu_count(),
        "memory_gb": round(mem_gb, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "invokeai": md.version("invokeai"),
        "ours": md.version("invokeai-py-client"),
        "reference": ref_version,
        "git_commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
        ).stdout.strip(),
    }


def run_mode(
    mode: str, n: int, rounds: int, contenders: list[str], out_root: Path, keep: bool
) -> dict[str, Any]:
    from invokeai_py_client.local_server import LocalServer

    records: dict[str, list[RunRecord]] = {c: [] for c in contenders}
    load_before = os.getloadavg()
    t_start = time.monotonic()
    # node_cache_size=0: no item is served from InvokeAI's node cache, every run computes.
    with LocalServer(fast=(mode == "fast"), config={"node_cache_size": 0}) as server:
        print(f"[bench] {mode}: server at {server.url}, N={n}", file=sys.stderr)
        warm = run_contender("server_limit", 0, server.url, min(n, 10), out_root / "warmup")
        print(f"[bench] warm-up rc={warm.returncode}", file=sys.stderr)
        reset_server(server.url)
        for rnd in range(1, rounds + 1):
            for name in contenders:
                out = out_root / mode / name / f"r{rnd}"
                rec = run_contender(name, rnd, server.url, n, out)
                records[name].append(rec)
                rec.server_span_s = server_span(server.url)
                res = rec.result
                print(
                    f"[bench] {mode} r{rnd} {name}: rc={rec.returncode} "
                    f"wall={_f(res.get('wall_s'))}s span={_f(rec.server_span_s)}s "
                    f"cpu={rec.cpu_s:.2f}s "
                    f"rss={rec.peak_rss_mb:.0f}MB disk={res.get('images_on_disk')} "
                    f"errors={(res.get('errors') or [])[:2]} "
                    f"notes={(res.get('notes') or [])[-1:]}",
                    file=sys.stderr,
                )
                if rec.stderr_tail:
                    print(rec.stderr_tail, file=sys.stderr)
                if not keep:
                    shutil.rmtree(out, ignore_errors=True)
                reset_server(server.url)
    summary = {c: summarize(records[c], n) for c in contenders}
    return {
        "mode": mode,
        "n": n,
        "rounds": rounds,
        "order": contenders,
        "load_avg_before": load_before,
        "load_avg_after": os.getloadavg(),
        "elapsed_s": time.monotonic() - t_start,
        "summary": summary,
        "markdown": markdown(mode, n, rounds, summary),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--mode", choices=("stock", "fast", "both"), default="both")
    parser.add_argument("--n", type=int, help="runs per contender (default: stock 40, fast 300)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--contenders",
        default=",".join(ALL_CONTENDERS),
        help=f"comma-separated, run in this order each round (default {','.join(ALL_CONTENDERS)})",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "bench", help="work directory")
    parser.add_argument("--json", type=Path, help="write raw figures here (default: in --out)")
    parser.add_argument("--keep-images", action="store_true", help="keep downloaded images")
    args = parser.parse_args()

    contenders = [c.strip() for c in args.contenders.split(",") if c.strip()]
    unknown = [c for c in contenders if c not in ALL_CONTENDERS + EXTRA_CONTENDERS]
    if unknown:
        parser.error(f"unknown contenders {unknown}; choose from {ALL_CONTENDERS}")
    ref_version = ensure_reference_venv() if "reference" in contenders else "not run"
    modes = ["stock", "fast"] if args.mode == "both" else [args.mode]
    cond = conditions(ref_version)
    results = []
    for mode in modes:
        n = args.n or DEFAULT_N[mode]
        results.append(run_mode(mode, n, args.rounds, contenders, args.out, args.keep_images))

    print("## Benchmark: sweep of a 64x64 blank -> blur -> save workflow, images to disk\n")
    print(
        f"{cond['date_utc']}; {cond['cpu_cores']} cores, {cond['memory_gb']} GB; "
        f"{cond['platform']}; Python {cond['python']}; InvokeAI {cond['invokeai']}; "
        f"ours {cond['ours']} ({cond['git_commit']}); reference invokeai-py-client "
        f"{cond['reference']}.\n"
    )
    for res in results:
        print(res["markdown"])
        lb, la = res["load_avg_before"], res["load_avg_after"]
        took = res["elapsed_s"]
        print(f"Load average before/after: {lb[0]:.2f} / {la[0]:.2f}; took {took:.0f} s.\n")
    json_path = args.json or args.out / f"results-{int(time.time())}.json"
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps({"conditions": cond, "results": results}, indent=2))
    print(f"Raw figures: {json_path}", file=sys.stderr)


if __name__ == "__main__":
    main()
