#!/usr/bin/env python3
"""Set up the project's environment and run its jobs, with nothing but Python 3.11 and pip.

    python3 dev.py demo    # set up, start a local InvokeAI, run the example sweep, save images
    python3 dev.py test    # set up, then ruff, mypy --strict and the whole test suite
    python3 dev.py setup   # only create / update the virtual environment (.venv)

The virtual environment is created once and reinstalled only when pyproject.toml changes,
so a second run starts at once.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"
STAMP = VENV / ".dev-installed"


def _run(*cmd: str | Path, check: bool = True) -> int:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    code = subprocess.call([str(c) for c in cmd], cwd=ROOT)
    if check and code != 0:
        sys.exit(code)
    return code


def setup() -> None:
    """Create .venv and install the project with its server and dev extras (once)."""
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py may be run by an older python3
        sys.exit(f"Python 3.11 or newer is needed (this is {sys.version.split()[0]})")
    if not PY.exists():
        _run(sys.executable, "-m", "venv", VENV)
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text().strip() == want:
        return
    _run(PY, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    # torch 2.13.0 (CPU) is pinned by the `server` extra; pip's normal resolution finds it.
    _run(PY, "-m", "pip", "install", "--quiet", "-e", f"{ROOT}[server,dev]")
    STAMP.write_text(want)


def test(pytest_args: list[str]) -> None:
    """Lint, type-check and run every test (including the ones against a real server)."""
    setup()
    _run(PY, "-m", "ruff", "check", "src", "tests", "bench", "examples", "dev.py")
    _run(PY, "-m", "ruff", "format", "--check", "src", "tests")
    _run(PY, "-m", "mypy", "--strict", "src/invokeai_py_client")
    code = _run(PY, "-m", "pytest", *pytest_args, check=False)
    if code == 5:
        sys.exit("pytest collected no tests: refusing to pass an empty run")
    sys.exit(code)


def demo(args: list[str]) -> None:
    """Start a local InvokeAI, run the example sweep, save the images under out/."""
    setup()
    sys.exit(_run(PY, "-m", "invokeai_py_client.demo", *args, check=False))


def main(argv: list[str]) -> None:
    if not argv or argv[0] not in {"demo", "test", "setup"}:
        sys.exit(__doc__)
    job, rest = argv[0], argv[1:]
    if job == "setup":
        setup()
    elif job == "test":
        test(rest)
    else:
        demo(rest)


if __name__ == "__main__":
    main(sys.argv[1:])
