"""Executing a planned run with :class:`~invokeai_py_client.run.BatchRun` (placeholder)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._common import EXIT_FAILED, CliError

if TYPE_CHECKING:
    from ..client import InvokeAIClient
    from ..sweep import Sweep, SweepPlan
    from ..workflow import WorkflowHandle


def execute_run(
    client: InvokeAIClient,
    handle: WorkflowHandle,
    sweep: Sweep,
    plan: SweepPlan,
    out_dir: Path,
    servers: list[str],
    *,
    detach: bool,
    json_mode: bool,
) -> None:
    """Run the plan (waiting for BatchRun)."""
    raise CliError("batch runs are not available yet", exit_code=EXIT_FAILED, code="unavailable")


def resume_run(
    run_dir: Path, servers: list[str] | None, *, retry_failed: bool, detach: bool, json_mode: bool
) -> Any:
    """Resume a run (waiting for BatchRun)."""
    raise CliError("resume is not available yet", exit_code=EXIT_FAILED, code="unavailable")
