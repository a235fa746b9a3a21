"""HTTP transport: one place for auth, error mapping and retries (sync and async shells).

The sans-I/O parts (which requests may be retried, the backoff schedule, turning a response
into an exception, and :func:`next_step`: what to do with the outcome of attempt N) are plain
functions shared by :class:`HttpTransport` and :class:`AsyncHttpTransport`; the shells only
do the I/O.

Retry policy: only requests that cannot create work twice are retried (GET, HEAD, OPTIONS,
PUT, DELETE, or a POST the caller marks ``retry=True`` because it only reads, such as
``items_by_ids``), on connection errors and on 429 / 502 / 503 / 504, honouring
``Retry-After``, with capped exponential backoff and full jitter. A POST that enqueues work is
never retried: it carries a client-chosen ``batch_id`` so the caller can ask the server what
happened instead.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from .exceptions import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    InvokeAIConnectionError,
    InvokeAITimeoutError,
    NotFoundError,
    RequestValidationError,
    ServerError,
    TransportError,
)

__all__ = [
    "AsyncHttpTransport",
    "BearerToken",
    "HttpTransport",
    "backoff_delay",
    "error_from_response",
    "is_retryable_method",
    "next_step",
]

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
RETRY_STATUSES = frozenset({429, 502, 503, 504})
MAX_BACKOFF = 8.0
BASE_BACKOFF = 0.25


def is_retryable_method(method: str, retry: bool | None) -> bool:
    """Whether a request may be sent again after a failure (``retry`` overrides)."""
    if retry is not None:
        return retry
    return method.upper() in IDEMPOTENT_METHODS


def backoff_delay(attempt: int, retry_after: str | None = None) -> float:
    """Seconds to wait before retry number ``attempt`` (1-based).

    ``Retry-After`` (seconds or an HTTP date) wins when present, capped at 60 s; otherwise
    capped exponential backoff with full jitter.
    """
    if retry_after:
        try:
            return min(max(float(retry_after), 0.0), 60.0)
        except ValueError:
            try:
                when = parsedate_to_datetime(retry_after).timestamp()
                return min(max(when - time.time(), 0.0), 60.0)
            except (TypeError, ValueError, IndexError):
                pass
    cap = min(MAX_BACKOFF, BASE_BACKOFF * (2 ** (attempt - 1)))
    return random.uniform(0.0, cap)


def _detail_text(detail: Any) -> str:
    if isinstance(detail, list):
        parts = []
        for err in detail:
            if isinstance(err, dict):
                loc = ".".join(str(p) for p in err.get("loc", []))
                parts.append(f"{loc}: {err.get('msg', err)}" if loc else str(err.get("msg", err)))
            else:
                parts.append(str(err))
        text = "; ".join(parts)
    else:
        text = str(detail)
    return text if len(text) <= 2000 else text[:2000] + "..."


def error_from_response(response: httpx.Response) -> APIError:
    """Turn an error response into the matching :class:`APIError` subclass.

    The message holds the method, the path and the server's ``detail``; never headers.
    """
    status = response.status_code
    try:
        body = response.json()
        detail = body.get("detail", body) if isinstance(body, dict) else body
    except ValueError:
        detail = response.text.strip() or response.reason_phrase
    request = response.request
    method, url = request.method, str(request.url)
    cls: type[APIError]
    if status == 400:
        cls = BadRequestError
    elif status in (401, 403):
        cls = AuthenticationError
    elif status == 404:
        cls = NotFoundError
    elif status == 409:
        cls = ConflictError
    elif status == 422:
        cls = RequestValidationError
    elif status >= 500:
        cls = ServerError
    else:
        cls = APIError
    message = f"{method} {request.url.path} failed with HTTP {status}: {_detail_text(detail)}"
    if cls is AuthenticationError:
        message += _auth_hint(status, "authorization" in request.headers)
    return cls(message, status_code=status, detail=detail, method=method, url=url)


def _auth_hint(status: int, key_sent: bool) -> str:
    """What to do about a 401/403 (whether a key was sent, never the key itself)."""
    if status == 403 and key_sent:
        return (
            " (the api_key was accepted, but its user may not do this: "
            "an administrator's token is needed)"
        )
    if key_sent:
        return (
            " (the server refused the api_key: it is wrong, expired or revoked; "
            "log in again and pass the new token as api_key= / ivk --api-key)"
        )
    return (
        " (this is a multi-user server: pass a token as InvokeAIClient(..., api_key=...), "
        "or to ivk as --api-key / INVOKEAI_API_KEY)"
    )


def _transport_error(exc: httpx.TransportError, method: str, url: str) -> TransportError:
    if isinstance(exc, httpx.TimeoutException):
        return InvokeAITimeoutError(
            f"{method} {url} timed out ({type(exc).__name__}); the server may be busy, "
            "raise `timeout` or try again",
            method=method,
            url=url,
        )
    return InvokeAIConnectionError(
        f"cannot reach the InvokeAI server for {method} {url}: {exc or type(exc).__name__}. "
        "Is it running, and is the URL right?",
        method=method,
        url=url,
    )


def next_step(
    outcome: httpx.Response | httpx.TransportError,
    attempt: int,
    *,
    retryable: bool,
    max_retries: int,
    method: str,
    url: str,
) -> httpx.Response | float:
    """Sans-I/O retry decision: what to do with the outcome of attempt number ``attempt``.

    Returns the response when it is a success, or the seconds to wait before sending the
    request again; raises the error from our tree when the outcome is final.

    Example::

        step = next_step(response, 1, retryable=True, max_retries=3, method="GET", url=url)
        if isinstance(step, httpx.Response):
            return step
        time.sleep(step)  # then send again
    """
    may_retry = retryable and attempt <= max_retries
    if isinstance(outcome, httpx.TransportError):
        if may_retry:
            return backoff_delay(attempt)
        raise _transport_error(outcome, method, url) from outcome
    if outcome.status_code < 400:
        return outcome
    if may_retry and outcome.status_code in RETRY_STATUSES:
        return backoff_delay(attempt, outcome.headers.get("Retry-After"))
    raise error_from_response(outcome)


def _send_kwargs(
    params: Mapping[str, Any] | None,
    json: Any,
    content: bytes | None,
    files: Any,
    data: Mapping[str, Any] | None,
    timeout: float | None,
) -> dict[str, Any]:
    return {
        "params": params,
        "json": json,
        "content": content,
        "files": files,
        "data": data,
        "timeout": timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
    }


class BearerToken:
    """A client's api key, shared by its HTTP transports and its event socket.

    InvokeAI's multi-user sessions slide: every successful POST/PUT/PATCH/DELETE sent with a
    token answers with ``X-Refreshed-Token``, a new token with a fresh expiry. Adopting it
    (:meth:`adopt`) keeps a long batch run, which keeps POSTing (enqueues, zip requests),
    logged in past the first token's expiry. The value never appears in ``repr``.

    Example::

        token = BearerToken("eyJ...")
        token.headers()  # {"Authorization": "Bearer eyJ..."}
    """

    __slots__ = ("value",)

    def __init__(self, value: str | None) -> None:
        self.value = value or None

    def headers(self) -> dict[str, str]:
        """The ``Authorization`` header to send (empty without a token)."""
        return {"Authorization": f"Bearer {self.value}"} if self.value else {}

    def adopt(self, response: httpx.Response) -> None:
        """Take the server's renewed token from a successful response, if it sent one."""
        renewed = response.headers.get("x-refreshed-token")
        if renewed and self.value:  # never start sending a token the user did not give
            self.value = renewed

    def __repr__(self) -> str:
        return f"BearerToken({'***' if self.value else None})"


def _headers(user_agent: str) -> dict[str, str]:
    return {"User-Agent": user_agent, "Accept": "application/json"}


class _TransportBase:
    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 30.0,
        api_key: str | None = None,
        token: BearerToken | None = None,
        verify_ssl: bool = True,
        max_retries: int = 3,
        user_agent: str = "invokeai-py-client",
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.max_retries = max(0, int(max_retries))
        self._verify = verify_ssl
        self._headers = _headers(user_agent)
        #: the token sent with every request (shared with the client's other transports)
        self.token = token if token is not None else BearerToken(api_key)

    def _url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return self.base_url + (path if path.startswith("/") else "/" + path)

    def _pool_options(self) -> dict[str, Any]:
        return {
            "headers": self._headers,
            "timeout": self.timeout,
            "verify": self._verify,
            "trust_env": False,
            "limits": httpx.Limits(max_connections=32, max_keepalive_connections=16),
        }

    def _next_step(
        self,
        outcome: httpx.Response | httpx.TransportError,
        attempt: int,
        retryable: bool,
        method: str,
        url: str,
    ) -> httpx.Response | float:
        step = next_step(
            outcome,
            attempt,
            retryable=retryable,
            max_retries=self.max_retries,
            method=method,
            url=url,
        )
        if isinstance(step, httpx.Response):
            self.token.adopt(step)
        return step

    def __repr__(self) -> str:  # never shows the api key
        return f"{type(self).__name__}({self.base_url!r})"


class HttpTransport(_TransportBase):
    """Blocking transport over one pooled :class:`httpx.Client`.

    Paths are relative to the server root, e.g. ``"/api/v1/app/version"``.
    """

    def __init__(self, base_url: str, **kwargs: Any) -> None:
        super().__init__(base_url, **kwargs)
        self._client = httpx.Client(**self._pool_options())

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        content: bytes | None = None,
        files: Any = None,
        data: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        retry: bool | None = None,
    ) -> httpx.Response:
        """Send a request; return the response or raise an error from our tree."""
        url, method = self._url(path), method.upper()
        retryable = is_retryable_method(method, retry)
        send = _send_kwargs(params, json, content, files, data, timeout)
        attempt = 0
        while True:
            attempt += 1
            outcome: httpx.Response | httpx.TransportError
            try:
                outcome = self._client.request(method, url, headers=self.token.headers(), **send)
            except httpx.TransportError as exc:
                outcome = exc
            step = self._next_step(outcome, attempt, retryable, method, url)
            if isinstance(step, httpx.Response):
                return step
            time.sleep(step)

    def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """GET and decode JSON."""
        return self.request("GET", path, params=params).json()

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()


class AsyncHttpTransport(_TransportBase):
    """Asyncio transport over one :class:`httpx.AsyncClient` (bound to one event loop)."""

    def __init__(self, base_url: str, **kwargs: Any) -> None:
        super().__init__(base_url, **kwargs)
        self._client = httpx.AsyncClient(**self._pool_options())

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        content: bytes | None = None,
        files: Any = None,
        data: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        retry: bool | None = None,
    ) -> httpx.Response:
        """Send a request; return the response or raise an error from our tree."""
        url, method = self._url(path), method.upper()
        retryable = is_retryable_method(method, retry)
        send = _send_kwargs(params, json, content, files, data, timeout)
        attempt = 0
        while True:
            attempt += 1
            outcome: httpx.Response | httpx.TransportError
            try:
                outcome = await self._client.request(
                    method, url, headers=self.token.headers(), **send
                )
            except httpx.TransportError as exc:
                outcome = exc
            step = self._next_step(outcome, attempt, retryable, method, url)
            if isinstance(step, httpx.Response):
                return step
            await asyncio.sleep(step)

    async def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """GET and decode JSON."""
        return (await self.request("GET", path, params=params)).json()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()
