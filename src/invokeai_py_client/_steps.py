"""Sans-I/O operations: written once as steps, run blocking or under asyncio.

A repository operation that talks to the server (look up a board, upload an image, install a
model and wait for it) is a generator of *steps*: it yields a :class:`Call` (one HTTP request)
or a :class:`Pause`, and gets back the :class:`httpx.Response` (``None`` after a pause). An
error from the transport (our :class:`~invokeai_py_client.exceptions.APIError` tree) is
raised inside the generator at its ``yield``, so the operation turns it into its own error
with an ordinary ``try``/``except`` around ``yield from``. Request building, response parsing
and error mapping therefore live in one place; :func:`run_sync` (``client.http``,
``time.sleep``) and :func:`run_async` (``client.async_http()``, ``asyncio.sleep``) only do
the I/O, so every blocking method and its ``a``-prefixed asyncio twin share one body.

Example::

    def _get_image(name: str) -> Steps[IvkImage]:
        data = yield from get_json(f"/api/v1/images/i/{name}")
        return IvkImage.from_api(data)

    image = run_sync(client.http, _get_image("abc.png"))
    image = await run_async(client.async_http(), _get_image("abc.png"))
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Generator, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    import httpx

    from ._http import AsyncHttpTransport, HttpTransport
    from .client import InvokeAIClient

__all__ = [
    "Call",
    "Pause",
    "StepRunner",
    "Steps",
    "get_json",
    "pause",
    "request",
    "run_async",
    "run_sync",
]

T = TypeVar("T")


@dataclass(frozen=True)
class Call:
    """One HTTP request, described: what :meth:`HttpTransport.request` is called with."""

    method: str
    path: str
    params: Mapping[str, Any] | None = None
    json: Any = None
    files: Any = None
    retry: bool | None = None

    def options(self) -> dict[str, Any]:
        """The keyword arguments of ``request`` (beside method and path)."""
        return {"params": self.params, "json": self.json, "files": self.files, "retry": self.retry}


@dataclass(frozen=True)
class Pause:
    """Wait this many seconds before the next step (polling)."""

    seconds: float


#: an operation: yields calls and pauses, is sent their answers, returns ``T``
Steps = Generator[Call | Pause, Any, T]


def request(
    method: str,
    path: str,
    *,
    params: Mapping[str, Any] | None = None,
    json: Any = None,
    files: Any = None,
    retry: bool | None = None,
) -> Steps[httpx.Response]:
    """Step: send one request, return its (successful) response."""
    response: httpx.Response = yield Call(method, path, params, json, files, retry)
    return response


def get_json(path: str, params: Mapping[str, Any] | None = None) -> Steps[Any]:
    """Step: GET ``path`` and return the decoded JSON body."""
    response = yield from request("GET", path, params=params)
    return response.json()


def pause(seconds: float) -> Steps[None]:
    """Step: wait ``seconds`` (``time.sleep`` or ``asyncio.sleep``, as the driver does)."""
    yield Pause(seconds)


class _Drive(Generic[T]):
    """The driver-independent half of running an operation: feed it answers and errors."""

    def __init__(self, steps: Steps[T]) -> None:
        self._steps = steps
        self.answer: Any = None
        self.error: Exception | None = None
        self.result: T

    def next(self) -> Call | Pause | None:
        """The next step, or ``None`` once the operation returned (see :attr:`result`)."""
        error, self.error = self.error, None
        try:
            step = self._steps.throw(error) if error is not None else self._steps.send(self.answer)
        except StopIteration as stop:
            self.result = stop.value
            return None
        self.answer = None
        return step

    @contextlib.contextmanager
    def answering(self) -> Iterator[None]:
        """Around a step's I/O: an error is kept, to be raised in the operation at its yield."""
        try:
            yield
        except Exception as exc:
            self.error = exc


def run_sync(http: HttpTransport, steps: Steps[T]) -> T:
    """Run an operation to its end with the blocking transport; return its result."""
    drive = _Drive(steps)
    while (step := drive.next()) is not None:
        with drive.answering():
            if isinstance(step, Pause):
                time.sleep(step.seconds)
            else:
                drive.answer = http.request(step.method, step.path, **step.options())
    return drive.result


async def run_async(http: AsyncHttpTransport, steps: Steps[T]) -> T:
    """:func:`run_sync` under asyncio: the same operation with the async transport."""
    drive = _Drive(steps)
    while (step := drive.next()) is not None:
        with drive.answering():
            if isinstance(step, Pause):
                await asyncio.sleep(step.seconds)
            else:
                drive.answer = await http.request(step.method, step.path, **step.options())
    return drive.result


class StepRunner:
    """Mixin of the repositories: run an operation on ``self._client``, blocking or async."""

    _client: InvokeAIClient

    def _run(self, steps: Steps[T]) -> T:
        return run_sync(self._client.http, steps)

    async def _arun(self, steps: Steps[T]) -> T:
        return await run_async(self._client.async_http(), steps)
