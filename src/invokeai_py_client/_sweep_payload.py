"""The exact ``enqueue_batch`` bodies of a plan: :class:`PlanPayloads`, a base of ``SweepPlan``.

Three forms: the compact one (:meth:`PlanPayloads.payload`: zipped groups as inner lists that
the server multiplies, one request for the whole plan), a range of runs
(:meth:`PlanPayloads.chunk_payload`, used when the queue has less room than the plan needs)
and any list of runs (:meth:`PlanPayloads.runs_payload`); the last two send each run's values
explicitly as one zipped inner list with ``runs`` 1.

Example::

    plan.payload(batch_id="b1")              # the whole plan, one request
    plan.chunk_payload(0, 100, batch_id="b2")
    plan.runs_payload([4, 9], batch_id="b3")
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from invokeai_py_client._sweep_values import AxisSpec, wire
from invokeai_py_client.exceptions import SweepError

__all__ = ["PlanPayloads"]


class PlanPayloads:
    """The request bodies of a plan (mixed into :class:`~invokeai_py_client.sweep.SweepPlan`).

    Reads the plan's ``template``, ``axes``, ``runs``, ``count``, ``groups`` and
    ``run_values``; holds no state of its own.
    """

    __slots__ = ()

    #: whether :meth:`payload` may send the compact form (False: a subset of runs, whose
    #: values are always sent run by run)
    _compact: ClassVar[bool] = True

    if TYPE_CHECKING:
        template: dict[str, Any]
        axes: list[AxisSpec]
        runs: int

        @property
        def count(self) -> int: ...

        @property
        def groups(self) -> list[list[AxisSpec]]: ...

        def run_values(self, run_index: int) -> list[tuple[AxisSpec, Any, Any]]: ...

        def _check_run(self, run_index: int) -> None: ...

    def batch_data(self) -> list[list[dict[str, Any]]]:
        """The compact ``batch.data``: zipped groups as inner lists (they multiply)."""
        return [
            [
                {
                    "node_path": a.node_id,
                    "field_name": a.field_name,
                    "items": [wire(v) for v in a.values],
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
        if not self._compact:
            return self.chunk_payload(
                0,
                self.count,
                batch_id=batch_id,
                destination=destination,
                origin=origin,
                prepend=prepend,
            )
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
        return self._zipped(body, range(lo, hi), hi - lo)

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
        return self._zipped(body, run_indices, len(run_indices))

    def _zipped(self, body: dict[str, Any], run_indices: Iterable[int], n: int) -> dict[str, Any]:
        """``body`` with these ``n`` runs' values as one zipped inner list (``runs`` 1)."""
        if not self.axes:
            body["batch"]["runs"] = n
            body["batch"].pop("data", None)
            return body
        columns: list[list[Any]] = [[] for _ in self.axes]
        for r in run_indices:
            for i, (_, value, _) in enumerate(self.run_values(r)):
                columns[i].append(wire(value))
        body["batch"]["data"] = [
            [
                {"node_path": a.node_id, "field_name": a.field_name, "items": col}
                for a, col in zip(self.axes, columns, strict=True)
            ]
        ]
        body["batch"]["runs"] = 1
        return body

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
