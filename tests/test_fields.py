"""Typed fields: default-constructable, validated on construction and assignment, API values."""

from __future__ import annotations

from typing import Any

import pytest

from invokeai_py_client.exceptions import FieldValueError, WorkflowError
from invokeai_py_client.ivk_fields import (
    IvkBoardField,
    IvkBooleanField,
    IvkBoundingBoxField,
    IvkCLIPEmbedField,
    IvkCLIPField,
    IvkCollectionField,
    IvkColorField,
    IvkConditioningField,
    IvkEnumField,
    IvkField,
    IvkFloatField,
    IvkFluxModelField,
    IvkImageField,
    IvkIntegerField,
    IvkLatentsField,
    IvkLoRAField,
    IvkModelIdentifierField,
    IvkRawField,
    IvkSchedulerField,
    IvkSDXLModelField,
    IvkStringField,
    IvkT5EncoderField,
    IvkTensorField,
    IvkTransformerField,
    IvkUNetField,
    IvkVAEModelField,
    SchedulerName,
)
from invokeai_py_client.workflow.schema import NodeSchemaIndex

ALL_FIELDS: list[type[IvkField[Any]]] = [
    IvkStringField,
    IvkIntegerField,
    IvkFloatField,
    IvkBooleanField,
    IvkImageField,
    IvkBoardField,
    IvkModelIdentifierField,
    IvkEnumField,
    IvkSchedulerField,
    IvkColorField,
    IvkBoundingBoxField,
    IvkCollectionField,
    IvkLatentsField,
    IvkTensorField,
    IvkConditioningField,
    IvkUNetField,
    IvkCLIPField,
    IvkTransformerField,
    IvkLoRAField,
    IvkRawField,
]

MODEL = {"key": "k1", "hash": "blake3:abc", "name": "juggernaut", "base": "sdxl", "type": "main"}


@pytest.mark.parametrize("cls", ALL_FIELDS, ids=lambda c: c.__name__)
def test_every_field_is_default_constructable(cls: type[IvkField[Any]]) -> None:
    field = cls()
    assert isinstance(field, IvkField)
    field.validate_field()
    # an unset resource/primitive sends nothing; color/bbox always have a value
    if cls not in (IvkColorField, IvkBoundingBoxField):
        assert field.to_api_value() is None
        assert not field.is_set()


def test_field_value_error_is_a_value_error_and_a_workflow_error() -> None:
    with pytest.raises(FieldValueError) as info:
        IvkIntegerField(value="not a number")
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, WorkflowError)
    assert "IvkIntegerField" in str(info.value)


def test_integer_bounds_on_construction_and_assignment() -> None:
    with pytest.raises(FieldValueError, match="above the maximum 10"):
        IvkIntegerField(value=11, maximum=10)
    f = IvkIntegerField(value=5, minimum=1, maximum=10)
    with pytest.raises(FieldValueError, match="below the minimum 1"):
        f.value = 0
    assert f.value == 5  # a failed assignment leaves the field unchanged
    f.value = 10
    assert f.to_api_value() == 10


def test_exclusive_bounds_and_multiple_of() -> None:
    f = IvkIntegerField(value=1, exclusive_minimum=0)
    with pytest.raises(FieldValueError, match="greater than 0"):
        f.value = 0
    g = IvkIntegerField(value=64, multiple_of=8)
    with pytest.raises(FieldValueError, match="not a multiple of 8"):
        g.value = 65
    h = IvkFloatField(value=0.5, exclusive_maximum=1)
    with pytest.raises(FieldValueError, match="less than 1"):
        h.value = 1.0


def test_integer_rejects_bool_and_fractions_but_takes_integral_floats() -> None:
    f = IvkIntegerField()
    f.value = 7.0
    assert f.value == 7 and isinstance(f.value, int)
    with pytest.raises(FieldValueError, match="boolean"):
        f.value = True
    with pytest.raises(FieldValueError):
        f.value = 7.5


def test_float_keeps_integers_as_floats() -> None:
    assert IvkFloatField(value=7).value == 7.0
    assert isinstance(IvkFloatField(value=0).value, float)
    with pytest.raises(FieldValueError, match="finite"):
        IvkFloatField(value=float("nan"))


def test_string_options_and_lengths() -> None:
    f = IvkStringField(value="a", options=["a", "b"])
    f.value = "b"
    with pytest.raises(FieldValueError, match="not one of the options"):
        f.value = "c"
    with pytest.raises(FieldValueError, match="longer than 3"):
        IvkStringField(value="abcd", max_length=3)
    with pytest.raises(FieldValueError):
        IvkStringField(value=5)


def test_boolean_is_strict() -> None:
    assert IvkBooleanField(value="true").value is True
    with pytest.raises(FieldValueError, match="True or False"):
        IvkBooleanField(value=1)


def test_image_accepts_name_or_dict() -> None:
    f = IvkImageField(value={"image_name": "a.png"})
    assert f.value == "a.png"
    f.value = "b.png"
    assert f.to_api_value() == {"image_name": "b.png"}
    with pytest.raises(FieldValueError, match="image_name"):
        f.value = {"name": "x"}
    with pytest.raises(FieldValueError, match="empty"):
        f.value = ""


@pytest.mark.parametrize(
    ("cls", "key"),
    [
        (IvkLatentsField, "latents_name"),
        (IvkTensorField, "tensor_name"),
        (IvkConditioningField, "conditioning_name"),
    ],
)
def test_named_resources(cls: type[IvkField[Any]], key: str) -> None:
    f = cls.from_api_value({key: "n1"})
    assert f.to_api_value() == {key: "n1"}


def test_board_policy() -> None:
    b = IvkBoardField(value={"board_id": "abc"})
    assert b.value == "abc"
    assert b.to_api_value() == {"board_id": "abc"}
    assert b.saved_value() == {"board_id": "abc"}
    for literal in ("none", "auto"):
        f = IvkBoardField(value=literal)
        assert f.to_api_value() is None  # left out of the graph
        assert f.saved_value() == literal
    with pytest.raises(FieldValueError, match="board_id"):
        IvkBoardField(value={"id": "x"})
    with pytest.raises(FieldValueError, match="uncategorized"):
        IvkBoardField(value="")


def test_scheduler_names_are_invokeai_6_14_2s() -> None:
    choices = NodeSchemaIndex.offline()["denoise_latents"].inputs["scheduler"].choices
    assert choices is not None
    assert [s.value for s in SchedulerName] == list(choices)
    assert SchedulerName.DPMPP_3M_K.value == "dpmpp_3m_k"


def test_scheduler_field() -> None:
    f = IvkSchedulerField(value="euler")
    f.value = SchedulerName.DPMPP_3M_K
    assert f.value == "dpmpp_3m_k"
    assert f.to_api_value() == "dpmpp_3m_k"
    with pytest.raises(FieldValueError, match="not one of"):
        f.value = "warp_drive"
    assert f.value == "dpmpp_3m_k"


def test_enum_field_choices() -> None:
    f = IvkEnumField(value="gaussian", choices=["gaussian", "box"])
    f.value = "box"
    with pytest.raises(FieldValueError, match="'median' is not one of"):
        f.value = "median"
    assert IvkEnumField(value="anything").value == "anything"  # no choices: free


def test_model_identifier() -> None:
    m = IvkModelIdentifierField()
    assert m.to_api_value() is None
    m.set_value(MODEL)
    assert m.to_api_value() == MODEL
    m.name = "renamed"
    assert m.to_api_value()["name"] == "renamed"
    m2 = IvkModelIdentifierField.from_api_value({**MODEL, "submodel_type": "vae"})
    assert m2.to_api_value()["submodel_type"] == "vae"
    with pytest.raises(FieldValueError, match="model identifier"):
        IvkModelIdentifierField.from_api_value("juggernaut")


def test_model_identifier_checks_allowed_base_and_type() -> None:
    m = IvkModelIdentifierField(allowed_bases=["sdxl"], allowed_types=["main"])
    m.set_value(MODEL)
    with pytest.raises(FieldValueError, match="model base 'sd-1'"):
        m.set_value({**MODEL, "base": "sd-1"})
    assert m.base == "sdxl"
    with pytest.raises(FieldValueError, match="model type 'vae'"):
        m.set_value({**MODEL, "type": "vae"})


def test_model_aliases_are_the_identifier_class() -> None:
    for alias in (
        IvkSDXLModelField,
        IvkFluxModelField,
        IvkT5EncoderField,
        IvkCLIPEmbedField,
        IvkVAEModelField,
    ):
        assert alias is IvkModelIdentifierField


def test_color_field() -> None:
    c = IvkColorField()
    c.set_value("#ff8000")
    assert c.to_api_value() == {"r": 255, "g": 128, "b": 0, "a": 255}
    c.set_value((1, 2, 3))
    assert c.to_api_value() == {"r": 1, "g": 2, "b": 3, "a": 255}
    with pytest.raises(FieldValueError):
        c.r = 300
    with pytest.raises(FieldValueError, match="hex"):
        c.set_value("#gg0000")
    with pytest.raises(FieldValueError, match="unknown channels"):
        c.set_value({"x": 1})
    assert c.r == 1


def test_bounding_box() -> None:
    b = IvkBoundingBoxField.from_api_value({"x_min": 0, "x_max": 10, "y_min": 0, "y_max": 5})
    assert b.to_api_value() == {"x_min": 0, "x_max": 10, "y_min": 0, "y_max": 5}
    with pytest.raises(FieldValueError, match="x_max/y_max"):
        b.set_value({"x_max": -1})
    with pytest.raises(FieldValueError):
        IvkBoundingBoxField(score=2)


def test_collection_items_checked() -> None:
    c = IvkCollectionField(value=[1, 2], item_kind="integer")
    with pytest.raises(FieldValueError, match="item 1"):
        c.value = [1, "2"]
    images = IvkCollectionField(item_kind="image")
    images.set_value(["a.png", {"image_name": "b.png"}])
    assert images.to_api_value() == [{"image_name": "a.png"}, {"image_name": "b.png"}]
    with pytest.raises(FieldValueError, match="at least 1"):
        IvkCollectionField(value=[], min_length=1)


def test_structured_loader_fields() -> None:
    with pytest.raises(FieldValueError, match="missing keys"):
        IvkUNetField(value={"unet": {}})
    lora = IvkLoRAField(value={"lora": MODEL, "weight": 0.5})
    assert lora.to_api_value() == {"lora": MODEL, "weight": 0.5}


def test_raw_field_keeps_the_exact_value() -> None:
    original = {"odd": [1, {"nested": None}], "n": 0}
    raw = IvkRawField.from_api_value(original)
    assert raw.to_api_value() == original
    assert raw.to_api_value() is not original  # a copy: the payload cannot alias it
    assert IvkRawField().to_api_value() is None
    zero = IvkRawField.from_api_value(0)
    assert zero.to_api_value() == 0 and zero.is_set()
    raw.value = "replaced"
    assert raw.to_api_value() == "replaced"


def test_copy_field_is_independent() -> None:
    m = IvkModelIdentifierField.from_api_value(MODEL)
    c = m.copy_field()
    c.name = "other"
    assert m.name == "juggernaut"
