"""The client core: URL parsing, health, version, error mapping, auth header, retries."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from invokeai_py_client import InvokeAIClient
from invokeai_py_client.exceptions import (
    APIError,
    InvokeAIConnectionError,
    InvokeAIError,
    InvokeAITimeoutError,
    NotFoundError,
    RequestValidationError,
)
from invokeai_py_client.local_server import find_free_port


@pytest.mark.parametrize(
    ("url", "host", "port", "https", "base_url"),
    [
        ("http://localhost:9090", "localhost", 9090, False, "http://localhost:9090/api/v1"),
        ("http://127.0.0.1:9090/", "127.0.0.1", 9090, False, "http://127.0.0.1:9090/api/v1"),
        (
            "https://invoke.example.com",
            "invoke.example.com",
            443,
            True,
            "https://invoke.example.com:443/api/v1",
        ),
        ("http://example.com", "example.com", 80, False, "http://example.com:80/api/v1"),
        ("localhost:9191", "localhost", 9191, False, "http://localhost:9191/api/v1"),
        ("gpu-box", "gpu-box", 9090, False, "http://gpu-box:9090/api/v1"),
        ("https://h:8443/invoke", "h", 8443, True, "https://h:8443/invoke/api/v1"),
        ("https://h:8443/invoke/api/v1", "h", 8443, True, "https://h:8443/invoke/api/v1"),
        ("http://[::1]:9090", "::1", 9090, False, "http://[::1]:9090/api/v1"),
        ("  http://LOCALHOST:9090  ", "localhost", 9090, False, "http://localhost:9090/api/v1"),
    ],
)
def test_from_url_parsing(url: str, host: str, port: int, https: bool, base_url: str) -> None:
    c = InvokeAIClient.from_url(url)
    try:
        assert (c.host, c.port, c.use_https) == (host, port, https)
        assert c.base_url == base_url
    finally:
        c.close()


@pytest.mark.parametrize("url", ["", "ftp://host:21", "http://:9090", "http://host:notaport"])
def test_from_url_rejects_bad_urls(url: str) -> None:
    with pytest.raises(InvokeAIError):
        InvokeAIClient.from_url(url)


def test_from_url_passes_options() -> None:
    c = InvokeAIClient.from_url("http://h:1", timeout=5, api_key="k", max_retries=0)
    assert c.timeout == 5.0 and c.max_retries == 0 and c.api_key == "k"
    c.close()


def test_health_check_false_on_closed_port() -> None:
    port = find_free_port()
    with InvokeAIClient(host="127.0.0.1", port=port, timeout=2, max_retries=0) as c:
        assert c.health_check() is False
        with pytest.raises(InvokeAIConnectionError) as info:
            _ = c.server_version
        assert str(port) in str(info.value)
        assert isinstance(info.value, ConnectionError)


@pytest.mark.server
def test_health_and_version_on_real_server(client: InvokeAIClient) -> None:
    assert client.health_check() is True
    assert client.server_version == "6.14.2"


@pytest.mark.server
def test_404_from_real_server_maps_to_not_found(client: InvokeAIClient) -> None:
    with pytest.raises(NotFoundError) as info:
        client.http.get_json("/api/v1/images/i/no-such-image.png")
    err = info.value
    assert err.status_code == 404
    assert err.detail  # the server's own detail
    assert "no-such-image.png" in str(err) and "404" in str(err)


@pytest.mark.server
def test_422_from_real_server_carries_validation_details(client: InvokeAIClient) -> None:
    with pytest.raises(RequestValidationError) as info:
        client.http.request(
            "POST", "/api/v1/queue/default/enqueue_batch", json={"batch": {"graph": 5}}
        )
    err = info.value
    assert err.status_code == 422
    assert err.errors and all("loc" in e and "msg" in e for e in err.errors)
    assert any("graph" in [str(p) for p in e["loc"]] for e in err.errors)
    assert "graph" in str(err)


# --------------------------------------------------------------------------- a tiny real peer


class _Peer:
    """A real HTTP server on loopback that records requests and plays a script of answers."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.script: list[tuple[int, dict[str, str], Any, float]] = []
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                peer.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": body,
                    }
                )
                status, headers, payload, delay = (
                    peer.script.pop(0) if peer.script else (200, {}, {"version": "x"}, 0.0)
                )
                if delay:
                    time.sleep(delay)
                data = json.dumps(payload).encode()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(data)

            do_GET = do_POST = do_PUT = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def peer() -> Iterator[_Peer]:
    p = _Peer()
    yield p
    p.close()


def test_bearer_header_sent_and_key_never_shown(peer: _Peer) -> None:
    secret = "sk-very-secret-123"
    with InvokeAIClient(host="127.0.0.1", port=peer.port, api_key=secret) as c:
        assert c.health_check()
        assert peer.requests[-1]["headers"]["Authorization"] == f"Bearer {secret}"
        assert secret not in repr(c) and "***" in repr(c)
        assert secret not in repr(c.http)
        peer.script.append((404, {}, {"detail": "nope"}, 0.0))
        with pytest.raises(NotFoundError) as info:
            c.http.get_json("/api/v1/x")
        assert secret not in str(info.value) and secret not in repr(info.value.__dict__)


def test_no_auth_header_without_key(peer: _Peer) -> None:
    with InvokeAIClient(host="127.0.0.1", port=peer.port) as c:
        c.health_check()
        assert "Authorization" not in peer.requests[-1]["headers"]


def test_get_retried_on_503_honouring_retry_after(peer: _Peer) -> None:
    peer.script += [(503, {"Retry-After": "0"}, {"detail": "busy"}, 0.0)] * 2
    with InvokeAIClient(host="127.0.0.1", port=peer.port, max_retries=3) as c:
        assert c.http.get_json("/api/v1/app/version") == {"version": "x"}
    assert len(peer.requests) == 3


def test_get_gives_up_after_max_retries(peer: _Peer) -> None:
    peer.script += [(429, {"Retry-After": "0"}, {"detail": "slow down"}, 0.0)] * 5
    with (
        InvokeAIClient(host="127.0.0.1", port=peer.port, max_retries=2) as c,
        pytest.raises(APIError) as info,
    ):
        c.http.get_json("/api/v1/app/version")
    assert info.value.status_code == 429 and "slow down" in str(info.value)
    assert len(peer.requests) == 3


def test_enqueue_post_is_never_retried(peer: _Peer) -> None:
    peer.script += [(503, {"Retry-After": "0"}, {"detail": "busy"}, 0.0)] * 3
    with (
        InvokeAIClient(host="127.0.0.1", port=peer.port, max_retries=3) as c,
        pytest.raises(APIError),
    ):
        c.http.request("POST", "/api/v1/queue/default/enqueue_batch", json={})
    assert len(peer.requests) == 1


def test_timeout_maps_to_our_timeout_error(peer: _Peer) -> None:
    # A real peer that answers too late: the one thing a real InvokeAI cannot do on demand.
    peer.script.append((200, {}, {"version": "late"}, 1.5))
    with (
        InvokeAIClient(host="127.0.0.1", port=peer.port, timeout=0.3, max_retries=0) as c,
        pytest.raises(InvokeAITimeoutError) as info,
    ):
        c.http.get_json("/api/v1/app/version")
    assert isinstance(info.value, TimeoutError)


@pytest.mark.server
def test_node_schema_skips_the_big_openapi_when_the_snapshot_matches(
    client: InvokeAIClient,
) -> None:
    schema = client.node_schema(node_types={"blank_image", "img_blur", "save_image"})
    assert schema.source != "openapi" and schema.version == client.server_version
    # A type the snapshot does not know (e.g. a custom node) makes it ask the server.
    live = client.node_schema(node_types={"blank_image", "no_such_custom_node"})
    assert live.source == "openapi" and "save_image" in live
    assert client.node_schema(refresh=True).source == "openapi"
