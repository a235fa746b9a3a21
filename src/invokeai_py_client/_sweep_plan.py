"""The resolved form of a sweep: :class:`SweepPlan` (pure; see :mod:`invokeai_py_client.sweep`).

A plan holds the payload template, the axes (resolved inputs with their API values) and
``runs``; it gives the run count, each run's values and parameters, the canonical key that
matches a queue item's ``field_values`` to its run, and the exact ``enqueue_batch`` bodies
(compact, a range of runs, or any list of runs). :class:`SubsetPlan` is some runs of a plan.

Example::

    plan = Sweep().axis("Width", [32, 64]).plan(wf)
    plan.count, plan.run_params(1), plan.payload(batch_id="b1")
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from invokeai_py_client.exceptions import SweepError

__all__ = [
    "AxisSpec",
    "LocalImage",
    "SubsetPlan",
    "SweepPlan",
    "canonical_value",
    "params_from_field_values",
]


@dataclass(frozen=True, slots=True)
class LocalImage:
    """A local image file used as a sweep value; uploaded once per content hash.

    ``sha256`` is the hex digest of the file's bytes: two files with the same content are
    uploaded once.
    """

    path: str
    sha256: str

    @classmethod
    def from_path(cls, path: str | os.PathLike[str]) -> LocalImage:
        """Hash ``path`` (raises :class:`SweepError` when it cannot be read)."""
        p = Path(path)
        digest = hashlib.sha256()
        try:
            with p.open("rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(chunk)
        except OSError as exc:
            raise SweepError(f"cannot read image file {str(p)!r}: {exc.strerror or exc}") from exc
        return cls(path=str(p), sha256=digest.hexdigest())

    def placeholder(self) -> dict[str, str]:
        """The value shown in a dry run before the file is uploaded."""
        return {"image_name": f"<upload:{self.sha256[:12]}:{Path(self.path).name}>"}


_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def canonical_value(value: Any) -> str:
    """A canonical text form of a batch value, used to match ``field_values`` to runs.

    Numbers compare by value (``4`` and ``4.0`` are the same), dicts by sorted keys.
    """
    if isinstance(value, str):
        return _ENCODER.encode(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        f = float(value)
        return str(int(f)) if f.is_integer() and abs(f) < 2**53 else repr(f)
    return _ENCODER.encode(_canon(value))


def _canon(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        f = float(value)
        return int(f) if f.is_integer() and abs(f) < 2**53 else f
    if isinstance(value, list | tuple):
        return [_canon(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _canon(v) for k, v in value.items()}
    return value


@dataclass(frozen=True, slots=True)
class AxisSpec:
    """One resolved axis (or GUI batch datum) of a plan.

    ``values`` are the API values sent (``LocalImage`` placeholders until uploaded);
    ``display`` the values as the user gave them (for names and the manifest).
    ``index`` is the input's index in the Form, or None for a GUI batch datum not in the Form.
    ``group`` is the position of its inner list in ``batch.data``; ``source`` is ``"sweep"``
    or ``"workflow"`` (a GUI batch / generator node).
    """

    name: str
    label: str
    index: int | None
    node_id: str
    field_name: str
    values: tuple[Any, ...]
    display: tuple[Any, ...]
    group: int
    source: str = "sweep"
    kind: str = "values"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form (used in ``run.json`` and the ledger)."""
        return {
            "name": self.name,
            "label": self.label,
            "index": self.index,
            "node_id": self.node_id,
            "field_name": self.field_name,
            "values": [_jsonable(v) for v in self.values],
            "display": [_jsonable(v) for v in self.display],
            "group": self.group,
            "source": self.source,
            "kind": self.kind,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AxisSpec:
        """Inverse of :meth:`to_dict`."""
        return cls(
            name=str(d["name"]),
            label=str(d["label"]),
            index=d.get("index"),
            node_id=str(d["node_id"]),
            field_name=str(d["field_name"]),
            values=tuple(_from_jsonable(v) for v in d["values"]),
            display=tuple(_from_jsonable(v) for v in d["display"]),
            group=int(d["group"]),
            source=str(d.get("source", "sweep")),
            kind=str(d.get("kind", "values")),
        )


def _wire(v: Any) -> Any:
    """The value as sent: a local image not uploaded yet shows as a placeholder name."""
    return v.placeholder() if isinstance(v, LocalImage) else v


def _jsonable(v: Any) -> Any:
    if isinstance(v, LocalImage):
        return {"__local_image__": True, "path": v.path, "sha256": v.sha256}
    return v


def _from_jsonable(v: Any) -> Any:
    if isinstance(v, Mapping) and v.get("__local_image__"):
        return LocalImage(path=str(v["path"]), sha256=str(v["sha256"]))
    return v


@dataclass(slots=True)
class SweepPlan:
    """A resolved sweep: axes, run count and the exact payloads (pure).

    Attributes:
        template: the handle's enqueue_batch body without ``batch.data`` (and without
            batch_id / destination), the base of every payload.
        axes: every axis, GUI batch data first, then the sweep's, in ``batch.data`` order.
        runs: ``batch.runs``.
    """

    template: dict[str, Any]
    axes: list[AxisSpec]
    runs: int = 1
    _sizes: list[int] = field(default_factory=list, repr=False)
    _canon: list[list[str]] = field(default_factory=list, repr=False)
    _lookup: dict[tuple[str, str], tuple[AxisSpec, dict[str, Any]]] = field(
        default_factory=dict, repr=False
    )

    def __post_init__(self) -> None:
        sizes: dict[int, int] = {}
        for a in self.axes:
            sizes[a.group] = len(a.values)
        self._sizes = [sizes[g] for g in sorted(sizes)]
        # "node.field=" + canonical value, per axis and value position (keys are built often)
        self._canon = [
            [f"{a.node_id}.{a.field_name}={canonical_value(_wire(v))}" for v in a.values]
            for a in self.axes
        ]
        self._lookup = {}
        for a in self.axes:
            shown: dict[str, Any] = {}
            for v, d in zip(a.values, a.display, strict=True):
                shown.setdefault(canonical_value(_wire(v)), _display_param(v, d))
            self._lookup[(a.node_id, a.field_name)] = (a, shown)

    # ------------------------------------------------------------------ counts

    @property
    def combinations(self) -> int:
        """Distinct combinations (the product of the group sizes)."""
        return math.prod(self._sizes) if self._sizes else 1

    @property
    def count(self) -> int:
        """How many queue items (runs) the plan makes."""
        return self.combinations * self.runs

    @property
    def groups(self) -> list[list[AxisSpec]]:
        """Axes grouped as in ``batch.data`` (each inner list moves together)."""
        out: dict[int, list[AxisSpec]] = {}
        for a in self.axes:
            out.setdefault(a.group, []).append(a)
        return [out[g] for g in sorted(out)]

    @property
    def sweep_axes(self) -> list[AxisSpec]:
        """Every axis (GUI batch data included), as the manifest's ``params`` name them."""
        return list(self.axes)

    def pending_images(self) -> list[LocalImage]:
        """Local images still to upload (distinct by content hash)."""
        seen: dict[str, LocalImage] = {}
        for a in self.axes:
            for v in a.values:
                if isinstance(v, LocalImage):
                    seen.setdefault(v.sha256, v)
        return list(seen.values())

    def with_uploads(self, names: Mapping[str, str]) -> SweepPlan:
        """A copy where each ``LocalImage`` is replaced by ``{"image_name": names[sha256]}``."""
        axes = []
        for a in self.axes:
            values = []
            for v in a.values:
                if isinstance(v, LocalImage):
                    if v.sha256 not in names:
                        raise SweepError(f"no uploaded image name for {v.path!r}")
                    values.append({"image_name": names[v.sha256]})
                else:
                    values.append(v)
            axes.append(_replace_values(a, tuple(values)))
        return SweepPlan(template=self.template, axes=axes, runs=self.runs)

    def with_models(self, mapping: Mapping[str, Mapping[str, Any]]) -> SweepPlan:
        """A copy where each model identifier (template and values) whose key is in
        ``mapping`` names the mapped model instead (one server's keys; see
        :mod:`invokeai_py_client.dnn_model.per_server`)."""
        from invokeai_py_client.dnn_model.per_server import swap_models

        axes = [_replace_values(a, tuple(swap_models(list(a.values), mapping))) for a in self.axes]
        return SweepPlan(template=swap_models(self.template, mapping), axes=axes, runs=self.runs)

    # ------------------------------------------------------------------ per run

    def combo_of(self, run_index: int) -> int:
        """The combination index of a run (``run_index % combinations``)."""
        self._check_run(run_index)
        return run_index % self.combinations

    def group_positions(self, run_index: int) -> list[int]:
        """The value position in each group for a run (first group slowest)."""
        combo = self.combo_of(run_index)
        pos = []
        for size in reversed(self._sizes):
            pos.append(combo % size)
            combo //= size
        return list(reversed(pos))

    def run_values(self, run_index: int) -> list[tuple[AxisSpec, Any, Any]]:
        """``(axis, api value, display value)`` for every axis of one run."""
        positions = self.group_positions(run_index)
        return [(a, a.values[positions[a.group]], a.display[positions[a.group]]) for a in self.axes]

    def run_params(self, run_index: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """``(params by label, params by input index)`` of one planned run."""
        by_label: dict[str, Any] = {}
        by_index: dict[str, Any] = {}
        for a, value, display in self.run_values(run_index):
            shown = _display_param(value, display)
            by_label[a.name] = shown
            if a.index is not None:
                by_index[str(a.index)] = shown
        return by_label, by_index

    def run_key(self, run_index: int) -> str:
        """The canonical key of a run's values (equal to :meth:`key_of` of its item)."""
        positions = self.group_positions(run_index)
        return "|".join(sorted(self._canon[i][positions[a.group]] for i, a in enumerate(self.axes)))

    def key_of(self, field_values: Sequence[Mapping[str, Any]] | None) -> str:
        """The canonical key of a queue item's ``field_values`` (only this plan's fields)."""
        lookup = self._lookup
        parts = []
        for fv in field_values or ():
            nid, fname = str(fv.get("node_path")), str(fv.get("field_name"))
            if (nid, fname) in lookup:
                parts.append(f"{nid}.{fname}={canonical_value(fv.get('value'))}")
        return "|".join(sorted(parts))

    def runs_by_key(self, lo: int = 0, hi: int | None = None) -> dict[str, list[int]]:
        """``{key: [run indices ascending]}`` for the runs ``lo..hi-1``."""
        hi = self.count if hi is None else hi
        out: dict[str, list[int]] = {}
        if not self.axes:
            out[_key_from_pairs(())] = list(range(lo, hi))
            return out
        combos = self.combinations
        keys: dict[int, str] = {}
        for r in range(lo, hi):
            c = r % combos
            k = keys.get(c)
            if k is None:
                k = keys[c] = self.run_key(r)
            out.setdefault(k, []).append(r)
        return out

    def params_for(
        self, field_values: Sequence[Mapping[str, Any]] | None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """``(params by label, params by index)`` of an item, from its ``field_values``."""
        by_label: dict[str, Any] = {}
        by_index: dict[str, Any] = {}
        lookup = self._lookup
        for fv in field_values or ():
            hit = lookup.get((str(fv.get("node_path")), str(fv.get("field_name"))))
            if hit is None:
                continue
            a, shown_by_canon = hit
            value = fv.get("value")
            shown = shown_by_canon.get(canonical_value(value), value)
            by_label[a.name] = shown
            if a.index is not None:
                by_index[str(a.index)] = shown
        return by_label, by_index

    # ------------------------------------------------------------------ payloads

    def batch_data(self) -> list[list[dict[str, Any]]]:
        """The compact ``batch.data``: zipped groups as inner lists (they multiply)."""
        return [
            [
                {
                    "node_path": a.node_id,
                    "field_name": a.field_name,
                    "items": [_wire(v) for v in a.values],
                }
                for a in group
            ]
            for group in self.groups
        ]

    def payload(
        self,
        *,
        batch_id: str | None = None,
        destination: str | None = None,
        origin: str | None = None,
        prepend: bool = False,
    ) -> dict[str, Any]:
        """The exact ``enqueue_batch`` body for the whole plan (one request)."""
        body = self._base(batch_id, destination, origin, prepend)
        data = self.batch_data()
        body["batch"]["data"] = data or None
        body["batch"]["runs"] = self.runs
        if body["batch"]["data"] is None:
            del body["batch"]["data"]
        return body

    def chunk_payload(
        self,
        lo: int,
        hi: int,
        *,
        batch_id: str | None = None,
        destination: str | None = None,
        origin: str | None = None,
        prepend: bool = False,
    ) -> dict[str, Any]:
        """The body for the runs ``lo..hi-1`` only: one zipped inner list, ``runs`` 1.

        Used when the server's queue has less room than the plan needs.
        """
        if not 0 <= lo < hi <= self.count:
            raise SweepError(f"chunk {lo}..{hi} is outside the plan's 0..{self.count}")
        body = self._base(batch_id, destination, origin, prepend)
        if not self.axes:
            body["batch"]["runs"] = hi - lo
            body["batch"].pop("data", None)
            return body
        columns: list[list[Any]] = [[] for _ in self.axes]
        for r in range(lo, hi):
            for i, (_, value, _) in enumerate(self.run_values(r)):
                columns[i].append(_wire(value))
        body["batch"]["data"] = [
            [
                {"node_path": a.node_id, "field_name": a.field_name, "items": col}
                for a, col in zip(self.axes, columns, strict=True)
            ]
        ]
        body["batch"]["runs"] = 1
        return body

    def runs_payload(
        self,
        run_indices: Sequence[int],
        *,
        batch_id: str | None = None,
        destination: str | None = None,
        origin: str | None = None,
        prepend: bool = False,
    ) -> dict[str, Any]:
        """The body for any list of runs (one zipped inner list, ``runs`` 1), in that order."""
        if not run_indices:
            raise SweepError("no runs to send")
        for r in run_indices:
            self._check_run(r)
        body = self._base(batch_id, destination, origin, prepend)
        if not self.axes:
            body["batch"]["runs"] = len(run_indices)
            body["batch"].pop("data", None)
            return body
        columns: list[list[Any]] = [[] for _ in self.axes]
        for r in run_indices:
            for i, (_, value, _) in enumerate(self.run_values(r)):
                columns[i].append(_wire(value))
        body["batch"]["data"] = [
            [
                {"node_path": a.node_id, "field_name": a.field_name, "items": col}
                for a, col in zip(self.axes, columns, strict=True)
            ]
        ]
        body["batch"]["runs"] = 1
        return body

    def subset(self, run_indices: Sequence[int]) -> SubsetPlan:
        """A plan of only these runs (local run ``i`` is run ``run_indices[i]`` of this one)."""
        return SubsetPlan(self, run_indices)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form of the plan (the ledger's record)."""
        return {
            "template": self.template,
            "axes": [a.to_dict() for a in self.axes],
            "runs": self.runs,
            "count": self.count,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SweepPlan:
        """Inverse of :meth:`to_dict`."""
        plan = SweepPlan(
            template=dict(d["template"]),
            axes=[AxisSpec.from_dict(a) for a in d["axes"]],
            runs=int(d["runs"]),
        )
        if d.get("subset") is not None:
            return SubsetPlan(plan, list(d["subset"]))
        return plan

    def _base(
        self, batch_id: str | None, destination: str | None, origin: str | None, prepend: bool
    ) -> dict[str, Any]:
        body = copy.copy(self.template)
        batch = dict(body.get("batch", {}))
        body["batch"] = batch
        body["prepend"] = prepend
        if batch_id is not None:
            batch["batch_id"] = batch_id
        if destination is not None:
            batch["destination"] = destination
        if origin is not None:
            batch["origin"] = origin
        return body

    def _check_run(self, run_index: int) -> None:
        if not 0 <= run_index < self.count:
            raise SweepError(f"run index {run_index} is outside the plan's 0..{self.count - 1}")


class SubsetPlan(SweepPlan):
    """Some runs of a plan, renumbered ``0..n-1`` (a share of a run on one of several servers).

    Payloads are always the explicit, zipped form of those runs.

    Example::

        part = plan.subset([4, 5, 9])
        part.count                 # 3
        part.global_index(2)       # 9
    """

    def __init__(self, base: SweepPlan, run_indices: Sequence[int]) -> None:
        super().__init__(template=base.template, axes=base.axes, runs=base.runs)
        self.base = base
        self.index = [int(r) for r in run_indices]
        for r in self.index:
            base._check_run(r)

    @property
    def count(self) -> int:
        """How many runs this subset holds."""
        return len(self.index)

    def global_index(self, run_index: int) -> int:
        """The run's index in the whole plan."""
        return self.index[run_index]

    def combo_of(self, run_index: int) -> int:
        return self.base.combo_of(self.index[run_index])

    def group_positions(self, run_index: int) -> list[int]:
        return self.base.group_positions(self.index[run_index])

    def runs_by_key(self, lo: int = 0, hi: int | None = None) -> dict[str, list[int]]:
        hi = self.count if hi is None else hi
        out: dict[str, list[int]] = {}
        for r in range(lo, hi):
            out.setdefault(self.base.run_key(self.index[r]), []).append(r)
        return out

    def payload(
        self,
        *,
        batch_id: str | None = None,
        destination: str | None = None,
        origin: str | None = None,
        prepend: bool = False,
    ) -> dict[str, Any]:
        return self.chunk_payload(
            0,
            self.count,
            batch_id=batch_id,
            destination=destination,
            origin=origin,
            prepend=prepend,
        )

    def chunk_payload(
        self,
        lo: int,
        hi: int,
        *,
        batch_id: str | None = None,
        destination: str | None = None,
        origin: str | None = None,
        prepend: bool = False,
    ) -> dict[str, Any]:
        if not 0 <= lo < hi <= self.count:
            raise SweepError(f"chunk {lo}..{hi} is outside the plan's 0..{self.count}")
        return self.base.runs_payload(
            self.index[lo:hi],
            batch_id=batch_id,
            destination=destination,
            origin=origin,
            prepend=prepend,
        )

    def with_uploads(self, names: Mapping[str, str]) -> SubsetPlan:
        return SubsetPlan(self.base.with_uploads(names), self.index)

    def with_models(self, mapping: Mapping[str, Mapping[str, Any]]) -> SubsetPlan:
        return SubsetPlan(self.base.with_models(mapping), self.index)

    def to_dict(self) -> dict[str, Any]:
        return {**self.base.to_dict(), "subset": self.index}


def _replace_values(a: AxisSpec, values: tuple[Any, ...]) -> AxisSpec:
    return AxisSpec(
        name=a.name,
        label=a.label,
        index=a.index,
        node_id=a.node_id,
        field_name=a.field_name,
        values=values,
        display=a.display,
        group=a.group,
        source=a.source,
        kind=a.kind,
    )


def _display_param(value: Any, display: Any) -> Any:
    if isinstance(display, LocalImage):
        return Path(display.path).name
    if isinstance(value, Mapping) and "image_name" in value:
        return value["image_name"]
    return value


def _key_from_pairs(pairs: Iterable[tuple[str, str, Any]]) -> str:
    return "|".join(sorted(f"{n}.{f}={canonical_value(v)}" for n, f, v in pairs))


def params_from_field_values(
    field_values: Sequence[Mapping[str, Any]] | None, axes: Sequence[AxisSpec]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """An item's parameters from the ``field_values`` the server recorded for it.

    Returns ``(by label, by input index)``, e.g. ``({"Blur Radius": 4}, {"3": 4})``. Values
    for image inputs that came from local files are shown as the file name. Only this plan's
    axes are reported; an axis missing from ``field_values`` is left out.

    Example::

        item = client.queue.get_item(item_id)
        by_label, by_index = params_from_field_values(item["field_values"], plan.axes)
    """
    plan = SweepPlan(template={}, axes=list(axes))
    return plan.params_for(field_values)
