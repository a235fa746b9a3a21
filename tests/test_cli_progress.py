"""The progress display of ``ivk run``: what a user sees on a terminal and in a pipe.

The display is driven the way ``ivk`` drives it: real :class:`Progress` snapshots
(``Progress.from_counts(run_counts(...))``) through the run's callback
(``cli._execute._on_progress``) into a :class:`ProgressView` writing to a recording rich
console (a terminal) or to a real OS pipe (not a terminal). A settable clock stands in for
time so rates and ETAs are exact. The last test runs the real ``ivk run`` against the session
server with its output piped.
"""

from __future__ import annotations

import io
import json
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from invokeai_py_client.cli._execute import _on_progress
from invokeai_py_client.cli.progress import PLAIN_EVERY, ProgressView
from invokeai_py_client.local_server import LocalServer
from invokeai_py_client.run._state import Progress, run_counts
from test_cli import EXAMPLES, ivk

#: the head line of the live display
HEAD = re.compile(
    r"(?P<title>\S+) (?P<done>\d+) done  (?P<failed>\d+) failed  "
    r"(?:(?P<canceled>\d+) canceled  )?(?P<remaining>\d+) remaining"
    r"  of (?P<total>\d+)   (?P<rate>\S+) items/s   (?P<time>ETA \S+|took \S+)"
)
#: a plain line (stderr not a terminal)
PLAIN = re.compile(
    r"^(?P<title>\S+): (?P<done>\d+) done, (?P<failed>\d+) failed, (?P<canceled>\d+) canceled, "
    r"(?P<remaining>\d+) remaining of (?P<total>\d+) \| (?P<rate>\S+)/s \| "
    r"(?P<time>ETA \S+|took \S+)$"
)


class Clock:
    """Seconds, set by the test."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def snapshot(
    total: int,
    done: int,
    failed: int = 0,
    canceled: int = 0,
    *,
    elapsed: float = 1.0,
    last: Mapping[str, Any] | None = None,
) -> Progress:
    """A real run snapshot, built the way the engine builds it."""
    counts = run_counts(total, done, failed, canceled, images=done)
    return Progress.from_counts(counts, elapsed, last=last)


def failed_row(item_id: int) -> dict[str, Any]:
    return {
        "run_index": item_id,
        "item_id": item_id,
        "status": "failed",
        "error_type": "OverflowError",
        "error_message": "Python int too large to convert to C int",
    }


def terminal() -> Console:
    return Console(record=True, width=100, force_terminal=True, file=io.StringIO())


def last_head(console: Console) -> dict[str, str]:
    """The newest head line the live display drew."""
    text = console.export_text(clear=False)
    heads = [m.groupdict() for m in HEAD.finditer(text)]
    assert heads, text
    return heads[-1]


@pytest.fixture
def pipe(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Console, Any]]:
    """A console writing into a real OS pipe (``isatty()`` is False), and a reader for it."""
    for var in ("FORCE_COLOR", "TTY_COMPATIBLE"):  # these would make rich treat it as a tty
        monkeypatch.delenv(var, raising=False)
    r, w = os.pipe()
    writer = os.fdopen(w, "w", encoding="utf-8")
    reader = os.fdopen(r, "r", encoding="utf-8")
    console = Console(file=writer, width=100)

    def read() -> str:
        writer.close()
        return reader.read()

    try:
        yield console, read
    finally:
        if not writer.closed:
            writer.close()
        reader.close()


# --------------------------------------------------------------------------- terminal


def test_terminal_display_counts_then_rate_and_eta_once_enough_samples_then_final() -> None:
    console, clock = terminal(), Clock()
    view = ProgressView(10, json_mode=False, title="blur", console=console, clock=clock)
    update = _on_progress(view)
    with view:
        update(snapshot(10, 0, elapsed=0.0))
        view.refresh(force=True)
        head = last_head(console)
        assert (head["done"], head["failed"], head["remaining"], head["total"]) == (
            "0",
            "0",
            "10",
            "10",
        )
        assert (head["rate"], head["time"]) == ("--", "ETA --:--")

        clock.t = 2.0
        update(snapshot(10, 1, elapsed=2.0))
        view.refresh(force=True)
        head = last_head(console)
        assert head["done"] == "1" and head["remaining"] == "9"
        # one finished item is not a rate yet: no ETA guessed from it
        assert (head["rate"], head["time"]) == ("--", "ETA --:--")

        clock.t = 4.0
        update(snapshot(10, 2, elapsed=4.0))
        view.refresh(force=True)
        head = last_head(console)
        # 2 items in 4 s: 0.5/s, 8 left: 16 s
        assert (head["rate"], head["time"]) == ("0.50", "ETA 0:16")

        for k in range(3, 11):
            clock.t = 2.0 * k
            update(snapshot(10, k, elapsed=clock.t))
    head = last_head(console)  # what stays on screen after the run
    assert (head["done"], head["failed"], head["remaining"]) == ("10", "0", "0")
    assert (head["rate"], head["time"]) == ("0.50", "took 0:20")


def test_terminal_shows_failed_items_and_the_failed_count() -> None:
    console, clock = terminal(), Clock()
    view = ProgressView(3, json_mode=False, title="crop", console=console, clock=clock)
    update = _on_progress(view)
    with view:
        update(snapshot(3, 0))
        clock.t = 1.0
        update(snapshot(3, 1))
        clock.t = 2.0
        update(snapshot(3, 1, 1, last=failed_row(42)))
        view.refresh(force=True)
        assert last_head(console)["failed"] == "1"
        assert last_head(console)["canceled"] is None  # shown only when there are some
        clock.t = 3.0
        update(snapshot(3, 2, 1))
    text = console.export_text(clear=False)
    assert "item 42 failed: OverflowError: Python int too large to convert to C int" in text
    head = last_head(console)
    assert (head["done"], head["failed"], head["remaining"], head["time"]) == (
        "2",
        "1",
        "0",
        "took 0:03",
    )
    # the failed count is drawn in red once there are failures
    assert "\x1b[31m1 failed" in console.export_text(styles=True)


def test_terminal_shows_runs_canceled_by_someone_else() -> None:
    console = terminal()
    view = ProgressView(4, json_mode=False, title="blur", console=console, clock=Clock())
    with view:
        _on_progress(view)(snapshot(4, 1, 0, 2))
    head = last_head(console)
    assert (head["done"], head["failed"], head["canceled"], head["remaining"]) == (
        "1",
        "0",
        "2",
        "1",
    )


def test_terminal_shows_the_current_node_while_items_remain() -> None:
    console = terminal()
    view = ProgressView(2, json_mode=False, title="blur", console=console, clock=Clock())
    with view:
        _on_progress(view)(snapshot(2, 0))
        view.node_progress(7, "Denoise", 0.25)
        view.refresh(force=True)
        assert "item 7: Denoise 25%" in console.export_text(clear=True)
        _on_progress(view)(snapshot(2, 2))
    assert "Denoise" not in console.export_text()


# --------------------------------------------------------------------------- pipe


def test_piped_output_is_plain_lines_every_few_seconds_not_one_per_image(
    pipe: tuple[Console, Any],
) -> None:
    console, read = pipe
    clock = Clock()
    view = ProgressView(100, json_mode=False, title="sweep", console=console, clock=clock)
    update = _on_progress(view)
    with view:
        # an item every 0.5 s for 50 s; the 50th fails
        for k in range(101):
            clock.t = 0.5 * k
            failed = 1 if k >= 50 else 0
            last = failed_row(1000 + k) if k == 50 else None
            update(snapshot(100, k - failed, failed, elapsed=clock.t, last=last))
    out = read()
    assert "\x1b" not in out  # no colour, no cursor movement
    lines = out.splitlines()
    assert lines[3] == "item 1050 failed: OverflowError: Python int too large to convert to C int"
    progress = [PLAIN.match(ln) for ln in lines if not ln.startswith("item ")]
    assert all(progress), lines
    rows = [m.groupdict() for m in progress if m]
    # one line at the start, then one every PLAIN_EVERY (10 s) while counts change: 6, not 101
    assert PLAIN_EVERY == 10.0 and len(rows) == 6, lines
    first, mid, final = rows[0], rows[2], rows[-1]
    assert (first["done"], first["remaining"], first["rate"], first["time"]) == (
        "0",
        "100",
        "--",
        "ETA --:--",
    )
    # at 20 s: 40 done in 20 s = 2/s, 60 left = 30 s
    assert (mid["done"], mid["failed"], mid["remaining"]) == ("40", "0", "60")
    assert (mid["rate"], mid["time"]) == ("2.00", "ETA 0:30")
    assert (final["done"], final["failed"], final["canceled"], final["remaining"]) == (
        "99",
        "1",
        "0",
        "0",
    )
    assert (final["total"], final["rate"], final["time"]) == ("100", "2.00", "took 0:50")


def test_piped_final_line_is_printed_once_at_the_end(pipe: tuple[Console, Any]) -> None:
    console, read = pipe
    clock = Clock()
    view = ProgressView(3, json_mode=False, title="[blur]", console=console, clock=clock)
    with view:
        for k in range(4):
            clock.t = float(k)
            _on_progress(view)(snapshot(3, k, elapsed=clock.t))
    lines = read().splitlines()
    # the start, then the end (a short run: no periodic line between); the title is not markup
    assert lines == [
        "[blur]: 0 done, 0 failed, 0 canceled, 3 remaining of 3 | --/s | ETA --:--",
        "[blur]: 3 done, 0 failed, 0 canceled, 0 remaining of 3 | 1.00/s | took 0:03",
    ]


# --------------------------------------------------------------------------- rate and ETA


def test_resumed_run_rate_leaves_out_what_finished_before(pipe: tuple[Console, Any]) -> None:
    """90 of 100 runs were done before the resume: the rate is the resume's own, not 90 in 0 s."""
    console, read = pipe
    clock = Clock()
    view = ProgressView(100, json_mode=False, title="resume", console=console, clock=clock)
    update = _on_progress(view)
    with view:
        clock.t = 0.5  # the first progress of a resume already counts the earlier runs
        update(snapshot(100, 90, elapsed=0.5))
        assert view.counts.rate == 0.0 and view.counts.eta is None
        clock.t = 2.5
        update(snapshot(100, 91, elapsed=2.5))
        clock.t = 4.5
        update(snapshot(100, 92, elapsed=4.5))
        # 2 runs in 4 s since the resume started: 0.5/s, 8 left: 16 s
        assert view.counts.rate == pytest.approx(0.5)
        assert view.counts.eta == pytest.approx(16.0)
        view.refresh(force=True)
    line = read().splitlines()[-1]
    assert line.endswith("| 0.50/s | ETA 0:16"), line


def test_no_eta_without_progress_and_no_division_by_zero() -> None:
    clock = Clock()
    view = ProgressView(0, json_mode=False, console=terminal(), clock=clock)
    assert view.counts.rate == 0.0 and view.counts.eta == 0.0  # nothing to do
    view = ProgressView(10, json_mode=False, title="t", console=terminal(), clock=clock)
    update = _on_progress(view)
    update(snapshot(10, 0, elapsed=0.0))
    update(snapshot(10, 0, elapsed=0.0))  # same time, same counts
    assert view.counts.rate == 0.0 and view.counts.eta is None
    assert view.line().endswith("| --/s | ETA --:--")
    # runs re-queued by a resume (canceled -> pending) make the count go down: rate starts anew
    update(snapshot(10, 1, 0, 2))
    clock.t = 1.0
    update(snapshot(10, 2, 0, 2))
    clock.t = 2.0
    update(snapshot(10, 3, 0, 2))
    assert view.counts.rate > 0
    clock.t = 3.0
    update(snapshot(10, 3, 0, 0))
    assert view.counts.rate == 0.0 and view.counts.eta is None
    # a stalled run: the rate decays with time, the ETA grows, never negative or infinite
    clock.t = 4.0
    update(snapshot(10, 4, 0, 0))
    clock.t = 5.0
    update(snapshot(10, 4, 1, 0))
    eta_soon = view.counts.eta
    assert eta_soon == pytest.approx(5 / (2 / 2.0))  # 2 finished in 2 s, 5 left
    clock.t = 500.0
    eta_late = view.counts.eta
    assert eta_late is not None and eta_soon < eta_late < 1e6
    # 2 in 497 s: shown with two significant digits, not as 0.00/s beside a finite ETA
    assert view.line().endswith("| 0.0040/s | ETA 20:42"), view.line()
    clock.t = 5.0 + 2 * 3600
    assert view.line().endswith("| 0.00028/s | ETA 5:00:05"), view.line()


# --------------------------------------------------------------------------- JSON


def test_json_mode_emits_progress_at_most_four_times_a_second_and_each_item(
    capsys: pytest.CaptureFixture[str],
) -> None:
    clock = Clock()
    view = ProgressView(4, json_mode=True, console=terminal(), clock=clock)
    update = _on_progress(view)
    with view:
        for k in range(3):  # three updates in the same instant: one progress line
            update(snapshot(4, k, elapsed=0.0, last={"item_id": k, "status": "completed"}))
        clock.t = 0.3
        update(snapshot(4, 3, 1, elapsed=0.3, last=failed_row(9)))
    lines = [json.loads(ln) for ln in capsys.readouterr().out.splitlines()]
    kinds = [ln["type"] for ln in lines]
    assert kinds == ["progress", "item", "item", "item", "progress", "item", "progress"]
    first, final = lines[0], lines[-1]
    assert (first["done"], first["remaining"], first["rate"], first["eta_s"]) == (0, 4, 0.0, None)
    assert (final["done"], final["failed"], final["remaining"], final["eta_s"]) == (3, 1, 0, 0.0)
    assert lines[5]["status"] == "failed" and lines[5]["error_type"] == "OverflowError"


# --------------------------------------------------------------------------- real ivk run


@pytest.mark.server
def test_ivk_run_piped_prints_plain_progress_and_the_summary_with_the_counts(
    server: LocalServer, tmp_path: Path
) -> None:
    """Three runs of a workflow whose second value overflows on the server: 2 done, 1 failed."""
    out = tmp_path / "crop"
    res = ivk(
        "run",
        EXAMPLES / "crop_fail.json",
        "--sweep",
        "Crop Width=32,2147483648,48",
        "--out",
        out,
        url=server.url,
    )
    assert res.returncode == 1, res.stdout + res.stderr
    assert "\x1b" not in res.stdout + res.stderr
    # the summary
    assert "2/3 completed, 1 failed, 0 canceled, 2 image(s)" in res.stdout
    assert f"retry the failed runs: ivk resume --retry-failed {out}" in res.stdout
    # the progress: plain lines and the failed item on stderr
    err = res.stderr.splitlines()
    assert any(re.match(r"item \d+ failed: OverflowError: ", ln) for ln in err), err
    rows = [m.groupdict() for ln in err if (m := PLAIN.match(ln))]
    assert 2 <= len(rows) <= 4, err
    assert (rows[0]["title"], rows[0]["done"], rows[0]["remaining"]) == ("crop", "0", "3")
    final = rows[-1]
    assert (final["done"], final["failed"], final["canceled"], final["remaining"]) == (
        "2",
        "1",
        "0",
        "0",
    )
    assert final["total"] == "3" and final["time"].startswith("took ")
