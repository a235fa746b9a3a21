"""Parameter sweeps that expand on the server: :class:`Sweep` -> InvokeAI's own ``batch.data``.

A sweep names workflow inputs (by index, label, ``"node_id.field"`` or ``(node_id, field)``)
and gives each a list of values. Axes multiply (cartesian product) unless they are grouped with
:meth:`Sweep.zip`, in which case they move together. ``runs`` repeats the whole set. The sweep
becomes the ``batch.data`` of ONE ``enqueue_batch`` request (DESIGN.md §4): zipped axes share
one inner list, inner lists multiply, ``runs`` repeats; a 1,000-run sweep is one request.

GUI batch / generator nodes already in the workflow (their data is in the handle's payload)
combine with the sweep as the GUI combines them: their inner lists come first and multiply
with the sweep's.

Run order (``run_index``) is the order the server creates the items in: ``runs`` outermost,
then the cartesian product of the groups, the first group varying slowest, the last fastest
(``itertools.product``). Never pair values with items by the position of ``item_ids`` in the
enqueue answer (newest first): map each item's ``field_values`` with
:meth:`SweepPlan.params_for` / :func:`params_from_field_values`.

This module does no network I/O: it reads a prompts file and hashes local image files, that
is all. Uploading the images happens in the run layer (:mod:`invokeai_py_client.run`), which
then calls :meth:`SweepPlan.with_uploads`.

Example::

    from invokeai_py_client.sweep import Sweep

    sweep = (
        Sweep(runs=1)
        .axis("Width", [32, 48, 64])
        .axis("Blur Radius", [1, 2, 3, 4])
    )
    plan = sweep.plan(wf)            # wf: a WorkflowHandle
    plan.count                       # 12
    plan.payload(batch_id="b1")      # the exact enqueue_batch body (dry run)

    Sweep().zip({"Width": [32, 64], "Height": [48, 96]}).plan(wf).count   # 2
    Sweep().prompts("Prompt", "prompts.txt").seeds("Seed", n=4)
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeAlias

from invokeai_py_client._sweep_plan import (
    AxisSpec,
    LocalImage,
    SubsetPlan,
    SweepPlan,
    canonical_value,
    params_from_field_values,
)
from invokeai_py_client.exceptions import InvokeAIError, SweepError

__all__ = [
    "AxisSpec",
    "InputKey",
    "LocalImage",
    "SubsetPlan",
    "Sweep",
    "SweepPlan",
    "canonical_value",
    "params_from_field_values",
]

#: how an input is named: its index, its label, ``"node_id.field"`` or ``(node_id, field)``
InputKey: TypeAlias = int | str | tuple[str, str]

#: largest seed InvokeAI accepts (``SEED_MAX`` = 2**32 - 1)
SEED_MAX = 2**32 - 1


# --------------------------------------------------------------------------- protocols


class _FieldLike(Protocol):
    def copy_field(self) -> Any: ...


class _InputLike(Protocol):
    """What :meth:`Sweep.plan` reads from a workflow input (``IvkWorkflowInput``)."""

    @property
    def input_index(self) -> int: ...
    @property
    def label(self) -> str | None: ...
    @property
    def node_id(self) -> str: ...
    @property
    def field_name(self) -> str: ...
    @property
    def field(self) -> Any: ...


class HandleLike(Protocol):
    """What :meth:`Sweep.plan` needs from a ``WorkflowHandle``."""

    def list_inputs(self) -> Sequence[Any]: ...
    def input(self, key: Any) -> Any: ...
    def build_payload(
        self,
        *,
        batch_id: str | None = None,
        runs: int = 1,
        data: list[list[dict[str, Any]]] | None = None,
        prepend: bool = False,
        origin: str | None = None,
        destination: str | None = None,
    ) -> dict[str, Any]: ...


# --------------------------------------------------------------------------- values


def _is_batch_scalar(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, str | int | float):
        return not (isinstance(value, float) and not math.isfinite(value))
    return (
        isinstance(value, Mapping)
        and set(value) <= {"image_name", "video_id"}
        and len(value) == 1
        and all(isinstance(v, str) for v in value.values())
    )


def _is_batch_value(value: Any) -> bool:
    if isinstance(value, list):
        return all(_is_batch_scalar(v) for v in value)
    return _is_batch_scalar(value)


# --------------------------------------------------------------------------- sweep spec


@dataclass(slots=True)
class _AxisDef:
    key: InputKey
    values: list[Any]
    kind: str = "values"  # values | prompts | seeds | images


class Sweep:
    """A parameter sweep over workflow inputs (pure: nothing is sent).

    Args:
        axes: ``{key: values}``; each becomes its own axis (they multiply).
        runs: how many times the whole set repeats (``batch.runs``).

    Example::

        sweep = Sweep({"Width": [32, 64]}, runs=2).axis(3, [1.0, 2.5])
        sweep.zip({"Width": [32, 64], "Height": [32, 64]})   # a group that moves together
        plan = sweep.plan(wf)
        plan.count, plan.payload()
    """

    def __init__(self, axes: Mapping[InputKey, Iterable[Any]] | None = None, *, runs: int = 1):
        self._groups: list[list[_AxisDef]] = []
        self._runs = 1
        self.runs = runs
        for key, values in (axes or {}).items():
            self.axis(key, values)

    # ------------------------------------------------------------------ building

    @property
    def runs(self) -> int:
        """How many times the whole set of combinations repeats (>= 1)."""
        return self._runs

    @runs.setter
    def runs(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise SweepError(f"runs must be a whole number >= 1, got {value!r}")
        self._runs = value

    def repeat(self, runs: int) -> Sweep:
        """Set ``runs`` and return the sweep (chainable)."""
        self.runs = runs
        return self

    def axis(self, key: InputKey, values: Iterable[Any]) -> Sweep:
        """Add an axis: ``key`` takes each of ``values`` (multiplies with the other axes)."""
        self._groups.append([self._make_axis(key, values, "values")])
        return self

    def zip(
        self,
        axes: Mapping[InputKey, Iterable[Any]] | None = None,
        *pairs: tuple[InputKey, Iterable[Any]],
    ) -> Sweep:
        """Add a group of axes that move together (equal lengths, else :class:`SweepError`).

        Example::

            Sweep().zip({"Width": [32, 64], "Height": [48, 96]})        # (32,48), (64,96)
            Sweep().zip(None, ("Width", [32, 64]), (1, [48, 96]))        # same, by index
        """
        items: list[tuple[InputKey, Iterable[Any]]] = list((axes or {}).items()) + list(pairs)
        if not items:
            raise SweepError("zip() needs at least one axis")
        group = [self._make_axis(k, v, "values") for k, v in items]
        self._check_group_lengths(group)
        self._groups.append(group)
        return self

    def prompts(self, key: InputKey, source: str | os.PathLike[str] | Iterable[str]) -> Sweep:
        """Add a prompt axis from a list of strings or a text file (one prompt per line).

        Blank lines in a file are skipped. A ``str`` is read as a file path only when it names
        an existing file; pass a list to sweep literal strings.
        """
        prompts: list[str]
        if isinstance(source, os.PathLike) or (isinstance(source, str) and Path(source).is_file()):
            path = Path(source)
            try:
                text = path.read_text(encoding="utf-8")
            except OSError as exc:
                raise SweepError(f"cannot read prompts file {str(path)!r}: {exc}") from exc
            prompts = [line.strip() for line in text.splitlines() if line.strip()]
            if not prompts:
                raise SweepError(f"prompts file {str(path)!r} holds no prompt")
        elif isinstance(source, str):
            raise SweepError(
                f"prompts file {source!r} does not exist; pass a list of strings to sweep "
                "literal prompts"
            )
        else:
            prompts = [str(p) for p in source]
        self._groups.append([self._make_axis(key, prompts, "prompts")])
        return self

    def seeds(
        self,
        key: InputKey,
        n: int | None = None,
        *,
        start: int | None = None,
        stop: int | None = None,
        rng_seed: int | None = None,
    ) -> Sweep:
        """Add a seed axis: ``n`` random seeds, or the range ``start..stop-1``.

        Example::

            Sweep().seeds("Seed", n=8)              # 8 random seeds in [0, 2**32-1]
            Sweep().seeds("Seed", start=0, stop=4)  # 0, 1, 2, 3
        """
        if n is not None and (start is not None or stop is not None):
            raise SweepError("seeds(): give either n (random seeds) or start/stop, not both")
        if n is not None:
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                raise SweepError(f"seeds(): n must be a whole number >= 1, got {n!r}")
            rng = random.Random(rng_seed)
            values = [rng.randint(0, SEED_MAX) for _ in range(n)]
        elif stop is not None:
            lo = 0 if start is None else start
            if not isinstance(lo, int) or not isinstance(stop, int) or stop <= lo:
                raise SweepError(
                    f"seeds(): need whole numbers start < stop, got start={start!r}, stop={stop!r}"
                )
            if lo < 0 or stop - 1 > SEED_MAX:
                raise SweepError(f"seeds(): seeds must lie in 0..{SEED_MAX}")
            values = list(range(lo, stop))
        else:
            raise SweepError("seeds(): give n (random seeds) or stop (a range)")
        self._groups.append([self._make_axis(key, values, "seeds")])
        return self

    def images(self, key: InputKey, paths: Iterable[str | os.PathLike[str]]) -> Sweep:
        """Add an axis of local image files (hashed now, uploaded once each by the run)."""
        values = [LocalImage.from_path(p) for p in paths]
        self._groups.append([self._make_axis(key, values, "images")])
        return self

    # ------------------------------------------------------------------ inspection

    @property
    def groups(self) -> list[list[tuple[InputKey, list[Any]]]]:
        """The groups as ``[[(key, values), ...], ...]`` (zipped axes share a group)."""
        return [[(a.key, list(a.values)) for a in g] for g in self._groups]

    @property
    def count(self) -> int:
        """Runs this sweep makes on its own (GUI batch nodes of the workflow not included)."""
        total = self._runs
        for g in self._groups:
            total *= len(g[0].values)
        return total

    def local_images(self) -> list[LocalImage]:
        """Each distinct local image (by content hash) the sweep uses, in first-use order."""
        seen: dict[str, LocalImage] = {}
        for g in self._groups:
            for a in g:
                for v in a.values:
                    if isinstance(v, LocalImage):
                        seen.setdefault(v.sha256, v)
        return list(seen.values())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able description (what the ledger records)."""
        return {
            "runs": self._runs,
            "groups": [
                [
                    {
                        "key": list(a.key) if isinstance(a.key, tuple) else a.key,
                        "kind": a.kind,
                        "values": [
                            {"path": v.path, "sha256": v.sha256} if isinstance(v, LocalImage) else v
                            for v in a.values
                        ],
                    }
                    for a in g
                ]
                for g in self._groups
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Sweep:
        """Rebuild a sweep written by :meth:`to_dict` (image files are not re-hashed)."""
        sweep = cls(runs=int(data.get("runs", 1)))
        for g in data.get("groups", []):
            group = []
            for a in g:
                key = tuple(a["key"]) if isinstance(a["key"], list) else a["key"]
                values = [
                    LocalImage(path=v["path"], sha256=v["sha256"])
                    if a.get("kind") == "images"
                    else v
                    for v in a["values"]
                ]
                group.append(_AxisDef(key=key, values=values, kind=str(a.get("kind", "values"))))
            sweep._groups.append(group)
        return sweep

    def __repr__(self) -> str:
        parts = [
            " x ".join(f"{a.key!r}[{len(a.values)}]" for a in g)
            if len(g) == 1
            else "zip(" + ", ".join(f"{a.key!r}[{len(a.values)}]" for a in g) + ")"
            for g in self._groups
        ]
        return f"Sweep({' x '.join(parts) or 'no axes'}, runs={self._runs})"

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _make_axis(key: InputKey, values: Iterable[Any], kind: str) -> _AxisDef:
        if isinstance(values, str | bytes):
            raise SweepError(
                f"values for {key!r} must be a list, not a single {type(values).__name__}"
            )
        try:
            vals = list(values)
        except TypeError as exc:
            raise SweepError(f"values for {key!r} must be a list of values") from exc
        if not vals:
            raise SweepError(f"the axis {key!r} has no values")
        if not isinstance(key, int | str | tuple) or isinstance(key, bool):
            raise SweepError(
                f"an axis is named by an input index, label, 'node_id.field' or (node_id, field); "
                f"got {key!r}"
            )
        return _AxisDef(key=key, values=vals, kind=kind)

    @staticmethod
    def _check_group_lengths(group: Sequence[_AxisDef]) -> None:
        lengths = {len(a.values) for a in group}
        if len(lengths) > 1:
            desc = ", ".join(f"{a.key!r} has {len(a.values)}" for a in group)
            raise SweepError(f"zipped axes must have the same number of values: {desc}")

    # ------------------------------------------------------------------ planning

    def plan(self, handle: HandleLike) -> SweepPlan:
        """Resolve every axis against ``handle`` and build the plan (nothing is sent).

        Each value is coerced and validated through the input's field; a bad value, an
        unknown input or an input that cannot take batch data raises :class:`SweepError`
        naming the input.
        """
        return _plan(self, handle)


# --------------------------------------------------------------------------- the plan


# --------------------------------------------------------------------------- resolution


def _input_label(inp: Any) -> str:
    label = getattr(inp, "label", None)
    return str(label) if label else str(getattr(inp, "field_name", "?"))


def _describe_key(key: InputKey) -> str:
    return f"{key[0]}.{key[1]}" if isinstance(key, tuple) else repr(key)


def _resolve(handle: HandleLike, key: InputKey) -> Any:
    try:
        return handle.input(key)
    except InvokeAIError as exc:
        raise SweepError(f"sweep axis {_describe_key(key)}: {exc}") from exc
    except (KeyError, IndexError, LookupError, ValueError, TypeError) as exc:
        raise SweepError(f"sweep axis {_describe_key(key)}: no such input ({exc})") from exc


def _coerce(inp: Any, value: Any, name: str) -> Any:
    if isinstance(value, LocalImage):
        return value
    fld = getattr(inp, "field", None)
    if fld is None or not hasattr(fld, "copy_field"):
        api = value
    else:
        tmp = fld.copy_field()
        try:
            tmp.set_value(value)
            api = tmp.to_api_value()
        except InvokeAIError as exc:
            raise SweepError(f"input {name}: bad sweep value {value!r}: {exc}") from exc
        except (ValueError, TypeError) as exc:
            raise SweepError(f"input {name}: bad sweep value {value!r}: {exc}") from exc
    if api is None:
        raise SweepError(f"input {name}: the sweep value {value!r} leaves the input unset")
    if not _is_batch_value(api):
        raise SweepError(
            f"input {name} cannot be swept on the server: InvokeAI batch data carries strings, "
            f"numbers and images, not {type(api).__name__} values like {api!r}"
        )
    return api


def _plan(sweep: Sweep, handle: HandleLike) -> SweepPlan:
    template = handle.build_payload()
    batch = template.get("batch")
    if not isinstance(batch, dict) or not isinstance(batch.get("graph"), dict):
        raise SweepError("the workflow handle's payload has no batch.graph")
    graph = batch["graph"]
    nodes = graph.get("nodes") or {}
    fed = {
        (str(e["destination"]["node_id"]), str(e["destination"]["field"]))
        for e in graph.get("edges") or ()
        if isinstance(e, Mapping) and isinstance(e.get("destination"), Mapping)
    }
    gui_data: list[list[Mapping[str, Any]]] = list(batch.get("data") or [])
    template = dict(template)
    template["batch"] = {k: v for k, v in batch.items() if k not in ("data", "batch_id", "runs")}

    inputs = list(handle.list_inputs())
    by_field = {(str(i.node_id), str(i.field_name)): i for i in inputs}
    label_counts: dict[str, int] = {}
    for i in inputs:
        label_counts[_input_label(i)] = label_counts.get(_input_label(i), 0) + 1

    def display_name(inp: Any) -> str:
        lab = _input_label(inp)
        return lab if label_counts.get(lab, 0) <= 1 else f"{lab} [{inp.input_index}]"

    axes: list[AxisSpec] = []
    used: dict[tuple[str, str], str] = {}
    group_no = 0
    for gd in gui_data:
        for datum in gd:
            nid, fname = str(datum["node_path"]), str(datum["field_name"])
            inp = by_field.get((nid, fname)) or _batch_node_input(handle, inputs, nid, fname)
            name = display_name(inp) if inp is not None else f"{nid}.{fname}"
            items = tuple(datum.get("items") or ())
            axes.append(
                AxisSpec(
                    name=name,
                    label=_input_label(inp) if inp is not None else fname,
                    index=int(inp.input_index) if inp is not None else None,
                    node_id=nid,
                    field_name=fname,
                    values=items,
                    display=items,
                    group=group_no,
                    source="workflow",
                )
            )
            used[(nid, fname)] = name
        group_no += 1

    for group in sweep._groups:
        sizes = {len(a.values) for a in group}
        if len(sizes) > 1:
            Sweep._check_group_lengths(group)
        for ad in group:
            inp = _resolve(handle, ad.key)
            nid, fname = str(inp.node_id), str(inp.field_name)
            name = display_name(inp)
            where = f"[{inp.input_index}] {_input_label(inp)!r} ({nid}.{fname})"
            if (nid, fname) in used:
                raise SweepError(
                    f"input {where} is swept twice (also as {used[(nid, fname)]!r}); "
                    "give each input one axis"
                )
            if nid not in nodes:
                raise SweepError(
                    f"input {where} is not on a node the server runs (a batch or generator "
                    "node?); sweep the input it feeds instead"
                )
            if (nid, fname) in fed:
                raise SweepError(
                    f"input {where} is fed by a connection in the graph; a sweep value would "
                    "be ignored"
                )
            if ad.kind == "images":
                for v in ad.values:
                    if not isinstance(v, LocalImage):
                        raise SweepError(f"input {where}: {v!r} is not a local image")
            values = tuple(_coerce(inp, v, where) for v in ad.values)
            _check_uniform(values, where)
            axes.append(
                AxisSpec(
                    name=name,
                    label=_input_label(inp),
                    index=int(inp.input_index),
                    node_id=nid,
                    field_name=fname,
                    values=values,
                    display=tuple(ad.values),
                    group=group_no,
                    source="sweep",
                    kind=ad.kind,
                )
            )
            used[(nid, fname)] = name
        group_no += 1
    return SweepPlan(template=template, axes=axes, runs=sweep.runs * int(batch.get("runs") or 1))


def _batch_node_input(handle: Any, inputs: Sequence[Any], nid: str, fname: str) -> Any:
    """The Form input of the GUI batch node feeding ``nid.fname`` (its items), if any."""
    definition = getattr(handle, "definition", None)
    for e in getattr(definition, "edges", None) or ():
        if getattr(e, "target", None) == nid and getattr(e, "target_handle", None) == fname:
            for i in inputs:
                if str(i.node_id) == str(e.source):
                    return i
    return None


def _check_uniform(values: Sequence[Any], where: str) -> None:
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return
    kinds = {type(v).__name__ if not isinstance(v, LocalImage) else "dict" for v in values}
    if len(kinds) > 1:
        raise SweepError(f"input {where}: all sweep values must have one type, got {sorted(kinds)}")


def iter_chunks(lo: int, hi: int, size: int) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` pairs covering ``lo..hi-1`` in steps of ``size``."""
    for start in range(lo, hi, max(1, size)):
        yield start, min(hi, start + max(1, size))
