"""Output nodes, their images and downloads (part of ``WorkflowExecutionMixin``).

The mapping itself is pure (:mod:`invokeai_py_client.workflow.outputs`); this adds the
handle's view of it and the downloads.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from invokeai_py_client.workflow._job import _HandleJob
from invokeai_py_client.workflow.outputs import map_outputs

if TYPE_CHECKING:
    from invokeai_py_client.workflow.handle import IvkWorkflowInput


class _OutputsMixin(_HandleJob):
    """``list_outputs()``, ``map_outputs_to_images()`` and the downloads."""

    # ------------------------------------------------------------------ outputs

    def list_outputs(self) -> list[IvkWorkflowInput]:
        """The Form's board inputs of output-capable nodes (``IvkWorkflowInput`` objects).

        Example::

            index_by_node = {o.node_id: o.input_index for o in wf.list_outputs()}
        """
        output_ids = {o.node_id for o in self.output_nodes()}
        return [
            inp
            for inp in self.list_inputs()
            if inp.field_name == "board" and inp.node_id in output_ids
        ]

    def map_outputs_to_images(self, queue_item: Mapping[str, Any]) -> list[dict[str, Any]]:
        """One record per output node with the image names it produced in ``queue_item``.

        Keys: ``node_id``, ``node_type``, ``label``, ``input_index`` (its exposed board input,
        None when the board is not in the Form), ``board_id`` (``"none"`` = uncategorized),
        ``tier`` (``"output"`` or ``"intermediate"``), ``image_names``. See
        :mod:`invokeai_py_client.workflow.outputs`.

        Example::

            for m in wf.map_outputs_to_images(item):
                print(m["node_id"], m["board_id"], m["image_names"])
        """
        return map_outputs(queue_item, self.output_nodes())

    def download_image(self, image_name: str, full_resolution: bool = True) -> bytes:
        """One image file by name, in one request (no board listing)."""
        return self._require_client().images.download_image(image_name, full_resolution)

    def download_outputs(
        self,
        queue_item: Mapping[str, Any],
        dest_dir: str | Path,
        *,
        include_intermediate: bool = False,
    ) -> list[Path]:
        """Download the images of ``queue_item``'s output nodes into ``dest_dir``.

        One GET per image, by name; files keep the server's image names. Intermediate nodes
        are skipped unless ``include_intermediate``. Returns the written paths.

        Example::

            paths = wf.download_outputs(item, "out/")
        """
        client = self._require_client()
        target = Path(dest_dir)
        target.mkdir(parents=True, exist_ok=True)
        paths: list[Path] = []
        for rec in self.map_outputs_to_images(queue_item):
            if rec["tier"] != "output" and not include_intermediate:
                continue
            for name in rec["image_names"]:
                path = target / name
                path.write_bytes(client.images.download_image(name))
                paths.append(path)
        return paths
