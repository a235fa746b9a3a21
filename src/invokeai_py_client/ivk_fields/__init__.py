"""Typed workflow fields: ``IvkField[T]`` and every ``Ivk*Field``.

Every field is a pydantic model, default-constructable, validated on construction and on
assignment (bounds, choices); a bad value raises
:class:`~invokeai_py_client.exceptions.FieldValueError`. ``to_api_value()`` gives what is
sent in the graph (``None`` = left out); ``from_api_value()`` reads a saved value.

Example::

    from invokeai_py_client.ivk_fields import IvkIntegerField, IvkSchedulerField, SchedulerName

    steps = IvkIntegerField(value=30, exclusive_minimum=0)
    sched = IvkSchedulerField(value=SchedulerName.EULER_A)
"""

from invokeai_py_client.ivk_fields.base import IvkField, IvkNumericField, IvkValueField
from invokeai_py_client.ivk_fields.complex import (
    IvkBoundingBoxField,
    IvkCollectionField,
    IvkColorField,
    IvkRawField,
)
from invokeai_py_client.ivk_fields.enums import IvkEnumField, IvkSchedulerField, SchedulerName
from invokeai_py_client.ivk_fields.models import (
    IvkCLIPEmbedField,
    IvkCLIPField,
    IvkFluxModelField,
    IvkLoRAField,
    IvkModelIdentifierField,
    IvkSDXLModelField,
    IvkT5EncoderField,
    IvkTransformerField,
    IvkUNetField,
    IvkVAEModelField,
)
from invokeai_py_client.ivk_fields.primitives import (
    IvkBooleanField,
    IvkFloatField,
    IvkIntegerField,
    IvkStringField,
)
from invokeai_py_client.ivk_fields.resources import (
    BOARD_AUTO,
    BOARD_NONE,
    IvkBoardField,
    IvkConditioningField,
    IvkImageField,
    IvkLatentsField,
    IvkTensorField,
)

__all__ = [
    "BOARD_AUTO",
    "BOARD_NONE",
    "IvkBoardField",
    "IvkBooleanField",
    "IvkBoundingBoxField",
    "IvkCLIPEmbedField",
    "IvkCLIPField",
    "IvkCollectionField",
    "IvkColorField",
    "IvkConditioningField",
    "IvkEnumField",
    "IvkField",
    "IvkFloatField",
    "IvkFluxModelField",
    "IvkImageField",
    "IvkIntegerField",
    "IvkLatentsField",
    "IvkLoRAField",
    "IvkModelIdentifierField",
    "IvkNumericField",
    "IvkRawField",
    "IvkSDXLModelField",
    "IvkSchedulerField",
    "IvkStringField",
    "IvkT5EncoderField",
    "IvkTensorField",
    "IvkTransformerField",
    "IvkUNetField",
    "IvkVAEModelField",
    "IvkValueField",
    "SchedulerName",
]
