"""Shared data types the seed docs name: ``JobStatus``, ``ImageCategory``, ``BaseModelEnum``,
``IvkJob``, plus the image and model records (``IvkImage``, ``IvkDnnModel``).

The enum values are the server's own strings (InvokeAI 6.14.2): a queue item is
``pending``, ``in_progress``, ``waiting``, ``completed``, ``failed`` or ``canceled`` (one
``l``); an image category is ``general``, ``mask``, ``control``, ``user`` or ``other``. Every
enum is a ``str`` enum, so ``item["status"] == JobStatus.COMPLETED`` compares with the plain
strings the rest of the library returns.

Example::

    from invokeai_py_client.models import IvkJob, JobStatus

    wf.submit_sync()
    job = IvkJob.from_api(wf.wait_for_completion_sync(timeout=120))
    assert job.status is JobStatus.COMPLETED and job.is_successful()
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

from .dnn_model.models import BaseDnnModelType, IvkDnnModel
from .exceptions import InvokeAIError
from .images import IvkImage

__all__ = [
    "BaseModelEnum",
    "ImageCategory",
    "IvkDnnModel",
    "IvkImage",
    "IvkJob",
    "JobStatus",
]


class JobStatus(StrEnum):
    """A queue item's status, as the server spells it.

    ``RUNNING`` and ``CANCELLED`` are aliases of ``IN_PROGRESS`` and ``CANCELED``: the server
    never sends ``"running"`` or ``"cancelled"``.
    """

    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    WAITING = "waiting"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"
    RUNNING = "in_progress"
    CANCELLED = "canceled"


#: the statuses after which an item never changes again
_FINAL = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELED})


class ImageCategory(StrEnum):
    """An image record's ``image_category`` (generated images are ``general``)."""

    GENERAL = "general"
    MASK = "mask"
    CONTROL = "control"
    USER = "user"
    OTHER = "other"


#: The model base architecture enum (``sd-1``, ``sdxl``, ``flux``...): the same class as
#: :class:`~invokeai_py_client.dnn_model.BaseDnnModelType`.
BaseModelEnum = BaseDnnModelType


class IvkJob(BaseModel):
    """One queue item (a job), read from a server queue item dict.

    Extra server fields (``session``, ``field_values``, ``workflow``...) are kept.

    Example::

        job = IvkJob.from_api(client.queue.get_item(item_id))
        print(job.item_id, job.status.value, job.is_complete())
    """

    model_config = ConfigDict(extra="allow")

    item_id: int
    status: JobStatus = JobStatus.PENDING
    batch_id: str | None = None
    session_id: str | None = None
    queue_id: str = "default"
    priority: int = 0
    error_type: str | None = None
    error_message: str | None = None
    error_traceback: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    started_at: str | None = None
    completed_at: str | None = None

    @classmethod
    def from_api(cls, data: Any) -> IvkJob:
        """Build from a queue item dict (``wait_for_completion_sync()``'s return value)."""
        if not isinstance(data, dict) or "item_id" not in data:
            raise InvokeAIError(f"not a queue item: {data!r:.200}")
        clean = {k: (str(v) if k.endswith("_at") and v is not None else v) for k, v in data.items()}
        return cls.model_validate(clean)

    def is_complete(self) -> bool:
        """True once the job finished: completed, failed or canceled."""
        return self.status in _FINAL

    def is_successful(self) -> bool:
        """True when the job completed without error."""
        return self.status is JobStatus.COMPLETED
