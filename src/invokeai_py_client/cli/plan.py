"""From ``ivk run`` options to a checked :class:`~invokeai_py_client.sweep.SweepPlan`.

Everything here is checked before anything is sent: an unknown or ambiguous KEY, a value of
the wrong type or out of bounds, a bad range, a zip of unequal lengths, a glob that matches
nothing: one line, exit code 2.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..exceptions import FieldValueError, InvokeAIError, SweepError
from ._common import CliError, field_kind, parse_value, split_assignment, value_range

if TYPE_CHECKING:
    from ..sweep import Sweep, SweepPlan
    from ..workflow import IvkWorkflowInput, WorkflowHandle


def input_key(text: str) -> int | str:
    """A KEY as typed: an index (digits) or a label / ``node_id.field``."""
    t = text.strip()
    return int(t) if t.isdigit() else t


def find_input(handle: WorkflowHandle, key: str, option: str) -> IvkWorkflowInput:
    """The input a KEY names, or a one-line error that lists what would be accepted."""
    try:
        return handle.input(input_key(key))
    except InvokeAIError as exc:
        raise CliError(f"{option} {key!r}: {exc}", code="input_error") from None


def _accepts(inp: IvkWorkflowInput) -> str:
    from .inputs import constraints

    extra = constraints(inp.field)
    kind = field_kind(inp.field)
    article = "an" if kind[:1] in "aeiou" else "a"
    return f"{article} {kind}" + (f" ({extra})" if extra else "")


def convert(inp: IvkWorkflowInput, text: str, option: str) -> Any:
    """Parse one command-line value for ``inp`` and check it against the field."""
    where = f"{option} {inp.describe()}"
    try:
        value = parse_value(text, inp.field)
        probe = inp.field.copy_field()
        probe.set_value(value)
    except FieldValueError as exc:
        msg = str(exc).split(": ", 1)[-1] if str(exc).startswith("Ivk") else str(exc)
        raise CliError(
            f"{where}: bad value {text!r}: {msg}; expected {_accepts(inp)}", code="input_error"
        ) from None
    return value


def sweep_values(inp: IvkWorkflowInput, spec: str, option: str = "--sweep") -> list[Any]:
    """``V1,V2,...`` | ``@file`` (one value per line) | ``START:STOP[:STEP]`` -> values."""
    kind = field_kind(inp.field)
    if spec.startswith("@"):
        path = Path(spec[1:])
        if not path.is_file():
            raise CliError(f"{option} {inp.describe()}: no such file {str(path)!r}")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CliError(f"{option} {inp.describe()}: cannot read {path}: {exc}") from None
        raw = [line.strip() for line in text.splitlines() if line.strip()]
        if not raw:
            raise CliError(f"{option} {inp.describe()}: {path} holds no value")
        return [convert(inp, r, option) for r in raw]
    if kind in ("integer", "float"):
        try:
            rng = value_range(spec, kind)
        except CliError as exc:
            raise CliError(f"{option} {inp.describe()}: {exc.message}") from None
        if rng is not None:
            if not rng:
                raise CliError(f"{option} {inp.describe()}: the range {spec!r} is empty")
            for v in rng:
                convert(inp, str(v), option)
            return rng
    parts = [p for p in spec.split(",")]
    if any(not p.strip() for p in parts):
        raise CliError(
            f"{option} {inp.describe()}: empty value in {spec!r} "
            "(use V1,V2,... or START:STOP:STEP or @file)"
        )
    return [convert(inp, p, option) for p in parts]


@dataclass
class RunSpec:
    """The ``ivk run`` options that shape the sweep (as typed)."""

    sets: list[str] = field(default_factory=list)
    sweeps: list[str] = field(default_factory=list)
    zips: list[str] = field(default_factory=list)
    runs: int = 1
    seeds: str | None = None
    images: list[str] = field(default_factory=list)


def _seed_input(handle: WorkflowHandle, spec: str) -> tuple[IvkWorkflowInput, int]:
    key, sep, count = spec.rpartition("=")
    if not sep:
        count, key = spec, ""
    try:
        n = int(count)
    except ValueError:
        raise CliError(f"--seeds expects N or KEY=N, got {spec!r}") from None
    if n < 1:
        raise CliError(f"--seeds: N must be at least 1, got {n}")
    if key:
        return find_input(handle, key, "--seeds"), n
    hits = [
        i
        for i in handle.list_inputs()
        if field_kind(i.field) == "integer"
        and ("seed" in i.field_name.lower() or "seed" in (i.label or "").lower())
    ]
    if len(hits) == 1:
        return hits[0], n
    if not hits:
        raise CliError(
            "--seeds: this workflow's Form has no seed input; name the integer input to fill: "
            "--seeds KEY=N"
        )
    names = "; ".join(h.describe() for h in hits)
    raise CliError(f"--seeds: several seed inputs ({names}); pick one: --seeds KEY=N")


def build_sweep(handle: WorkflowHandle, spec: RunSpec) -> tuple[Sweep, SweepPlan]:
    """Apply ``--set`` to the handle, build the :class:`Sweep`, and plan it (nothing sent)."""
    from ..sweep import Sweep

    if spec.runs < 1:
        raise CliError(f"--runs must be at least 1, got {spec.runs}")
    for item in spec.sets:
        key, text = split_assignment(item, "--set")
        inp = find_input(handle, key, "--set")
        value = convert(inp, text, "--set")
        try:
            handle.set(inp.input_index, value)
        except FieldValueError as exc:
            raise CliError(str(exc), code="input_error") from None

    axes: list[tuple[IvkWorkflowInput, list[Any], str]] = []  # (input, values, kind)
    for item in spec.sweeps:
        key, text = split_assignment(item, "--sweep")
        inp = find_input(handle, key, "--sweep")
        axes.append((inp, sweep_values(inp, text), "values"))
    for item in spec.images:
        key, pattern = split_assignment(item, "--images")
        inp = find_input(handle, key, "--images")
        if field_kind(inp.field) != "image":
            raise CliError(
                f"--images {inp.describe()}: that input is a {field_kind(inp.field)}, not an image"
            )
        files = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        files = [f for f in files if Path(f).is_file()]
        if not files:
            raise CliError(f"--images {inp.describe()}: no file matches {pattern!r}")
        axes.append((inp, [Path(f) for f in files], "images"))
    seed_axis: tuple[IvkWorkflowInput, int] | None = None
    if spec.seeds is not None:
        seed_axis = _seed_input(handle, spec.seeds)

    seen: dict[tuple[str, str], str] = {}
    for inp, _, _ in axes:
        if inp.key in seen:
            raise CliError(f"{inp.describe()} is swept twice; give each input one --sweep")
        seen[inp.key] = inp.label

    # zip groups: lists of positions in `axes`
    grouped: dict[int, int] = {}  # axis position -> group number
    groups: list[list[int]] = []
    for z in spec.zips:
        keys = [k for k in z.split(",") if k.strip()]
        if len(keys) < 2:
            raise CliError(f"--zip expects two or more swept inputs, KEY,KEY; got {z!r}")
        members: list[int] = []
        for k in keys:
            inp = find_input(handle, k, "--zip")
            pos = next((i for i, a in enumerate(axes) if a[0].key == inp.key), None)
            if pos is None:
                raise CliError(f"--zip {inp.describe()}: that input is not swept (add --sweep)")
            if pos in grouped or pos in members:
                raise CliError(f"--zip {inp.describe()}: that input is already zipped")
            members.append(pos)
        lengths = {len(axes[p][1]) for p in members}
        if len(lengths) > 1:
            desc = ", ".join(f"{axes[p][0].label!r} has {len(axes[p][1])}" for p in members)
            raise CliError(f"--zip: zipped inputs need the same number of values: {desc}")
        for p in members:
            grouped[p] = len(groups)
        groups.append(members)

    sweep = Sweep(runs=spec.runs)
    done_groups: set[int] = set()
    try:
        for pos, (inp, values, kind) in enumerate(axes):
            g = grouped.get(pos)
            if g is None:
                if kind == "images":
                    sweep.images(inp.input_index, values)
                else:
                    sweep.axis(inp.input_index, values)
            elif g not in done_groups:
                done_groups.add(g)
                sweep.zip(None, *[(axes[p][0].input_index, axes[p][1]) for p in groups[g]])
        if seed_axis is not None:
            sweep.seeds(seed_axis[0].input_index, n=seed_axis[1])
        plan = sweep.plan(handle)
    except SweepError as exc:
        raise CliError(str(exc), code="sweep_error") from None
    return sweep, plan


def plan_summary(plan: SweepPlan) -> dict[str, Any]:
    """A JSON-ready description of a plan (run count and axes)."""
    from .._sheet_data import format_value

    axes = []
    for group_no, group in enumerate(plan.groups):
        for a in group:
            axes.append(
                {
                    "name": a.name,
                    "label": a.label,
                    "index": a.index,
                    "node_id": a.node_id,
                    "field_name": a.field_name,
                    "values": [format_value(v) for v in a.display],
                    "group": group_no,
                    "zipped": len(group) > 1,
                    "source": a.source,
                }
            )
    return {
        "count": plan.count,
        "runs": plan.runs,
        "combinations": plan.combinations,
        "axes": axes,
    }
