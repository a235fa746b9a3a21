"""The README's first command (``python3 dev.py demo``): a real sweep, end to end, via ``ivk``.

It starts a local InvokeAI server (``LocalServer``, fast mode) with its root in
``out/.invokeai-root`` (kept, so the second demo starts quickly), then runs, through the
``ivk`` command line's own code::

    ivk inputs examples/workflows/blur.json
    ivk run examples/workflows/blur.json --sweep Width=48,96 --sweep Height=32,64,96 \\
        --out out/demo-<time> --server <local server>
    ivk sheet out/demo-<time>

which makes 6 images (2 widths x 3 heights), downloads them with ``manifest.jsonl`` /
``manifest.csv`` / ``run.json``, draws the contact sheet, prints where everything is, and
stops the server.

Usage::

    python -m invokeai_py_client.demo [--workflow FILE] [--out DIR] [--port N]
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime
from pathlib import Path

__all__ = ["find_workflow", "main"]

DEFAULT_WORKFLOW = Path("examples") / "workflows" / "blur.json"
SWEEP = ["--sweep", "Width=48,96", "--sweep", "Height=32,64,96"]


def find_workflow(given: str | None) -> Path:
    """The workflow to run: ``--workflow``, else ``examples/workflows/blur.json`` found from
    the current directory or from this package's source tree (the repository)."""
    if given:
        return Path(given)
    candidates = [Path.cwd() / DEFAULT_WORKFLOW]
    candidates += [parent / DEFAULT_WORKFLOW for parent in Path(__file__).resolve().parents]
    for c in candidates:
        if c.is_file():
            return c
    return candidates[0]


def main(argv: list[str] | None = None) -> int:
    """Run the demo; returns the exit code (0 when the sweep, manifest and sheet are done)."""
    parser = argparse.ArgumentParser(prog="python -m invokeai_py_client.demo", description=__doc__)
    parser.add_argument("--workflow", help="workflow JSON (default examples/workflows/blur.json)")
    parser.add_argument("--out", default="out", help="where runs and the server root go")
    parser.add_argument("--port", type=int, default=None, help="server port (default: free)")
    args = parser.parse_args(argv)

    from .cli import main as ivk
    from .exceptions import ServerStartError
    from .local_server import LocalServer

    workflow = find_workflow(args.workflow)
    if not workflow.is_file():
        print(f"demo: no workflow at {workflow}; pass --workflow FILE", file=sys.stderr)
        return 2
    out = Path(args.out)
    root = out / ".invokeai-root"
    run_dir = out / f"demo-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    n = 1
    while run_dir.exists():
        n += 1
        run_dir = run_dir.with_name(f"{run_dir.name.split('_')[0]}_{n}")

    print(f"starting a local InvokeAI server (root {root}) ...", flush=True)
    t0 = time.monotonic()
    # a fresh log per start: LocalServer reads the port from the log, and an old log of the
    # reused root would name the previous run's port
    (root / "invokeai-web.log").unlink(missing_ok=True)
    server = LocalServer(root, port=args.port, fast=True)
    try:
        server.start()
    except ServerStartError as exc:
        print(f"demo: the server did not start: {exc}", file=sys.stderr)
        return 1
    try:
        print(f"InvokeAI is up at {server.url} after {time.monotonic() - t0:.1f} s\n", flush=True)
        steps = [
            ["inputs", str(workflow)],
            ["run", str(workflow), *SWEEP, "--out", str(run_dir), "--server", server.url],
            ["sheet", str(run_dir)],
        ]
        for step in steps:
            print("$ ivk " + " ".join(_quote(a) for a in step), flush=True)
            code = ivk(step)
            print(flush=True)
            if code != 0:
                print(f"demo: `ivk {step[0]}` failed with exit code {code}", file=sys.stderr)
                return code
    except KeyboardInterrupt:
        print("demo: interrupted", file=sys.stderr)
        return 130
    finally:
        print("stopping the server ...", flush=True)
        server.stop()

    print("done:")
    print(f"  images         {run_dir / 'images'}")
    print(f"  manifest       {run_dir / 'manifest.jsonl'} (and manifest.csv, run.json)")
    print(f"  contact sheet  {run_dir / 'sheet.png'}")
    return 0


def _quote(arg: str) -> str:
    return f'"{arg}"' if " " in arg else arg


if __name__ == "__main__":
    sys.exit(main())
