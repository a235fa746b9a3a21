"""The ``ivk`` command line (typer + rich): inputs, runs and sweeps, sheets, boards, servers.

Example (shell)::

    ivk inputs examples/workflows/blur.json
    ivk run examples/workflows/blur.json --sweep "Blur Radius=0,2,6" --sweep Colour=red,blue
    ivk sheet out/blur-20260101-120000

See ``docs/cli.md`` for every command and option.
"""

from __future__ import annotations

from .app import app, main

__all__ = ["app", "main"]
