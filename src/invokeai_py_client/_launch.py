"""Subprocess entry point used by :class:`~invokeai_py_client.local_server.LocalServer`.

Run as ``python -m invokeai_py_client._launch [--fast] -- <invokeai-web args>``. It prepares the
interpreter before InvokeAI is imported, then hands over to InvokeAI's own ``run_app()``:

* PyPI's torchvision wheel is a CUDA build; beside a CPU torch its ``torchvision::nms`` operator
  is missing and ``import torchvision`` fails. Declaring the two operator schemas first lets it
  import. No weight-free node calls them.
* ``--fast`` runs ``gc.collect(); gc.freeze()`` once, right after the app is built. The stock
  server runs a full ``gc.collect()`` before every queue item; with the app's objects frozen out
  of the collector that drops from about 0.5 s to a few ms, so the server behaves like a fast GPU
  server for benchmarks.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import sys
import threading
import time
from typing import Any


def _declare_torchvision_ops() -> None:
    import torch

    lib = torch.library.Library("torchvision", "DEF")
    for name in ("nms", "qnms"):
        # Already defined (a CPU torchvision build): nothing to fix.
        with contextlib.suppress(RuntimeError):
            lib.define(f"{name}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    # Keep the library object alive for the life of the process.
    globals()["_TORCHVISION_LIB"] = lib


def _freeze_after_app_built() -> None:
    import invokeai.app.run_app as run_app_module

    original = run_app_module.get_app

    def get_app() -> Any:
        result = original()
        gc.collect()
        gc.freeze()
        return result

    run_app_module.get_app = get_app


def _stop_when_parent_dies() -> None:
    """Stop the server when the process that started it is gone (even after SIGKILL).

    ``IVK_PARENT_PID`` names that process; once this process has been re-parented, a daemon
    thread sends it SIGINT, InvokeAI's own clean shutdown. (Linux's PR_SET_PDEATHSIG is not
    used: it fires when the starting *thread* ends, which would kill a server started from a
    worker thread.)
    """
    parent = os.environ.get("IVK_PARENT_PID")
    if not parent or not parent.isdigit():
        return
    parent_pid = int(parent)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(20)  # a clean shutdown should be over by now
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="ivk-parent-watch", daemon=True).start()


def main(argv: list[str]) -> None:
    fast = False
    if "--fast" in argv:
        fast = True
        argv = [a for a in argv if a != "--fast"]
    if "--" in argv:
        argv = argv[argv.index("--") + 1 :]
    _stop_when_parent_dies()
    _declare_torchvision_ops()
    if fast:
        _freeze_after_app_built()
    from invokeai.app.run_app import run_app

    sys.argv = ["invokeai-web", *argv]
    run_app()


if __name__ == "__main__":
    main(sys.argv[1:])
