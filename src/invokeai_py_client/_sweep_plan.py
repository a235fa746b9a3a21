"""The resolved form of a sweep: :class:`SweepPlan` (pure; see :mod:`invokeai_py_client.sweep`).

A plan holds the payload template, the axes (resolved inputs with their API values) and
``runs``; it gives the run count, each run's values and parameters, the canonical key that
matches a queue item's ``field_values`` to its run, and the exact ``enqueue_batch`` bodies
(compact, a range of runs, or any list of runs). :class:`SubsetPlan` is some runs of a plan.

The values and axes live in :mod:`._sweep_values` and the request bodies in
:mod:`._sweep_payload` (re-exported here and by :mod:`invokeai_py_client.sweep`).

Example::

    plan = Sweep().axis("Width", [32, 64]).plan(wf)
    plan.count, plan.run_params(1), plan.payload(batch_id="b1")
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from invokeai_py_client._sweep_payload import PlanPayloads
from invokeai_py_client._sweep_values import (
    AxisSpec,
    LocalImage,
    canonical_value,
    display_param,
    wire,
)
from invokeai_py_client.exceptions import SweepError

__all__ = [
    "AxisSpec",
    "LocalImage",
    "SubsetPlan",
    "SweepPlan",
    "canonical_value",
    "params_from_field_values",
]


@dataclass(slots=True)
class SweepPlan(PlanPayloads):
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
            [f"{a.node_id}.{a.field_name}={canonical_value(wire(v))}" for v in a.values]
            for a in self.axes
        ]
        self._lookup = {}
        for a in self.axes:
            shown: dict[str, Any] = {}
            for v, d in zip(a.values, a.display, strict=True):
                shown.setdefault(canonical_value(wire(v)), display_param(v, d))
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
            axes.append(dataclasses.replace(a, values=tuple(values)))
        return SweepPlan(template=self.template, axes=axes, runs=self.runs)

    def with_models(self, mapping: Mapping[str, Mapping[str, Any]]) -> SweepPlan:
        """A copy where each model identifier (template and values) whose key is in
        ``mapping`` names the mapped model instead (one server's keys; see
        :mod:`invokeai_py_client.dnn_model.per_server`)."""
        from invokeai_py_client.dnn_model.per_server import swap_models

        axes = [
            dataclasses.replace(a, values=tuple(swap_models(list(a.values), mapping)))
            for a in self.axes
        ]
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
            shown = display_param(value, display)
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
            out[""] = list(range(lo, hi))  # no axes: every run has the empty key
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

    def _check_run(self, run_index: int) -> None:
        if not 0 <= run_index < self.count:
            raise SweepError(f"run index {run_index} is outside the plan's 0..{self.count - 1}")


class SubsetPlan(SweepPlan):
    """Some runs of a plan, renumbered ``0..n-1`` (a share of a run on one of several servers).

    Payloads are always the explicit, zipped form of those runs (:meth:`payload` too).

    Example::

        part = plan.subset([4, 5, 9])
        part.count                 # 3
        part.global_index(2)       # 9
    """

    _compact = False

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

    def with_uploads(self, names: Mapping[str, str]) -> SubsetPlan:
        return SubsetPlan(self.base.with_uploads(names), self.index)

    def with_models(self, mapping: Mapping[str, Mapping[str, Any]]) -> SubsetPlan:
        return SubsetPlan(self.base.with_models(mapping), self.index)

    def to_dict(self) -> dict[str, Any]:
        return {**self.base.to_dict(), "subset": self.index}


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
