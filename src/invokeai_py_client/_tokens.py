"""Saved tokens of multi-user servers, one per server (what ``ivk login`` keeps).

A JSON file, ``tokens.json``, in ``$IVK_CONFIG_DIR``, else
``$XDG_CONFIG_HOME/invokeai-py-client/``, else ``~/.config/invokeai-py-client/``::

    {"version": 1, "tokens": {"http://gpu-box:9090": "eyJ..."}}

Tokens are keyed by the server root as :attr:`InvokeAIClient.server_url` spells it (scheme,
host, port and any proxy prefix), so ``gpu-box:9090``, ``http://gpu-box:9090/`` and
``http://gpu-box:9090/api/v1`` are one server. The file is private to its owner (mode 0600,
its directory 0700) and replaced atomically (a temporary file, then ``os.replace``). A file
that cannot be read or parsed is reported once, as a warning, and taken as empty; token
values never appear in a message.

Only ``ivk`` and :func:`invokeai_py_client.run.resume` (without a client) read this store; a
plain ``InvokeAIClient(...)`` never does.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

#: Overrides where the token file lives (tests, several profiles).
CONFIG_DIR_ENV = "IVK_CONFIG_DIR"
#: A token for every server (``ivk --api-key`` sets it); it wins over the saved ones.
API_KEY_ENV = "INVOKEAI_API_KEY"
FILE_NAME = "tokens.json"
_API_SUFFIXES = ("/api/v1", "/api/v2")

_warned: set[str] = set()


def config_dir() -> Path:
    """``$IVK_CONFIG_DIR``, else ``$XDG_CONFIG_HOME/invokeai-py-client``, else ``~/.config/...``."""
    env = os.environ.get(CONFIG_DIR_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CONFIG_HOME", "").strip()
    base = Path(xdg).expanduser() if xdg else Path.home() / ".config"
    return base / "invokeai-py-client"


def store_path() -> Path:
    """The token file (it may not exist yet)."""
    return config_dir() / FILE_NAME


def server_key(url: str) -> str:
    """The server root of ``url`` as ``InvokeAIClient.from_url(url).server_url`` gives it.

    Raises ValueError for a URL without a host or with a bad port or scheme.
    """
    text = url.strip()
    has_scheme = "://" in text
    parts = urlsplit(text if has_scheme else f"http://{text}")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not a server URL: {url!r}")
    port = parts.port  # ValueError for a bad one
    if port is None:
        port = (443 if parts.scheme == "https" else 80) if has_scheme else 9090
    host = parts.hostname
    if ":" in host:
        host = f"[{host}]"
    path = "/" + parts.path.strip("/") if parts.path.strip("/") else ""
    for suffix in _API_SUFFIXES:
        if path.endswith(suffix):
            path = path[: -len(suffix)]
            break
    return f"{parts.scheme}://{host}:{port}{path.rstrip('/')}"


def _warn_once(path: Path, problem: str) -> None:
    key = str(path)
    if key in _warned:
        return
    _warned.add(key)
    log.warning(
        "ignoring the saved tokens in %s: %s (log in again with `ivk login`, or remove the file)",
        path,
        problem,
    )


def _load(path: Path) -> dict[str, str]:
    """The saved tokens; an unreadable or malformed file warns once and counts as empty."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        _warn_once(path, f"cannot read it ({exc.strerror or type(exc).__name__})")
        return {}
    except UnicodeDecodeError:
        _warn_once(path, "it is not UTF-8 text")
        return {}
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        _warn_once(path, f"it is not valid JSON (line {exc.lineno}, column {exc.colno})")
        return {}
    tokens = data.get("tokens") if isinstance(data, dict) else None
    if not isinstance(tokens, dict):
        _warn_once(path, 'it has no "tokens" object')
        return {}
    return {str(k): v for k, v in tokens.items() if isinstance(v, str) and v}


def _save(path: Path, tokens: dict[str, str]) -> None:
    """Write ``tokens`` atomically, readable by the owner only."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        os.chmod(path.parent, 0o700)  # private, even when it existed before
    fd, tmp = tempfile.mkstemp(prefix=".tokens-", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"version": 1, "tokens": tokens}, f, indent=2, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def get(url: str) -> str | None:
    """The saved token of the server at ``url``, or None (none saved, or a bad URL)."""
    try:
        key = server_key(url)
    except ValueError:
        return None
    return _load(store_path()).get(key)


def token_for(url: str) -> str | None:
    """The token to use for ``url``: ``$INVOKEAI_API_KEY`` (for every server), else the one
    saved for that server (``ivk login``), else None."""
    return os.environ.get(API_KEY_ENV) or get(url)


def put(url: str, token: str) -> Path:
    """Save ``token`` for the server at ``url`` (replacing any); returns the file's path."""
    if not token:
        raise ValueError("empty token")
    path = store_path()
    tokens = _load(path)
    tokens[server_key(url)] = token
    _save(path, tokens)
    return path


def remove(url: str) -> bool:
    """Forget the token of the server at ``url``; True if there was one."""
    path = store_path()
    tokens = _load(path)
    if tokens.pop(server_key(url), None) is None:
        return False
    _save(path, tokens)
    return True
