"""Model inputs of a run over several servers, resolved once per server.

Model keys differ between installs, so a graph that names server A's LoRA by key is wrong on
server B. Before a run over several servers hands out work, every model identifier the plan
sends (in the graph template, the workflow copy it carries, and any batch-data value) is
resolved on each server with :func:`~invokeai_py_client.dnn_model.sync.resolve_model`: by
hash (the same file), then by name and type (preferring the same base). Resolving by base
alone is not done here: that would silently put a *different* model on one server, and a
sweep's images would no longer compare.

A server's result is a mapping ``{original key: identifier on that server}``; the plan it
runs is ``plan.with_models(mapping)``. A server on which some input cannot be resolved is
``None`` (it gets no work); when no server can resolve the inputs,
:class:`~invokeai_py_client.exceptions.ModelSyncError` names each input and each server.

Example::

    mappings = await resolve_servers(clients, plan, labels)
    plan_b = plan.with_models(mappings[client_b.server_url])
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..exceptions import InvokeAIError, ModelSyncError
from ..ivk_fields import IvkModelIdentifierField
from .models import IvkDnnModel
from .sync import resolve_model

if TYPE_CHECKING:
    from ..client import InvokeAIClient
    from ..sweep import SweepPlan

__all__ = [
    "ModelRef",
    "alist_models",
    "is_model_ref",
    "model_input_labels",
    "model_refs",
    "resolve_refs",
    "resolve_servers",
    "stale_mappings",
    "swap_models",
]

log = logging.getLogger(__name__)

#: ``(node_id, field_name)`` -> ``(input index, label)``; index ``-1``: not in the Form
Labels = Mapping[tuple[str, str], tuple[int, str]]
#: one server's result: ``{original key: the identifier to send there}``
ModelMapping = dict[str, dict[str, Any]]

_ID_KEYS = ("key", "hash", "name", "base", "type")


def is_model_ref(value: Any) -> bool:
    """Whether ``value`` is a model identifier (``key``/``hash``/``name``/``base``/``type``)."""
    return (
        isinstance(value, Mapping)
        and all(isinstance(value.get(k), str) for k in ("key", "base", "type"))
        and ("hash" in value or "name" in value)
        and bool(value.get("key"))
    )


def _walk(value: Any, found: list[dict[str, Any]]) -> None:
    if is_model_ref(value):
        found.append(dict(value))
    elif isinstance(value, Mapping):
        for v in value.values():
            _walk(v, found)
    elif isinstance(value, list | tuple):
        for v in value:
            _walk(v, found)


class ModelRef:
    """One distinct model identifier a plan sends, and where (the first place it is used)."""

    __slots__ = ("field_name", "ident", "index", "label", "node_id")

    def __init__(
        self, ident: dict[str, Any], node_id: str, field_name: str, index: int, label: str
    ) -> None:
        self.ident = ident
        self.node_id = node_id
        self.field_name = field_name
        self.index = index
        self.label = label

    @property
    def key(self) -> str:
        """The identifier's key as the plan holds it."""
        return str(self.ident["key"])

    def describe(self) -> str:
        """``[0] 'LoRA' (tiny_lora, sd-1/lora)`` -- the input and the model it names."""
        where = f"[{self.index}]" if self.index >= 0 else "(not in the Form)"
        what = f"{self.ident.get('name') or self.key}, {self.ident['base']}/{self.ident['type']}"
        return f"{where} {self.label!r} ({what})"


def model_input_labels(handle: Any) -> dict[tuple[str, str], tuple[int, str]]:
    """``(node_id, field) -> (index, label)`` of the handle's model inputs (for messages)."""
    out: dict[tuple[str, str], tuple[int, str]] = {}
    lister = getattr(handle, "list_inputs", None)
    for inp in lister() if callable(lister) else ():
        if isinstance(getattr(inp, "field", None), IvkModelIdentifierField):
            key = (str(inp.node_id), str(inp.field_name))
            out.setdefault(key, (int(inp.input_index), str(inp.label or inp.field_name)))
    return out


def model_refs(plan: SweepPlan, labels: Labels | None = None) -> list[ModelRef]:
    """Every distinct model identifier (by key) in ``plan``'s graph and batch data."""
    labels = labels or {}
    out: dict[str, ModelRef] = {}

    def add(value: Any, nid: str, fname: str, index: int | None, label: str | None) -> None:
        found: list[dict[str, Any]] = []
        _walk(value, found)
        for ident in found:
            if ident["key"] in out:
                continue
            i, lab = labels.get((nid, fname), (-1, f"{nid}.{fname}"))
            out[ident["key"]] = ModelRef(
                ident, nid, fname, i if index is None else index, label or lab
            )

    nodes = ((plan.template.get("batch") or {}).get("graph") or {}).get("nodes") or {}
    for nid, node in nodes.items():
        for fname, value in node.items():
            add(value, str(nid), str(fname), None, None)
    for a in plan.axes:
        for v in a.values:
            add(v, a.node_id, a.field_name, a.index, a.label)
    return list(out.values())


def swap_models(value: Any, mapping: Mapping[str, Mapping[str, Any]]) -> Any:
    """A copy of ``value`` where each model identifier whose key is in ``mapping`` is
    replaced by the mapped one (other attributes, e.g. ``submodel_type``, are kept)."""
    if not mapping:
        return value
    if is_model_ref(value) and value["key"] in mapping:
        new = mapping[value["key"]]
        return {**value, **{k: new[k] for k in _ID_KEYS if k in new}}
    if isinstance(value, Mapping):
        return {k: swap_models(v, mapping) for k, v in value.items()}
    if isinstance(value, list):
        return [swap_models(v, mapping) for v in value]
    if isinstance(value, tuple):
        return tuple(swap_models(v, mapping) for v in value)
    return value


def resolve_refs(
    refs: Sequence[ModelRef], models: Sequence[IvkDnnModel]
) -> tuple[ModelMapping, list[tuple[ModelRef, str]]]:
    """Resolve each reference against one server's ``models`` (pure).

    Returns ``(mapping, unresolved)``; ``unresolved`` lists ``(ref, reason)``.
    """
    mapping: ModelMapping = {}
    unresolved: list[tuple[ModelRef, str]] = []
    for ref in refs:
        try:
            field = IvkModelIdentifierField.from_api_value(ref.ident)
        except (InvokeAIError, ValueError) as exc:
            unresolved.append((ref, f"not a model identifier: {exc}"))
            continue
        model, how = resolve_model(field, models, by_name=True, by_base=False)
        if model is None:
            unresolved.append((ref, how))
        else:
            mapping[ref.key] = {k: v for k, v in model.to_identifier().items() if k in _ID_KEYS}
            log.debug("model %s -> %s (by %s)", ref.describe(), model, how)
    return mapping, unresolved


async def alist_models(client: InvokeAIClient) -> list[IvkDnnModel]:
    """Every installed model of ``client``'s server (one async request; tests count it)."""
    return await client.dnn_model_repo.alist_models()


async def stale_mappings(
    clients: Sequence[InvokeAIClient], known: Mapping[str, ModelMapping | None]
) -> dict[str, str]:
    """The servers whose recorded mapping names a model they no longer have: ``{url: why}``.

    Each identifier a server's mapping sends is looked up there by key (one request each,
    concurrently): gone, or now another file (hash), makes the mapping stale. A server that
    does not answer is not called stale (its health check decides about it); servers
    without a mapping in ``known`` are not asked.
    """

    async def check(client: InvokeAIClient, mapping: ModelMapping) -> str | None:
        for ident in mapping.values():
            key = str(ident.get("key") or "")
            what = f"{ident.get('name') or key} ({ident.get('base')}/{ident.get('type')}, {key})"
            try:
                model = await client.dnn_model_repo.aget_model_by_key(key)
            except InvokeAIError as exc:
                log.info("server %s: cannot check model %s (%s)", client.server_url, what, exc)
                return None
            if model is None:
                return f"model {what} is no longer installed"
            if ident.get("hash") and model.hash and model.hash != ident["hash"]:
                return f"model {what} now holds another file ({model.hash})"
        return None

    asked = [(c, known[c.server_url]) for c in clients if known.get(c.server_url)]
    found = await asyncio.gather(*(check(c, m or {}) for c, m in asked))
    return {c.server_url: why for (c, _), why in zip(asked, found, strict=True) if why}


async def resolve_servers(
    clients: Sequence[InvokeAIClient],
    plan: SweepPlan,
    labels: Labels | None = None,
    *,
    known: Mapping[str, ModelMapping | None] | None = None,
) -> dict[str, ModelMapping | None]:
    """Each server's model mapping for ``plan`` (``None``: it cannot run it).

    Servers in ``known`` with a mapping keep it (no request); the others list their models
    (one request each, concurrently). A server that cannot resolve every input is logged and
    left ``None``. Raises :class:`ModelSyncError` when no server can (``unresolved`` gives
    ``(index, label, reason per server)``). A plan without model inputs asks nothing and maps
    every server to ``{}``.
    """
    refs = model_refs(plan, labels)
    known = known or {}
    if not refs:
        return {c.server_url: {} for c in clients}
    out: dict[str, ModelMapping | None] = {}
    todo = [c for c in clients if known.get(c.server_url) is None]
    for c in clients:
        if c not in todo:
            out[c.server_url] = dict(known[c.server_url] or {})
    listed = await asyncio.gather(*(alist_models(c) for c in todo), return_exceptions=True)
    why: dict[str, list[tuple[ModelRef, str]]] = {}
    for c, models in zip(todo, listed, strict=True):
        url = c.server_url
        if isinstance(models, BaseException):
            if not isinstance(models, InvokeAIError):
                raise models
            log.warning("server %s: cannot list its models (%s); it gets no work", url, models)
            why[url] = [(ref, f"models not listed: {models}") for ref in refs]
            out[url] = None
            continue
        mapping, unresolved = resolve_refs(refs, models)
        if unresolved:
            lines = "; ".join(f"{r.describe()}: {reason}" for r, reason in unresolved)
            log.warning("server %s cannot run this workflow (%s); it gets no work", url, lines)
            why[url] = unresolved
            out[url] = None
        else:
            out[url] = mapping
    if any(m is not None for m in out.values()):
        return out
    per_ref: dict[str, list[str]] = {}
    for url, items in why.items():
        for ref, reason in items:
            per_ref.setdefault(ref.key, []).append(f"{url}: {reason}")
    failed = [r for r in refs if r.key in per_ref]
    unresolved_rows = [(r.index, r.label, "; ".join(per_ref[r.key])) for r in failed]
    text = " | ".join(f"{r.describe()} on {'; '.join(per_ref[r.key])}" for r in failed)
    raise ModelSyncError(
        f"no server can run this workflow: {len(failed)} model input(s) could not be resolved "
        f"on any of {', '.join(c.server_url for c in clients)} (by hash, then by name and "
        f"type): {text}. Install the models on the servers, or set these inputs to models "
        "they have. Nothing was sent.",
        unresolved=unresolved_rows,
    )
