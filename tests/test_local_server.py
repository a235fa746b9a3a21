"""LocalServer: the real InvokeAI server our tests, benchmarks and demo start."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from invokeai_py_client.exceptions import ServerStartError
from invokeai_py_client.local_server import LocalServer


@pytest.mark.server
def test_session_server_binds_loopback_only(server: LocalServer) -> None:
    assert server.url.startswith("http://127.0.0.1:")
    assert server.is_running()
    assert server.log_path is not None and server.log_path.exists()
    assert httpx.get(server.url + "/api/v1/app/version").json()["version"] == "6.14.2"


def test_start_timeout_raises_with_log_tail(tmp_path: Path) -> None:
    srv = LocalServer(tmp_path / "root", startup_timeout=0.5)
    with pytest.raises(ServerStartError) as info:
        srv.start()
    assert "did not answer within" in str(info.value) or "exited" in str(info.value)
    assert "Log (" in str(info.value)
    assert not srv.is_running()


@pytest.mark.slow
def test_restart_keeps_root_and_port_and_kill_takes_child_along(tmp_path: Path) -> None:
    with LocalServer(tmp_path / "root") as srv:
        port, root = srv.port, srv.root
        srv.restart()
        assert (srv.port, srv.root) == (port, root)
        assert httpx.get(srv.url + "/api/v1/app/version").status_code == 200
    assert not srv.is_running()

    # The same root again, on another port, started from a thread that then ends: the old
    # log lines must not mislead start-up, and the server must outlive the starting thread.
    started: list[LocalServer] = []
    worker = threading.Thread(
        target=lambda: started.append(LocalServer(tmp_path / "root", startup_timeout=60).start())
    )
    worker.start()
    worker.join()
    again = started[0]
    try:
        time.sleep(1.5)
        assert again.is_running()
        assert httpx.get(again.url + "/api/v1/app/version").status_code == 200
    finally:
        again.stop()

    # A parent killed with SIGKILL must not leave an orphaned InvokeAI holding a port.
    script = (
        "import time\n"
        "from invokeai_py_client.local_server import LocalServer\n"
        f"s = LocalServer({str(tmp_path / 'root2')!r}).start()\n"
        "print(s.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child_pid = int(parent.stdout.readline())
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(child_pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        os.kill(child_pid, signal.SIGKILL)
        pytest.fail("the InvokeAI child outlived its killed parent")
