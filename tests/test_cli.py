"""The ``ivk`` command line, run through its real console script against the real server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from invokeai_py_client import InvokeAIClient
from invokeai_py_client.local_server import LocalServer

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "workflows"
BLUR = EXAMPLES / "blur.json"
IVK = Path(sys.executable).parent / "ivk"
WIDTHS = [32, 48]
RADII = [0.0, 1.5, 3.0]


def ivk(
    *args: str | Path,
    url: str | None = None,
    cwd: Path | None = None,
    timeout: float = 180,
) -> subprocess.CompletedProcess[str]:
    """Run the installed ``ivk`` console script."""
    env = {k: v for k, v in os.environ.items() if k not in ("INVOKEAI_URL", "INVOKEAI_API_KEY")}
    if url is not None:
        env["INVOKEAI_URL"] = url
    cmd = [str(IVK) if IVK.exists() else "ivk", *map(str, args)]
    return subprocess.run(
        cmd, capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout, check=False
    )


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every stdout line must be one JSON object."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def queue_total(url: str) -> int:
    with InvokeAIClient.from_url(url) as c:
        status = c.queue.queue_status()
    return int(status.get("queue", status)["total"])


# --------------------------------------------------------------------------- offline


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.json")))
def test_inputs_lists_each_example_workflow(name: str) -> None:
    res = ivk("inputs", EXAMPLES / name, "--json")
    assert res.returncode == 0, res.stderr
    lines = json_lines(res.stdout)
    inputs, summary = lines[:-1], lines[-1]
    assert summary["type"] == "summary" and summary["ok"] is True
    assert summary["inputs"] == len(inputs) > 0
    assert [i["index"] for i in inputs] == list(range(len(inputs)))
    assert all(i["type"] == "input" and i["label"] and i["field_type"] for i in inputs)


def test_inputs_table_for_people() -> None:
    res = ivk("inputs", BLUR)
    assert res.returncode == 0, res.stderr
    for text in ("Width", "Blur Radius", "Colour", "#285ac8", "img_blur" if False else "radius"):
        assert text in res.stdout


def test_index_export_and_verify_detects_drift(tmp_path: Path) -> None:
    saved = tmp_path / "blur.index.json"
    assert ivk("index", "export", BLUR, saved).returncode == 0
    ok = ivk("index", "verify", BLUR, saved, "--json")
    assert ok.returncode == 0, ok.stderr
    assert json_lines(ok.stdout)[-1]["ok"] is True
    data = json.loads(saved.read_text())
    data["inputs"][0]["input_index"], data["inputs"][1]["input_index"] = 1, 0
    data["inputs"].append({**data["inputs"][2], "jsonpath": "$.nodes[?(@.id=='gone')].x"})
    saved.write_text(json.dumps(data))
    drift = ivk("index", "verify", BLUR, saved, "--json")
    assert drift.returncode == 1
    lines = json_lines(drift.stdout)
    assert {ln["type"] for ln in lines[:-1]} == {"moved", "missing"}
    assert lines[-1]["ok"] is False and lines[-1]["error_code"] == "index_drift"


def test_sheet_without_a_run_is_a_usage_error(tmp_path: Path) -> None:
    res = ivk("sheet", tmp_path / "nope")
    assert res.returncode == 2
    assert res.stderr.strip().startswith("ivk: error:") and len(res.stderr.splitlines()) == 1


# --------------------------------------------------------------------------- real server


@pytest.fixture(scope="module")
def sweep_run(server: LocalServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One 2 x 3 sweep run through ``ivk run`` (Width x Blur Radius)."""
    out = tmp_path_factory.mktemp("cli") / "sweep"
    res = ivk(
        "run",
        BLUR,
        "--sweep",
        "Width=" + ",".join(map(str, WIDTHS)),
        "--sweep",
        "3=0:3:1.5",  # Blur Radius by index, as a range
        "--set",
        "Height=40",
        "--out",
        out,
        url=server.url,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert "6/6 completed" in res.stdout
    return out


@pytest.mark.server
def test_run_sweep_makes_six_images_with_matching_manifest(sweep_run: Path) -> None:
    rows = [json.loads(x) for x in (sweep_run / "manifest.jsonl").read_text().splitlines()]
    assert len(rows) == 6
    assert sorted((r["params"]["Width"], r["params"]["Blur Radius"]) for r in rows) == sorted(
        (w, r) for w in WIDTHS for r in RADII
    )
    for r in rows:
        assert r["status"] == "completed"
        assert r["param_indices"] == {"0": r["params"]["Width"], "3": r["params"]["Blur Radius"]}
        with Image.open(sweep_run / r["path"]) as img:
            assert img.size == (r["params"]["Width"], 40)
    run_json = json.loads((sweep_run / "run.json").read_text())
    assert [a["name"] for a in run_json["axes"]] == ["Width", "Blur Radius"]


@pytest.mark.server
def test_sheet_of_the_sweep_is_a_2_by_3_grid_labelled_with_the_values(sweep_run: Path) -> None:
    res = ivk("sheet", sweep_run, "--json")
    assert res.returncode == 0, res.stderr
    page, summary = json_lines(res.stdout)
    assert summary["ok"] is True and summary["sheets"] == [page["path"]]
    assert page["kind"] == "xy" and (page["rows"], page["cols"]) == (2, 3)
    assert page["y_axis"] == "Width" and page["y_labels"] == ["32", "48"]
    assert page["x_axis"] == "Blur Radius" and page["x_labels"] == ["0", "1.5", "3"]
    assert page["images"] == 6
    with Image.open(page["path"]) as img:
        assert list(img.size) == page["size"]
        ox, oy = page["origin"]
        px, py = page["pitch"]
        cw, ch = page["cell"]
        assert img.size[0] >= ox + 3 * px - (px - cw) and img.size[1] >= oy + 2 * py - (py - ch)
        rgb = img.convert("RGB")
        blue = (40, 90, 200)
        for r in range(2):
            for c in range(3):
                centre = rgb.getpixel((ox + c * px + cw // 2, oy + r * py + ch // 2))
                # each cell holds its blue image (blurring may move a channel by one)
                assert all(abs(a - b) <= 3 for a, b in zip(centre, blue, strict=True)), (r, c)
        # the gaps between cells are background
        assert rgb.getpixel((ox + cw + (px - cw) // 2, oy + ch // 2)) == (255, 255, 255)
    # other axes on demand: rows and columns swapped
    swapped = json_lines(ivk("sheet", sweep_run, "--x", "0", "--y", "3", "--json").stdout)[0]
    assert (swapped["rows"], swapped["cols"]) == (3, 2)


@pytest.mark.server
def test_dry_run_prints_the_payload_and_sends_nothing(server: LocalServer) -> None:
    before = queue_total(server.url)
    res = ivk(
        "run", BLUR, "--sweep", "Width=32,48", "--sweep", "Blur Radius=1,2,3", "--dry-run",
        "--json", "--server", server.url,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    plan, payload, summary = json_lines(res.stdout)
    assert plan["type"] == "plan" and plan["count"] == 6
    data = payload["payload"]["batch"]["data"]
    assert [[d["items"] for d in group] for group in data] == [[[32, 48]], [[1.0, 2.0, 3.0]]]
    assert summary == {**summary, "type": "summary", "ok": True, "dry_run": True, "count": 6}
    human = ivk("run", BLUR, "--sweep", "Width=32,48", "--dry-run", "--server", server.url)
    assert human.returncode == 0 and '"enqueue_batch"' not in human.stdout
    assert "2 run(s)" in human.stdout and '"graph"' in human.stdout
    assert queue_total(server.url) == before


@pytest.mark.server
def test_json_output_parses_line_by_line_and_ends_with_the_summary(
    server: LocalServer, tmp_path: Path
) -> None:
    out = tmp_path / "j"
    res = ivk("run", BLUR, "--sweep", "Width=32,40,48", "--out", out, "--json", url=server.url)
    assert res.returncode == 0, res.stderr
    lines = json_lines(res.stdout)
    kinds = [ln["type"] for ln in lines]
    assert kinds[0] == "plan" and kinds[-1] == "summary" and kinds.count("summary") == 1
    assert kinds.count("item") == 3 and "progress" in kinds
    summary = lines[-1]
    assert summary["ok"] is True and summary["completed"] == summary["total"] == 3
    assert Path(summary["out_dir"]) == out and "error_code" not in summary


USER_ERRORS = [
    (["--sweep", "Nope=1,2"], "no input labelled 'Nope'"),
    (["--set", "Width=wide"], "not an integer"),
    (["--set", "Blur Radius=-1"], "below the minimum"),
    (["--sweep", "Width=64:32:8"], "bad range"),
    (["--sweep", "Width=1:9:0"], "the step cannot be 0"),
    (
        ["--sweep", "Width=32,48", "--sweep", "Height=8,16,24", "--zip", "Width,Height"],
        "same number",
    ),
    (["--sweep", "Colour=red,blue"], "cannot be swept"),
    (["--set", "Width"], "KEY=VALUE"),
    (["--seeds", "4"], "no seed input"),
    (["--images", "Width=*.png"], "not an image"),
    (["--bogus-option"], "No such option"),
]


@pytest.mark.server
@pytest.mark.parametrize(("args", "message"), USER_ERRORS)
def test_user_errors_exit_2_with_one_line_and_send_nothing(
    server: LocalServer, tmp_path: Path, args: list[str], message: str
) -> None:
    before = queue_total(server.url)
    res = ivk("run", BLUR, *args, "--out", tmp_path / "o", url=server.url)
    assert res.returncode == 2, res.stdout + res.stderr
    assert res.stderr.startswith("ivk: error:") and len(res.stderr.strip().splitlines()) == 1
    assert message in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "o").exists()
    js = ivk("run", BLUR, *args, "--json", "--out", tmp_path / "o", url=server.url)
    assert js.returncode == 2
    last = json_lines(js.stdout)[-1]
    assert last["type"] == "summary" and last["ok"] is False and last["error_code"]
    assert queue_total(server.url) == before


@pytest.mark.server
def test_missing_workflow_and_debug_traceback(tmp_path: Path) -> None:
    res = ivk("run", tmp_path / "missing.json")
    assert res.returncode == 2 and "no such workflow file" in res.stderr
    dbg = ivk("--debug", "inputs", tmp_path / "missing.json")
    assert dbg.returncode == 2 and "Traceback" in dbg.stderr


@pytest.mark.server
def test_unreachable_server_is_one_line_exit_1(tmp_path: Path) -> None:
    res = ivk("run", BLUR, "--out", tmp_path / "o", "--server", "http://127.0.0.1:9")
    assert res.returncode == 1
    assert res.stderr.startswith("ivk: error: cannot reach InvokeAI")
    assert len(res.stderr.strip().splitlines()) == 1


@pytest.fixture
def interrupted_run(server: LocalServer, tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """An ``ivk run`` of 120 runs, interrupted with SIGINT after its first images."""
    out = tmp_path / "interrupted"
    env = {**os.environ, "INVOKEAI_URL": server.url}
    proc = subprocess.Popen(
        [str(IVK), "run", str(BLUR), "--sweep", "Width=8:67:1", "--sweep", "Blur Radius=0,1",
         "--out", str(out), "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if (out / "images").is_dir() and len(list((out / "images").glob("*.png"))) >= 2:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended before it could be interrupted"
        proc.send_signal(signal.SIGINT)
        stdout, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    lines = json_lines(stdout)
    assert lines[-1]["type"] == "summary" and lines[-1]["error_code"] == "interrupted"
    yield out, proc.returncode


@pytest.mark.server
def test_interrupted_run_exits_130_cancels_its_items_and_resume_completes_it(
    server: LocalServer, interrupted_run: tuple[Path, int]
) -> None:
    out, code = interrupted_run
    assert code == 130
    run_json = json.loads((out / "run.json").read_text())
    batch_ids = {
        r["batch_id"] for r in map(json.loads, (out / "manifest.jsonl").open()) if r.get("batch_id")
    }
    with InvokeAIClient.from_url(server.url) as c:
        for bid in batch_ids:
            st = c.queue.batch_status(bid)
            assert st["pending"] == 0 and st["in_progress"] == 0, st
            assert st["canceled"] > 0
    assert run_json["counts"].get("canceled", 0) > 0
    done_before = len(list((out / "images").glob("*.png")))
    assert 0 < done_before < 120

    status = ivk("status", out, "--json", url=server.url)
    assert status.returncode == 0
    assert json_lines(status.stdout)[0]["counts"].get("canceled", 0) > 0

    res = ivk("resume", out, "--json", url=server.url)
    assert res.returncode == 0, res.stdout + res.stderr
    summary = json_lines(res.stdout)[-1]
    assert summary["ok"] is True and summary["completed"] == summary["total"] == 120
    rows = [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()]
    assert len(rows) == 120 and all(r["status"] == "completed" for r in rows)
    assert len({r["path"] for r in rows}) == 120
    assert len(list((out / "images").glob("*.png"))) == 120


@pytest.mark.server
def test_detach_then_cancel_then_one_resume_reruns_the_canceled_runs(
    server: LocalServer, tmp_path: Path
) -> None:
    out = tmp_path / "stopped"
    args = ("run", BLUR, "--sweep", "Width=8:126:2", "--sweep", "Blur Radius=0.5")
    res = ivk(*args, "--detach", "--json", "--out", out, url=server.url)
    assert res.returncode == 0, res.stdout + res.stderr
    summary = json_lines(res.stdout)[-1]
    assert summary["ok"] is True and summary["detached"] is True and summary["total"] == 60

    cancel = ivk("cancel", out, url=server.url)
    assert cancel.returncode == 0, cancel.stdout + cancel.stderr
    status = ivk("status", out, "--json", url=server.url)
    assert json_lines(status.stdout)[0]["server_counts"]["canceled"] > 0

    res = ivk("resume", out, "--json", url=server.url)
    assert res.returncode == 0, res.stdout + res.stderr
    summary = json_lines(res.stdout)[-1]
    assert summary["ok"] is True and summary["completed"] == summary["total"] == 60
    assert len(list((out / "images").glob("*.png"))) == 60


@pytest.mark.server
def test_detach_over_two_servers_then_resume_collects_from_both(
    server: LocalServer, tmp_path: Path
) -> None:
    out = tmp_path / "two"
    args = ("run", BLUR, "--sweep", "Width=8:86:2", "--sweep", "Blur Radius=0.5")
    before = queue_total(server.url)
    with LocalServer(tmp_path / "second-root", fast=True) as second:
        res = ivk(
            *args, "--detach", "--json", "--out", out, "--server", server.url,
            "--server", second.url,
        )  # fmt: skip
        assert res.returncode == 0, res.stdout + res.stderr
        summary = json_lines(res.stdout)[-1]
        assert summary["ok"] is True and summary["detached"] is True and summary["total"] == 40
        sent = [queue_total(server.url) - before, queue_total(second.url)]
        assert sum(sent) == 40 and min(sent) > 0  # both servers got a share, nothing twice
        assert not list((out / "images").glob("*.png"))  # detached: nothing downloaded yet

        done = ivk("resume", out, "--json", url=server.url)
        assert done.returncode == 0, done.stdout + done.stderr
        final = json_lines(done.stdout)[-1]
        assert final["ok"] is True and final["completed"] == final["total"] == 40
    assert len(list((out / "images").glob("*.png"))) == 40


@pytest.mark.server
def test_resource_commands(server: LocalServer, tmp_path: Path, sweep_run: Path) -> None:
    url = server.url
    name = f"cli-board-{time.time_ns()}"
    created = ivk("boards", "create", name, "--json", url=url)
    assert created.returncode == 0, created.stderr
    board_id = json_lines(created.stdout)[-1]["board_id"]
    listed = json_lines(ivk("boards", "list", "--json", url=url).stdout)
    assert any(b.get("board_id") == board_id for b in listed[:-1])
    pngs = sorted((sweep_run / "images").glob("*.png"))[:2]
    up = ivk("images", "upload", *pngs, "--board", name, "--json", url=url)
    assert up.returncode == 0, up.stderr
    assert json_lines(up.stdout)[-1]["uploaded"] == 2
    dl = ivk("boards", "download", name, "--out", tmp_path / "dl", "--json", url=url)
    assert dl.returncode == 0, dl.stderr
    assert len(list((tmp_path / "dl").glob("*.png"))) == 2
    assert ivk("boards", "delete", name, "--delete-images", url=url).returncode == 0
    gone = ivk("boards", "delete", name, url=url)
    assert gone.returncode == 2 and "no board" in gone.stderr
    models = ivk("models", "list", "--json", url=url)
    assert models.returncode == 0 and json_lines(models.stdout)[-1]["ok"] is True
    q = ivk("queue", "status", "--json", url=url)
    assert q.returncode == 0 and "pending" in json_lines(q.stdout)[-1]
    assert ivk("queue", "cancel", url=url).returncode == 2  # nothing named


@pytest.mark.slow
def test_demo_runs_the_sweep_through_ivk_and_reuses_its_root(tmp_path: Path) -> None:
    """``python3 dev.py demo``: a local server, a 2 x 3 sweep, manifest and sheet."""
    for _ in range(2):  # the second run reuses out/.invokeai-root
        res = subprocess.run(
            [sys.executable, "-m", "invokeai_py_client.demo", "--out", str(tmp_path)],
            capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        assert res.returncode == 0, res.stdout + res.stderr
    runs = sorted(tmp_path.glob("demo-*"))
    assert len(runs) >= 1 and (tmp_path / ".invokeai-root").is_dir()
    run = runs[-1]
    assert len(list((run / "images").glob("*.png"))) == 6
    assert len((run / "manifest.jsonl").read_text().splitlines()) == 6
    with Image.open(run / "sheet.png") as img:
        assert img.size[0] > 300
    assert f"contact sheet  {run / 'sheet.png'}" in res.stdout
