"""Helpers shared by the contender scripts (standard library only: the reference contender runs
in its own virtual environment, which has neither our package nor httpx).

Every contender takes the same arguments (``--url --n --out DIR --workflow PATH``), produces the
same N images (the blur workflow with the blur radius swept over :func:`radius_values`) and
prints exactly one JSON line (:func:`emit`) as the last line of its standard output.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

#: Form index / node / field of the swept input in examples/workflows/blur.json.
RADIUS_INDEX = 3
BLUR_NODE_ID = "1d42adc5-9563-4412-9588-791731aaf375"
SAVE_NODE_ID = "af0269fb-0793-4b22-9a3f-7b6c9095e42f"
CANVAS_NODE_ID = "af1b840d-9a38-4d80-bb2f-dcbc40fc2bac"


def radius_values(n: int) -> list[int]:
    """The swept values, identical for every contender: blur radius 1..8, repeating.

    Integers because the reference library types the radius input as an integer (the workflow
    stores ``4``). The bench server runs with ``node_cache_size=0``, so repeated values are
    computed again, never served from InvokeAI's node cache.
    """
    return [1 + i % 8 for i in range(n)]


def parse_args(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--url", required=True, help="server base URL, e.g. http://127.0.0.1:9090")
    parser.add_argument("--n", type=int, required=True, help="number of runs (images)")
    parser.add_argument("--out", type=Path, required=True, help="directory for the images")
    parser.add_argument("--workflow", type=Path, required=True, help="GUI workflow JSON")
    return parser.parse_args()


def parse_server_ts(value: str | None) -> float | None:
    """Epoch seconds of an InvokeAI queue timestamp.

    The queue stores SQLite ``STRFTIME('%Y-%m-%d %H:%M:%f', 'NOW')`` values: UTC, no zone
    suffix, millisecond precision (``2026-11-22 10:38:50.970``); events carry ``str(datetime)``
    of the same value. Naive values are therefore read as UTC; an explicit offset is honoured.
    """
    if not value:
        return None
    dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def percentile(values: list[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in 0..100) of ``values``; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def count_pngs(out: Path) -> int:
    """Images on disk: non-empty files that start with the PNG signature."""
    count = 0
    for path in out.glob("*.png"):
        with path.open("rb") as fh:
            if fh.read(8) == b"\x89PNG\r\n\x1a\n":
                count += 1
    return count


def now() -> float:
    """Wall clock (epoch seconds), comparable with server timestamps on the same machine."""
    return time.time()


def peak_rss_mb() -> float | None:
    """This process's peak resident set size (``VmHWM``), in MiB.

    Read from ``/proc/self/status`` because ``ru_maxrss`` survives ``exec``: a child started
    by a large parent reports the parent's size at fork when its own peak is smaller.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def emit(result: dict[str, Any]) -> None:
    """Print the contender's one-line JSON result (last line of stdout), with its peak RSS."""
    result.setdefault("peak_rss_mb", peak_rss_mb())
    sys.stdout.write(json.dumps(result, separators=(",", ":")) + "\n")
    sys.stdout.flush()
