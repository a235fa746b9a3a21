"""What every ``ivk`` command shares: output (rich or JSON lines), errors, servers, values.

Conventions (docs/cli.md):

- A user mistake is one line on stderr, ``ivk: error: ...``, exit code 2, nothing sent.
- A failure while running (server unreachable, items failed) exits 1; Ctrl-C exits 130.
- ``--json``: one JSON object per line on stdout, the last one ``{"type": "summary", ...}``
  with ``ok`` and, when not ok, ``error_code``.
- ``--debug`` (or ``IVK_DEBUG=1``) prints the traceback of any error.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from .. import _tokens
from ..exceptions import (
    AmbiguousInputError,
    APIError,
    AuthenticationError,
    BoardError,
    FieldValueError,
    InputNotFoundError,
    InvokeAIError,
    ModelNotFoundError,
    SweepError,
    TransportError,
    WorkflowError,
)

if TYPE_CHECKING:
    from ..client import InvokeAIClient

DEFAULT_URL = "http://127.0.0.1:9090"

#: exit codes
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

stderr = Console(stderr=True, highlight=False, soft_wrap=True)
stdout = Console(highlight=False, soft_wrap=True)


class CliError(Exception):
    """An error shown as one line, with an exit code and a short machine-readable code."""

    def __init__(self, message: str, *, exit_code: int = EXIT_USAGE, code: str = "usage_error"):
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.code = code


@dataclass
class State:
    """Process-wide CLI flags set by the top-level callback."""

    debug: bool = field(default_factory=lambda: os.environ.get("IVK_DEBUG", "") not in ("", "0"))
    json_mode: bool = False
    summary_sent: bool = False


STATE = State()


# --------------------------------------------------------------------------- output


def _default(o: Any) -> Any:
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, datetime | date):
        return o.isoformat()
    if hasattr(o, "model_dump"):
        return o.model_dump(mode="json")
    if isinstance(o, set | frozenset | tuple):
        return list(o)
    return str(o)


_EMIT_LOCK = threading.Lock()


def emit(obj: Mapping[str, Any]) -> None:
    """Write one JSON object as one line on stdout (``--json`` mode; thread-safe)."""
    line = json.dumps(obj, default=_default, ensure_ascii=False) + "\n"
    with _EMIT_LOCK:
        sys.stdout.write(line)
        sys.stdout.flush()


def summary(ok: bool, *, error_code: str | None = None, **fields: Any) -> None:
    """Emit the final ``summary`` object of a ``--json`` command (once)."""
    if STATE.summary_sent or not STATE.json_mode:
        return
    STATE.summary_sent = True
    obj: dict[str, Any] = {"type": "summary", "ok": ok, **fields}
    if not ok:
        obj["error_code"] = error_code or "failed"
    emit(obj)


def info(message: str) -> None:
    """A human message (stderr in ``--json`` mode, so stdout stays parseable)."""
    if STATE.json_mode:
        return
    stdout.print(message)


def classify(exc: BaseException) -> CliError:
    """Turn any exception into the one-line error, exit code and error code to show."""
    if isinstance(exc, CliError):
        return exc
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, InputNotFoundError | AmbiguousInputError | FieldValueError):
        return CliError(msg, exit_code=EXIT_USAGE, code="input_error")
    if isinstance(exc, SweepError):
        return CliError(msg, exit_code=EXIT_USAGE, code="sweep_error")
    if isinstance(exc, WorkflowError):
        return CliError(msg, exit_code=EXIT_USAGE, code="workflow_error")
    if isinstance(exc, BoardError | ModelNotFoundError):
        return CliError(msg, exit_code=EXIT_USAGE, code="not_found")
    if isinstance(exc, TransportError):
        url = getattr(exc, "url", None) or ""
        return CliError(
            f"cannot reach InvokeAI{' (' + url + ')' if url else ''}: {msg} "
            "(is it running? pass --server URL or set INVOKEAI_URL)",
            exit_code=EXIT_FAILED,
            code="connection_error",
        )
    if isinstance(exc, AuthenticationError):
        return CliError(f"not authorized: {msg}", exit_code=EXIT_FAILED, code="auth_error")
    if isinstance(exc, APIError):
        return CliError(
            f"the server refused the request: {msg}", exit_code=EXIT_FAILED, code="server_error"
        )
    if isinstance(exc, InvokeAIError):
        return CliError(msg, exit_code=EXIT_FAILED, code="failed")
    if isinstance(exc, FileNotFoundError | IsADirectoryError | NotADirectoryError):
        name = getattr(exc, "filename", None) or msg
        return CliError(f"no such file: {name}", exit_code=EXIT_USAGE, code="file_not_found")
    if isinstance(exc, PermissionError):
        return CliError(msg, exit_code=EXIT_FAILED, code="permission_denied")
    return CliError(f"{type(exc).__name__}: {msg}", exit_code=EXIT_FAILED, code="internal_error")


def report_error(err: CliError) -> None:
    """Show a classified error: a JSON error + summary object, or one line on stderr."""
    if STATE.json_mode:
        emit({"type": "error", "error_code": err.code, "message": err.message})
        summary(False, error_code=err.code, message=err.message)
    else:
        stderr.print(f"ivk: error: {err.message}", markup=False)


# --------------------------------------------------------------------------- servers


def server_urls(given: list[str] | None) -> list[str]:
    """``--server`` values, else ``INVOKEAI_URL``, else ``http://127.0.0.1:9090``."""
    if given:
        # the same server named twice is one server (its queue would be counted twice)
        return list(dict.fromkeys(u.strip().rstrip("/") for u in given if u.strip()))
    env = os.environ.get("INVOKEAI_URL", "").strip()
    return [env or DEFAULT_URL]


#: Where ``ivk`` (and the run / resume code it calls) finds a multi-user server's token.
API_KEY_ENV = _tokens.API_KEY_ENV


def set_api_key(key: str) -> None:
    """Use ``key`` (``ivk --api-key``) for every server this process talks to.

    It goes into this process's ``INVOKEAI_API_KEY``: every client ``ivk`` makes reads it
    there, including the ones a resumed or several-server run makes for itself.
    """
    os.environ[API_KEY_ENV] = key


class _TokenWarning(logging.Handler):
    """The token store's warnings (an unreadable file) as one ``ivk: warning:`` line."""

    def emit(self, record: logging.LogRecord) -> None:
        stderr.print(f"ivk: warning: {record.getMessage()}", markup=False)


_tokens_log = logging.getLogger(_tokens.__name__)
_tokens_log.addHandler(_TokenWarning(logging.WARNING))
_tokens_log.propagate = False


def api_key_for(url: str) -> str | None:
    """The token ``ivk`` uses for ``url``: ``--api-key`` / ``INVOKEAI_API_KEY`` (for every
    server), else the one ``ivk login`` saved for that server, else None."""
    return _tokens.token_for(url)


def make_client(url: str, *, timeout: float = 30.0, token: bool = True) -> InvokeAIClient:
    """A client for ``url`` with its token (:func:`api_key_for`, never printed), if any.

    ``token=False``: a client without one (``ivk login`` gets its own).
    """
    from ..client import InvokeAIClient

    key = api_key_for(url) if token else None
    try:
        return InvokeAIClient.from_url(url, api_key=key, timeout=timeout)
    except InvokeAIError as exc:
        raise CliError(f"bad server URL: {exc}", code="bad_url") from None


@contextmanager
def connected(url: str, *, token: bool = True) -> Iterator[InvokeAIClient]:
    """A client that has answered a health check (else a one-line connection error).

    When its token came from the store and the server renewed it meanwhile, the renewed
    one is saved back.
    """
    client = make_client(url, token=token)
    saved = _tokens.get(url) if token and not os.environ.get(API_KEY_ENV) else None
    try:
        if not client.health_check():
            raise CliError(
                f"cannot reach InvokeAI at {client.server_url} "
                "(is it running? pass --server URL, set INVOKEAI_URL, or start one: ivk serve)",
                exit_code=EXIT_FAILED,
                code="connection_error",
            )
        yield client
    finally:
        renewed = client.api_key
        client.close()
        if saved and renewed and renewed != saved and _tokens.get(url) == saved:
            with suppress(OSError, ValueError):
                _tokens.put(client.server_url, renewed)


# --------------------------------------------------------------------------- values

_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
RANGE_RE = re.compile(rf"^\s*({_NUM})\s*:\s*({_NUM})\s*(?::\s*({_NUM})\s*)?$")


def field_kind(field_obj: Any) -> str:
    """The short type name of an ``IvkField`` (``integer``, ``float``, ``color``, ...)."""
    return str(getattr(field_obj, "kind", "") or type(field_obj).__name__)


def parse_value(text: str, field_obj: Any = None) -> Any:
    """Turn a command-line string into a Python value for an input of ``field_obj``'s type.

    Integers and floats are parsed as numbers, booleans from true/false/yes/no/1/0, colours
    from ``#rrggbb[aa]``, ``r,g,b[,a]`` or a CSS name (``red``); JSON objects and lists are
    parsed as JSON; anything else stays text. The field itself then checks bounds/choices.
    """
    kind = field_kind(field_obj) if field_obj is not None else ""
    s = text.strip()
    if kind == "integer":
        try:
            return int(s)
        except ValueError:
            try:
                f = float(s)
            except ValueError:
                raise FieldValueError(f"{text!r} is not an integer") from None
            if f.is_integer():
                return int(f)
            raise FieldValueError(f"{text!r} is not an integer") from None
    if kind == "float":
        try:
            return float(s)
        except ValueError:
            raise FieldValueError(f"{text!r} is not a number") from None
    if kind == "boolean":
        low = s.lower()
        if low in ("true", "yes", "on", "1"):
            return True
        if low in ("false", "no", "off", "0"):
            return False
        raise FieldValueError(f"{text!r} is not a boolean (true/false)")
    if kind == "color":
        return parse_color(s)
    if kind in ("string", "enum", "scheduler", "image", "board", "latents", "conditioning"):
        if kind == "board" and s.startswith("{"):
            return _json_or_text(s)
        return text
    return _json_or_text(s) if kind else _guess(s)


def parse_color(s: str) -> dict[str, int]:
    """``#rrggbb[aa]``, ``r,g,b[,a]`` or a colour name -> ``{"r","g","b","a"}``."""
    from PIL import ImageColor

    if s.startswith("{"):
        val = _json_or_text(s)
        if isinstance(val, dict):
            return {k: int(v) for k, v in val.items()}
    parts = [p.strip() for p in s.split(",")] if "," in s else []
    if len(parts) in (3, 4) and all(p.isdigit() for p in parts):
        return dict(zip("rgba", [int(p) for p in parts], strict=False)) | (
            {} if len(parts) == 4 else {"a": 255}
        )
    try:
        rgb = ImageColor.getrgb(s)
    except ValueError:
        raise FieldValueError(
            f"{s!r} is not a colour (use #rrggbb, r,g,b or a name such as red)"
        ) from None
    return dict(zip("rgba", [*rgb, 255][:4], strict=False))


def _json_or_text(s: str) -> Any:
    if s[:1] in ("{", "[", '"'):
        try:
            return json.loads(s)
        except json.JSONDecodeError:
            return s
    return s


def _guess(s: str) -> Any:
    low = s.lower()
    if low in ("true", "false"):
        return low == "true"
    try:
        return int(s)
    except ValueError:
        pass
    try:
        f = float(s)
        if math.isfinite(f):
            return f
    except ValueError:
        pass
    return _json_or_text(s)


def split_assignment(text: str, option: str) -> tuple[str, str]:
    """``KEY=VALUE`` -> (KEY, VALUE); anything else is a usage error naming the option."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise CliError(f"{option} expects KEY=VALUE, got {text!r}")
    return key.strip(), value


def value_range(text: str, kind: str) -> list[Any] | None:
    """``START:STOP[:STEP]`` -> the values, STOP included when the steps land on it.

    Returns None when ``text`` is not a range. Raises :class:`CliError` for a bad one.
    """
    m = RANGE_RE.match(text)
    if not m:
        return None
    a, b, c = m.group(1), m.group(2), m.group(3)
    integral = kind != "float" and all(re.fullmatch(r"[-+]?\d+", x) for x in (a, b, c or "1"))
    start, stop = float(a), float(b)
    step = float(c) if c is not None else (1.0 if stop >= start else -1.0)
    if step == 0:
        raise CliError(f"bad range {text!r}: the step cannot be 0")
    if (stop - start) * step < 0:
        raise CliError(
            f"bad range {text!r}: a step of {c} never goes from {a} to {b} (flip its sign)"
        )
    count = math.floor((stop - start) / step + 1e-9) + 1
    if count > 1_000_000:
        raise CliError(f"bad range {text!r}: {count} values is too many")
    if integral:
        return [int(start + i * step) for i in range(count)]
    digits = max(_decimals(a), _decimals(b), _decimals(c or "1"))
    return [round(start + i * step, digits + 6) for i in range(count)]


def _decimals(s: str) -> int:
    return len(s.split(".")[1]) if "." in s and "e" not in s.lower() else 0
