"""Every error this library raises, in one tree.

Catch :class:`InvokeAIError` to catch them all; catch a narrower class to act on one
kind of failure. Errors a user can fix say what was wrong and what to do next; errors that
come from the server carry the server's own detail.

::

    InvokeAIError
    ├── TransportError                    no usable HTTP answer
    │   ├── InvokeAIConnectionError       server unreachable (also a builtin ConnectionError)
    │   └── InvokeAITimeoutError          no answer in time (also a builtin TimeoutError)
    ├── APIError                          the server answered with an error status
    │   ├── BadRequestError               400
    │   ├── AuthenticationError           401 / 403 (missing or wrong api_key)
    │   ├── NotFoundError                 404
    │   ├── ConflictError                 409
    │   ├── RequestValidationError        422, ``.errors`` holds the server's details
    │   └── ServerError                   5xx
    ├── ServerStartError                  LocalServer could not start (log tail included)
    ├── WorkflowError                     anything about a workflow and its inputs
    │   ├── WorkflowDefinitionError       malformed export; ``.json_path`` says where
    │   │   ├── UnsupportedWorkflowVersionError   schema 1.x / 2.x: re-export it
    │   │   ├── WorkflowReferenceError    an edge / form element points at nothing
    │   │   └── FormCycleError            the form tree loops back on itself
    │   ├── UnknownNodeTypeError          the server has no such node type
    │   ├── InputNotFoundError            no input with that index / label / node.field
    │   ├── AmbiguousInputError           a label matches several inputs (lists them)
    │   ├── FieldValueError               a value of the wrong type or out of bounds
    │   ├── InputValidationError          inputs failed validation before submit
    │   └── NoSubmissionError             wait/cancel before anything was submitted
    ├── JobError                          a queue item did not complete
    │   ├── JobFailedError                ``error_type``, ``error_message``, ``error_traceback``
    │   ├── JobCanceledError              the item was canceled
    │   └── JobTimeoutError               waited too long (also InvokeAITimeoutError)
    ├── EnqueueError                      the server took fewer items than requested
    ├── BoardError                        board lookups (e.g. no board with that name)
    ├── ModelError                        model repository
    │   ├── ModelNotFoundError
    │   ├── ModelInstallError
    │   └── ModelSyncError                ``.unresolved`` lists (index, label, reason)
    ├── SweepError                        a sweep cannot be expanded (bad axis, zip lengths)
    └── RunError                          a batch run / its ledger on disk

Example::

    from invokeai_py_client import InvokeAIClient
    from invokeai_py_client.exceptions import InvokeAIError, JobFailedError

    try:
        item = wf.wait_for_completion_sync(timeout=60)
    except JobFailedError as exc:
        print(exc.error_type, exc.error_message)
    except InvokeAIError as exc:
        print("something else went wrong:", exc)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "APIError",
    "AmbiguousInputError",
    "AuthenticationError",
    "BadRequestError",
    "BoardError",
    "ConflictError",
    "EnqueueError",
    "FieldValueError",
    "FormCycleError",
    "InputNotFoundError",
    "InputValidationError",
    "InvokeAIConnectionError",
    "InvokeAIError",
    "InvokeAITimeoutError",
    "JobCanceledError",
    "JobError",
    "JobFailedError",
    "JobTimeoutError",
    "ModelError",
    "ModelInstallError",
    "ModelNotFoundError",
    "ModelSyncError",
    "NoSubmissionError",
    "NotFoundError",
    "RequestValidationError",
    "RunError",
    "ServerError",
    "ServerStartError",
    "SweepError",
    "TransportError",
    "UnknownNodeTypeError",
    "UnsupportedWorkflowVersionError",
    "WorkflowDefinitionError",
    "WorkflowError",
    "WorkflowReferenceError",
]


class InvokeAIError(Exception):
    """Root of every error raised by ``invokeai_py_client``."""


# --------------------------------------------------------------------------- transport


class TransportError(InvokeAIError):
    """The request got no usable HTTP answer.

    ``method`` and ``url`` name the request (never its headers, so no api key).
    """

    def __init__(self, message: str, *, method: str | None = None, url: str | None = None):
        super().__init__(message)
        self.method = method
        self.url = url


class InvokeAIConnectionError(TransportError, ConnectionError):
    """The server could not be reached (refused, DNS, reset). Is it running at that URL?"""


class InvokeAITimeoutError(TransportError, TimeoutError):
    """The server did not answer within the timeout."""


# --------------------------------------------------------------------------- HTTP status


class APIError(InvokeAIError):
    """The server answered with an error status.

    Attributes:
        status_code: the HTTP status.
        detail: the server's ``detail`` (a string, or a list of validation errors).
        method, url: the request that failed.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        detail: Any = None,
        method: str | None = None,
        url: str | None = None,
    ):
        super().__init__(message)
        self.status_code = status_code
        self.detail = detail
        self.method = method
        self.url = url


class BadRequestError(APIError):
    """HTTP 400."""


class AuthenticationError(APIError):
    """HTTP 401/403: the server wants a valid ``api_key`` (multi-user mode)."""


class NotFoundError(APIError):
    """HTTP 404: no such resource on the server."""


class ConflictError(APIError):
    """HTTP 409."""


class RequestValidationError(APIError):
    """HTTP 422: the server rejected the request body or parameters.

    ``errors`` is the server's list of ``{"loc": [...], "msg": ..., "type": ...}``.
    """

    @property
    def errors(self) -> list[dict[str, Any]]:
        if isinstance(self.detail, list):
            return [e for e in self.detail if isinstance(e, dict)]
        return []


class ServerError(APIError):
    """HTTP 5xx."""


class ServerStartError(InvokeAIError):
    """A :class:`~invokeai_py_client.local_server.LocalServer` did not come up."""


# --------------------------------------------------------------------------- workflows


class WorkflowError(InvokeAIError):
    """Anything wrong with a workflow or its inputs."""


class WorkflowDefinitionError(WorkflowError, ValueError):
    """The workflow JSON is malformed. ``json_path`` points at the offending part."""

    def __init__(self, message: str, *, json_path: str | None = None):
        super().__init__(f"{message} (at {json_path})" if json_path else message)
        self.json_path = json_path


class UnsupportedWorkflowVersionError(WorkflowDefinitionError):
    """The workflow uses a pre-form schema (1.x / 2.x)."""


class WorkflowReferenceError(WorkflowDefinitionError):
    """An edge or form element points at a node, input or element that does not exist."""


class FormCycleError(WorkflowDefinitionError):
    """The form's container tree contains a cycle."""


class UnknownNodeTypeError(WorkflowError):
    """A node's type is not known to the server (or the offline schema snapshot)."""

    def __init__(self, message: str, *, node_id: str | None = None, node_type: str | None = None):
        super().__init__(message)
        self.node_id = node_id
        self.node_type = node_type


class InputNotFoundError(WorkflowError, LookupError):
    """No workflow input matches the given index, label or ``node_id.field``."""


class AmbiguousInputError(WorkflowError, LookupError):
    """A label matches several inputs; ``candidates`` lists ``(index, label, node_id, field)``."""

    def __init__(self, message: str, *, candidates: Sequence[tuple[int, str, str, str]] = ()):
        super().__init__(message)
        self.candidates = list(candidates)


class FieldValueError(WorkflowError, ValueError):
    """A value does not fit a field (wrong type, out of bounds, not one of the choices)."""


class InputValidationError(WorkflowError, ValueError):
    """One or more inputs are invalid; ``problems`` lists ``(index, label, message)``."""

    def __init__(self, message: str, *, problems: Sequence[tuple[int, str, str]] = ()):
        super().__init__(message)
        self.problems = list(problems)


class NoSubmissionError(WorkflowError):
    """A wait / cancel / output call was made on a handle that has submitted nothing."""


# --------------------------------------------------------------------------- jobs


class JobError(InvokeAIError):
    """A queue item did not complete. ``item`` is the final queue item (a dict) if known."""

    def __init__(
        self,
        message: str,
        *,
        item_id: int | None = None,
        batch_id: str | None = None,
        item: Mapping[str, Any] | None = None,
    ):
        super().__init__(message)
        self.item_id = item_id
        self.batch_id = batch_id
        self.item = dict(item) if item is not None else None


class JobFailedError(JobError):
    """The server failed the item; its ``error_type``/``error_message``/``error_traceback``."""

    def __init__(
        self,
        message: str,
        *,
        error_type: str | None = None,
        error_message: str | None = None,
        error_traceback: str | None = None,
        item_id: int | None = None,
        batch_id: str | None = None,
        item: Mapping[str, Any] | None = None,
    ):
        super().__init__(message, item_id=item_id, batch_id=batch_id, item=item)
        self.error_type = error_type
        self.error_message = error_message
        self.error_traceback = error_traceback


class JobCanceledError(JobError):
    """The item was canceled (by this client, another client, or the GUI)."""


class JobTimeoutError(JobError, InvokeAITimeoutError):
    """Waiting for an item took longer than ``timeout``; the item may still be running."""

    def __init__(
        self,
        message: str,
        *,
        item_id: int | None = None,
        batch_id: str | None = None,
        item: Mapping[str, Any] | None = None,
    ):
        JobError.__init__(self, message, item_id=item_id, batch_id=batch_id, item=item)
        self.method = None
        self.url = None


class EnqueueError(InvokeAIError):
    """The server accepted fewer items than requested (queue full) or refused the batch."""


# --------------------------------------------------------------------------- resources


class BoardError(InvokeAIError):
    """A board could not be found or used."""


class ModelError(InvokeAIError):
    """Model repository errors."""


class ModelNotFoundError(ModelError, LookupError):
    """No installed model matches."""


class ModelInstallError(ModelError):
    """A model install job failed; the server's error is in the message."""


class ModelSyncError(ModelError):
    """``sync_dnn_model`` could not resolve every model input (nothing was changed).

    ``unresolved`` lists ``(input_index, label, reason)``.
    """

    def __init__(self, message: str, *, unresolved: Sequence[tuple[int, str, str]] = ()):
        super().__init__(message)
        self.unresolved = list(unresolved)


class SweepError(InvokeAIError, ValueError):
    """A sweep cannot be expanded (unknown axis, zipped axes of unequal length, no values)."""


class RunError(InvokeAIError):
    """A batch run or its on-disk ledger cannot proceed."""
