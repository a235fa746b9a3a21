"""Running the real ``ivk`` in a subprocess, for the tests that need a clean environment."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

#: what ivk reads from the environment: dropped so the caller's shell cannot leak into a test
IVK_ENV = ("INVOKEAI_URL", "INVOKEAI_API_KEY", "INVOKEAI_PASSWORD", "IVK_CONFIG_DIR")

#: where ivk keeps saved tokens (``ivk login``) unless a test passes its own IVK_CONFIG_DIR:
#: an empty directory of this test process, never the user's ~/.config
_NO_TOKENS = tempfile.mkdtemp(prefix="ivk-config-")


def run_ivk(
    *args: str,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    stdin: str = "",
    timeout: float = 180,
) -> subprocess.CompletedProcess[str]:
    """``python -m invokeai_py_client.cli ARGS`` with ``env`` on top of a cleaned environment.

    Wide, colourless output; no controlling terminal (a password prompt reads ``stdin``).
    Saved tokens come from ``env["IVK_CONFIG_DIR"]``, else from an empty directory.
    """
    full = {k: v for k, v in os.environ.items() if k not in IVK_ENV}
    full.update({"COLUMNS": "200", "NO_COLOR": "1", "IVK_CONFIG_DIR": _NO_TOKENS, **(env or {})})
    return subprocess.run(
        [sys.executable, "-m", "invokeai_py_client.cli", *args],
        capture_output=True,
        text=True,
        env=full,
        cwd=cwd,
        input=stdin,
        timeout=timeout,
        check=False,
        start_new_session=True,
    )
