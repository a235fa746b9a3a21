"""Field-type detection: an open registry of rules (predicate -> builder).

For each form input the first matching rule builds the typed field. The built-in rules look,
in this order, at

1. the form's field settings (``integer-field-config``, ``float-field-config``,
   ``string-field-config`` with its dropdown options);
2. the node type's schema (live ``/openapi.json`` or the offline snapshot): kind, bounds,
   enum choices, model base/type;
3. the saved value's shape (``{"image_name"}``, ``{"board_id"}``, a model dict, ...);
4. finally :class:`~invokeai_py_client.ivk_fields.IvkRawField`, which keeps the exact value.

Rules you register run before the built-in ones (or at a priority you choose).

Example::

    from invokeai_py_client.workflow.detection import default_registry, DetectionContext
    from invokeai_py_client.ivk_fields import IvkStringField

    default_registry().register(
        lambda ctx: ctx.node_type == "my_pack_prompt" and ctx.field_name == "text",
        lambda ctx: IvkStringField(value=ctx.value),
        name="my-pack-prompt",
    )
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from invokeai_py_client.exceptions import FieldValueError
from invokeai_py_client.ivk_fields import (
    IvkBoardField,
    IvkBooleanField,
    IvkBoundingBoxField,
    IvkCLIPField,
    IvkCollectionField,
    IvkColorField,
    IvkConditioningField,
    IvkEnumField,
    IvkField,
    IvkFloatField,
    IvkImageField,
    IvkIntegerField,
    IvkLatentsField,
    IvkLoRAField,
    IvkModelIdentifierField,
    IvkRawField,
    IvkSchedulerField,
    IvkStringField,
    IvkTensorField,
    IvkTransformerField,
    IvkUNetField,
)
from invokeai_py_client.workflow.schema import InputSchema

__all__ = [
    "DetectionContext",
    "FieldRule",
    "FieldTypeRegistry",
    "build_field",
    "default_registry",
]

Predicate = Callable[["DetectionContext"], bool]
Builder = Callable[["DetectionContext"], IvkField[Any]]


@dataclass(frozen=True, slots=True)
class DetectionContext:
    """Everything a rule may look at for one input."""

    node_id: str
    node_type: str
    field_name: str
    value: Any
    has_value: bool
    settings: Mapping[str, Any] | None
    schema: InputSchema | None

    @property
    def settings_type(self) -> str | None:
        """``integer-field-config`` etc., or None."""
        t = self.settings.get("type") if self.settings else None
        return t if isinstance(t, str) else None


@dataclass(frozen=True, slots=True)
class FieldRule:
    """A named detection rule; lower ``priority`` runs first."""

    name: str
    predicate: Predicate
    builder: Builder
    priority: int = 0


class FieldTypeRegistry:
    """An ordered set of :class:`FieldRule`; :meth:`detect` runs the first that matches.

    Example::

        reg = FieldTypeRegistry.with_builtin_rules()
        reg.register(pred, builder, name="mine")   # runs before the built-in rules
    """

    def __init__(self, rules: list[FieldRule] | None = None) -> None:
        self._rules: list[FieldRule] = []
        self._seq = 0
        for r in rules or []:
            self.add(r)

    @classmethod
    def with_builtin_rules(cls) -> FieldTypeRegistry:
        """A registry holding the built-in rules only."""
        return cls(list(_BUILTIN_RULES))

    def add(self, rule: FieldRule) -> None:
        """Add a rule (kept sorted by priority, stable for equal priorities)."""
        self._rules.append(rule)
        self._rules.sort(key=lambda r: r.priority)

    def register(
        self, predicate: Predicate, builder: Builder, *, name: str, priority: int = -100
    ) -> FieldRule:
        """Register a user rule; the default priority puts it before every built-in rule."""
        rule = FieldRule(name=name, predicate=predicate, builder=builder, priority=priority)
        self.add(rule)
        return rule

    def unregister(self, name: str) -> None:
        """Remove every rule with that name."""
        self._rules = [r for r in self._rules if r.name != name]

    @property
    def rules(self) -> list[FieldRule]:
        """The rules in the order they are tried."""
        return list(self._rules)

    def detect(self, ctx: DetectionContext) -> IvkField[Any]:
        """Build the field for ``ctx`` with the first matching rule.

        A saved value that breaks the detected constraints (e.g. a value above a schema's
        maximum) still loads: the field keeps it and ``validate_inputs()`` reports it.
        """
        for rule in self._rules:
            if rule.predicate(ctx):
                try:
                    return rule.builder(ctx)
                except FieldValueError:
                    return _keep_invalid(rule, ctx)
        return _raw(ctx)


def _keep_invalid(rule: FieldRule, ctx: DetectionContext) -> IvkField[Any]:
    """Build the field without the saved value, then put the value back unvalidated."""
    unset = DetectionContext(
        ctx.node_id, ctx.node_type, ctx.field_name, None, False, ctx.settings, ctx.schema
    )
    try:
        field = rule.builder(unset)
    except FieldValueError:
        return _raw(ctx)
    if "value" in type(field).model_fields:
        field.__dict__["value"] = ctx.value
        return field
    return _raw(ctx)


_DEFAULT: FieldTypeRegistry | None = None


def default_registry() -> FieldTypeRegistry:
    """The process-wide registry used when a handle is not given its own."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = FieldTypeRegistry.with_builtin_rules()
    return _DEFAULT


def build_field(ctx: DetectionContext, registry: FieldTypeRegistry | None = None) -> IvkField[Any]:
    """Detect and build the typed field for one input."""
    return (registry or default_registry()).detect(ctx)


# ---------------------------------------------------------------------- helpers


def _val(ctx: DetectionContext) -> Any:
    return ctx.value if ctx.has_value else None


def _bounds(ctx: DetectionContext) -> dict[str, Any]:
    s = ctx.schema
    out: dict[str, Any] = {}
    if s is not None:
        out = {
            "minimum": s.ge,
            "maximum": s.le,
            "exclusive_minimum": s.gt,
            "exclusive_maximum": s.lt,
            "multiple_of": s.multiple_of,
        }
    st = ctx.settings or {}
    # form settings narrow the range the GUI lets a user pick
    if isinstance(st.get("min"), int | float) and not isinstance(st.get("min"), bool):
        out["minimum"] = max(st["min"], out.get("minimum") or st["min"])
    if isinstance(st.get("max"), int | float) and not isinstance(st.get("max"), bool):
        out["maximum"] = min(st["max"], out.get("maximum") or st["max"])
    return {k: v for k, v in out.items() if v is not None}


def _kind(ctx: DetectionContext) -> str | None:
    return ctx.schema.kind if ctx.schema is not None else None


def _raw(ctx: DetectionContext) -> IvkField[Any]:
    if ctx.has_value:
        return IvkRawField(value=ctx.value)
    return IvkRawField()


def _integer(ctx: DetectionContext) -> IvkField[Any]:
    return IvkIntegerField(value=_val(ctx), **_bounds(ctx))


def _float(ctx: DetectionContext) -> IvkField[Any]:
    return IvkFloatField(value=_val(ctx), **_bounds(ctx))


def _string(ctx: DetectionContext) -> IvkField[Any]:
    st = ctx.settings or {}
    opts = st.get("options")
    options = None
    if st.get("component") == "dropdown" and isinstance(opts, list):
        options = [
            o.get("value") if isinstance(o, Mapping) else o
            for o in opts
            if isinstance(o, str) or (isinstance(o, Mapping) and isinstance(o.get("value"), str))
        ]
    s = ctx.schema
    component = st.get("component") if isinstance(st.get("component"), str) else None
    return IvkStringField(
        value=_val(ctx),
        options=options or None,
        component=component or (s.ui_component if s else None),
        min_length=s.min_length if s else None,
        max_length=s.max_length if s else None,
    )


def _boolean(ctx: DetectionContext) -> IvkField[Any]:
    return IvkBooleanField(value=_val(ctx))


def _enum(ctx: DetectionContext) -> IvkField[Any]:
    choices = list(ctx.schema.choices or ()) if ctx.schema else []
    return IvkEnumField(value=_val(ctx), choices=choices)


def _scheduler(ctx: DetectionContext) -> IvkField[Any]:
    if ctx.schema is not None and ctx.schema.choices:
        return IvkSchedulerField(value=_val(ctx), choices=list(ctx.schema.choices))
    return IvkSchedulerField(value=_val(ctx))


def _model(ctx: DetectionContext) -> IvkField[Any]:
    s = ctx.schema
    config: dict[str, Any] = {}
    if s is not None:
        if s.model_base:
            config["allowed_bases"] = list(s.model_base)
        if s.model_type:
            config["allowed_types"] = list(s.model_type)
    return IvkModelIdentifierField.from_api_value(_val(ctx), **config)


def _collection(ctx: DetectionContext) -> IvkField[Any]:
    s = ctx.schema
    return IvkCollectionField(
        value=_val(ctx),
        item_kind=s.item_kind if s else None,
        min_length=s.min_length if s else None,
        max_length=s.max_length if s else None,
    )


def _simple(cls: type[IvkField[Any]]) -> Builder:
    def build(ctx: DetectionContext) -> IvkField[Any]:
        return cls.from_api_value(_val(ctx))

    return build


_SCHEMA_BUILDERS: dict[str, Builder] = {
    "integer": _integer,
    "float": _float,
    "string": _string,
    "boolean": _boolean,
    "enum": _enum,
    "scheduler": _scheduler,
    "image": _simple(IvkImageField),
    "board": _simple(IvkBoardField),
    "model": _model,
    "color": _simple(IvkColorField),
    "bbox": _simple(IvkBoundingBoxField),
    "latents": _simple(IvkLatentsField),
    "tensor": _simple(IvkTensorField),
    "conditioning": _simple(IvkConditioningField),
    "unet": _simple(IvkUNetField),
    "clip": _simple(IvkCLIPField),
    "transformer": _simple(IvkTransformerField),
    "lora": _simple(IvkLoRAField),
    "collection": _collection,
}


def _schema_rule(kind: str) -> FieldRule:
    builder = _SCHEMA_BUILDERS[kind]

    def pred(ctx: DetectionContext) -> bool:
        if _kind(ctx) != kind:
            return False
        # a field that also accepts a list (cfg_scale) and holds one is kept raw
        return not (
            ctx.schema is not None and ctx.schema.allows_list and isinstance(ctx.value, list)
        )

    return FieldRule(f"schema:{kind}", pred, builder, priority=100)


def _settings_rule(settings_type: str, builder: Builder) -> FieldRule:
    return FieldRule(
        f"settings:{settings_type}",
        lambda ctx: ctx.settings_type == settings_type,
        builder,
        priority=0,
    )


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _has_keys(*keys: str) -> Predicate:
    return lambda ctx: isinstance(ctx.value, Mapping) and all(k in ctx.value for k in keys)


def _shape(name: str, pred: Predicate, builder: Builder) -> FieldRule:
    def guarded(ctx: DetectionContext) -> bool:
        return _kind(ctx) in (None, "unknown", "object") and ctx.has_value and pred(ctx)

    return FieldRule(f"value:{name}", guarded, builder, priority=200)


_BUILTIN_RULES: list[FieldRule] = [
    # 1. form settings (the GUI's own typing of integer/float/string fields)
    _settings_rule("integer-field-config", _integer),
    _settings_rule("float-field-config", _float),
    _settings_rule("string-field-config", _string),
    # 2. the node schema
    *(_schema_rule(k) for k in _SCHEMA_BUILDERS),
    # 3. the value's shape (no schema, or the schema did not say)
    FieldRule(
        "value:board-literal",
        lambda ctx: (
            ctx.field_name == "board"
            and ctx.value in ("none", "auto")
            and _kind(ctx) in (None, "unknown", "object")
        ),
        _simple(IvkBoardField),
        priority=150,
    ),
    _shape("image", _has_keys("image_name"), _simple(IvkImageField)),
    _shape("board", _has_keys("board_id"), _simple(IvkBoardField)),
    _shape("model", _has_keys("key", "hash", "name", "base", "type"), _model),
    _shape("color", _has_keys("r", "g", "b", "a"), _simple(IvkColorField)),
    _shape("bbox", _has_keys("x_min", "x_max", "y_min", "y_max"), _simple(IvkBoundingBoxField)),
    _shape("latents", _has_keys("latents_name"), _simple(IvkLatentsField)),
    _shape("tensor", _has_keys("tensor_name"), _simple(IvkTensorField)),
    _shape("conditioning", _has_keys("conditioning_name"), _simple(IvkConditioningField)),
    _shape("boolean", lambda ctx: isinstance(ctx.value, bool), _boolean),
    _shape(
        "integer",
        lambda ctx: isinstance(ctx.value, int) and not isinstance(ctx.value, bool),
        _integer,
    ),
    _shape("float", lambda ctx: isinstance(ctx.value, float), _float),
    _shape("string", lambda ctx: isinstance(ctx.value, str), _string),
]
