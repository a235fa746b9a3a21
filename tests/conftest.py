"""Shared test fixtures.

``server`` is one real InvokeAI server (``LocalServer``, fast mode) for the whole session;
tests that use it carry ``@pytest.mark.server``. ``mu_server`` is one multi-user server
(``multiuser=True``) for the session, started only when a test asks for it. Tests that need
their own server (restarts, faults, several servers) start one with ``LocalServer`` directly
and mark themselves ``slow``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from invokeai_py_client import InvokeAIClient
from invokeai_py_client.local_server import LocalServer

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
EXAMPLES = REPO / "examples" / "workflows"

# ivk's saved tokens (``ivk login``): the whole session, and every ivk it starts, gets an empty
# store of its own, so a developer's ~/.config never leaks into a test and no test writes there
os.environ["IVK_CONFIG_DIR"] = tempfile.mkdtemp(prefix="ivk-test-config-")


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    """One real InvokeAI server on loopback for the session."""
    with LocalServer(tmp_path_factory.mktemp("invokeai-root"), fast=True) as srv:
        yield srv


@pytest.fixture(scope="session")
def mu_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    """One real multi-user InvokeAI on loopback, shared by the tests that ask for it."""
    root = tmp_path_factory.mktemp("invokeai-multiuser")
    with LocalServer(root, fast=True, multiuser=True) as srv:
        yield srv


@pytest.fixture
def client(server: LocalServer) -> Iterator[InvokeAIClient]:
    """A fresh client connected to the session server."""
    with InvokeAIClient.from_url(server.url) as c:
        yield c


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``../shared`` beside the repository (skips the test when it is absent)."""
    if not SHARED.is_dir():
        pytest.skip("../shared is not present beside the repository")
    return SHARED


@pytest.fixture(scope="session")
def examples_dir() -> Path:
    """The example workflows shipped in this repository."""
    return EXAMPLES
