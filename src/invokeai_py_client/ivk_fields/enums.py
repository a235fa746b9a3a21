"""Enum fields: a choice among strings, and the scheduler choice.

``SchedulerName`` lists the schedulers of InvokeAI 6.14.2 (``SCHEDULER_NAME_VALUES``). A
connected client's schema may offer others: an :class:`IvkSchedulerField` built from the
server's schema takes the server's choices.

Example::

    from invokeai_py_client.ivk_fields import IvkSchedulerField, SchedulerName

    s = IvkSchedulerField(value="euler")
    s.value = SchedulerName.DPMPP_3M_K          # stored as "dpmpp_3m_k"
    s.value = "not-a-scheduler"                 # FieldValueError listing the choices
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, ClassVar, Self

from pydantic import Field, field_validator, model_validator

from invokeai_py_client.ivk_fields.base import IvkValueField

__all__ = ["IvkEnumField", "IvkSchedulerField", "SchedulerName"]


class SchedulerName(StrEnum):
    """The scheduler names InvokeAI 6.14.2 accepts (``denoise_latents.scheduler``)."""

    DDIM = "ddim"
    DDPM = "ddpm"
    DEIS = "deis"
    DEIS_K = "deis_k"
    LMS = "lms"
    LMS_K = "lms_k"
    PNDM = "pndm"
    HEUN = "heun"
    HEUN_K = "heun_k"
    EULER = "euler"
    EULER_K = "euler_k"
    EULER_A = "euler_a"
    KDPM_2 = "kdpm_2"
    KDPM_2_K = "kdpm_2_k"
    KDPM_2_A = "kdpm_2_a"
    KDPM_2_A_K = "kdpm_2_a_k"
    DPMPP_2S = "dpmpp_2s"
    DPMPP_2S_K = "dpmpp_2s_k"
    DPMPP_2M = "dpmpp_2m"
    DPMPP_2M_K = "dpmpp_2m_k"
    DPMPP_2M_SDE = "dpmpp_2m_sde"
    DPMPP_2M_SDE_K = "dpmpp_2m_sde_k"
    DPMPP_3M = "dpmpp_3m"
    DPMPP_3M_K = "dpmpp_3m_k"
    DPMPP_SDE = "dpmpp_sde"
    DPMPP_SDE_K = "dpmpp_sde_k"
    ER_SDE = "er_sde"
    UNIPC = "unipc"
    UNIPC_K = "unipc_k"
    LCM = "lcm"
    TCD = "tcd"


class IvkEnumField(IvkValueField[str]):
    """One of a fixed list of strings (``choices``; empty = anything goes).

    Example::

        f = IvkEnumField(value="gaussian", choices=["gaussian", "box"])
        f.value = "box"
    """

    kind: ClassVar[str] = "enum"

    choices: list[str] = Field(default_factory=list)

    @field_validator("value", mode="before")
    @classmethod
    def _enum_to_str(cls, v: Any) -> Any:
        if isinstance(v, StrEnum):
            return v.value
        return v

    @model_validator(mode="after")
    def _check_choice(self) -> Self:
        if self.value is not None and self.choices and self.value not in self.choices:
            raise ValueError(f"{self.value!r} is not one of {self.choices}")
        return self


class IvkSchedulerField(IvkEnumField):
    """The scheduler of a denoise node; choices default to :class:`SchedulerName`.

    Example::

        IvkSchedulerField().choices[:3]   # ['ddim', 'ddpm', 'deis']
    """

    kind: ClassVar[str] = "scheduler"

    choices: list[str] = Field(default_factory=lambda: [s.value for s in SchedulerName])
