"""Point a workflow's model inputs at models installed on the server: :func:`sync_dnn_model`.

A workflow exported on one machine names models by key, hash, name, base and type. Keys differ
between installs; hashes and names do not. Each model input is resolved in this order:

1. by hash (the same file, whatever its key or name here);
2. by name and type (``by_name``), preferring the same base;
3. by base and type (``by_base``): the first such model by name.

It is all-or-nothing: when any input cannot be resolved, :class:`ModelSyncError` lists each
one by index and label and nothing is changed. Only the handle's values change, never the
workflow definition. Inputs left unset in the workflow (no key, hash or name) are skipped.

Example::

    changed = wf.sync_dnn_model(by_name=True, by_base=True)
    for original, resolved in changed:
        print(f"Updated model: {original.name} -> {resolved.name}")
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..exceptions import FieldValueError, ModelError, ModelSyncError
from ..ivk_fields import IvkModelIdentifierField
from .models import IvkDnnModel

if TYPE_CHECKING:
    from ..workflow.handle import WorkflowHandle

__all__ = ["resolve_model", "sync_dnn_model"]


def _fits(model: IvkDnnModel, field: IvkModelIdentifierField) -> bool:
    """Whether the input's schema constraints (allowed bases / types) admit the model."""
    if field.allowed_types and model.type_str not in field.allowed_types:
        return False
    return not (
        field.allowed_bases
        and "any" not in field.allowed_bases
        and model.base_str not in field.allowed_bases
    )


def resolve_model(
    field: IvkModelIdentifierField,
    models: Sequence[IvkDnnModel],
    *,
    by_name: bool = True,
    by_base: bool = True,
) -> tuple[IvkDnnModel | None, str]:
    """Find the installed model a model input should point at (pure, no I/O).

    Returns ``(model, how)`` where ``how`` is ``"hash"``, ``"name"`` or ``"base"``; or
    ``(None, reason)`` when nothing matches.

    Example::

        model, how = resolve_model(field, client.dnn_model_repo.list_models())
    """
    fits = [m for m in models if _fits(m, field)]

    if field.hash:
        same_hash = [m for m in fits if m.hash == field.hash]
        if same_hash:
            same_hash.sort(key=lambda m: (m.key != field.key, m.type_str != field.type, m.name))
            return same_hash[0], "hash"

    if by_name and field.name:
        named = [m for m in fits if m.name == field.name and m.type_str == field.type]
        if named:
            named.sort(key=lambda m: (m.base_str != field.base, m.key != field.key, m.key))
            return named[0], "name"

    base_known = field.base not in ("", "any")
    if by_base and base_known:
        same_base = [m for m in fits if m.base_str == field.base and m.type_str == field.type]
        if same_base:
            same_base.sort(key=lambda m: (m.name, m.key))
            return same_base[0], "base"

    tried = []
    if field.hash:
        tried.append(f"hash {field.hash!r}")
    if by_name and field.name:
        tried.append(f"name {field.name!r} with type {field.type!r}")
    if by_base and base_known:
        tried.append(f"base {field.base!r} with type {field.type!r}")
    if not tried:
        return None, "nothing to match on (enable by_name / by_base)"
    return None, "no installed model matches " + ", or ".join(tried)


def sync_dnn_model(
    handle: WorkflowHandle,
    by_name: bool = True,
    by_base: bool = True,
    *,
    models: Sequence[IvkDnnModel] | None = None,
) -> list[tuple[IvkModelIdentifierField, IvkModelIdentifierField]]:
    """Resolve every model input of ``handle`` against the server's models (one request).

    Returns ``(original, resolved)`` field pairs for the inputs whose value changed.
    Raises :class:`ModelSyncError` (``.unresolved`` = ``[(index, label, reason)]``) and
    changes nothing when any input cannot be resolved. ``models`` skips the listing request.

    Example::

        from invokeai_py_client.dnn_model.sync import sync_dnn_model

        for original, resolved in sync_dnn_model(wf, by_name=True, by_base=False):
            print(original.name, "->", resolved.name, resolved.key)
    """
    model_inputs = [
        inp for inp in handle.list_inputs() if isinstance(inp.field, IvkModelIdentifierField)
    ]
    if not model_inputs:
        return []
    if models is None:
        client: Any = getattr(handle, "client", None)
        if client is None:
            raise ModelError(
                "sync_dnn_model needs a workflow handle bound to a client "
                "(client.workflow_repo.create_workflow(...)) or an explicit models= list"
            )
        models = client.dnn_model_repo.list_models()

    plan: list[tuple[int, IvkModelIdentifierField, IvkModelIdentifierField]] = []
    unresolved: list[tuple[int, str, str]] = []
    seen: set[tuple[str, str]] = set()
    for inp in model_inputs:
        if (inp.node_id, inp.field_name) in seen:
            continue  # the same node field placed twice in the form: one value
        seen.add((inp.node_id, inp.field_name))
        field = inp.field
        assert isinstance(field, IvkModelIdentifierField)
        if not (field.key or field.hash or field.name):
            continue
        model, how = resolve_model(field, models, by_name=by_name, by_base=by_base)
        if model is None:
            unresolved.append((inp.input_index, inp.label, how))
            continue
        resolved = field.copy_field()
        try:
            resolved.set_value(model.to_identifier())
        except FieldValueError as exc:
            unresolved.append((inp.input_index, inp.label, f"{model} does not fit: {exc}"))
            continue
        if resolved.to_api_value() != field.to_api_value():
            plan.append((inp.input_index, field.copy_field(), resolved))

    if unresolved:
        lines = "; ".join(f"[{i}] {label!r}: {why}" for i, label, why in unresolved)
        raise ModelSyncError(
            f"{len(unresolved)} model input(s) could not be resolved, nothing was changed: "
            f"{lines}. Install the models, or set these inputs yourself "
            "(to_ivk_model_field(model)).",
            unresolved=unresolved,
        )
    for index, _original, resolved in plan:
        handle.set_input_value(index, resolved)
    return [(original, resolved) for _index, original, resolved in plan]
