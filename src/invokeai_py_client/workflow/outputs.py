"""Pure output mapping: which images each output node of a workflow produced in a queue item.

An *output node* is a node whose type has a ``board`` input in the server's schema
(``save_image``, ``img_blur``, ``blank_image``, ``l2i``... every node that stores an image).
The mapping reads only the queue item the server returned:

- ``session.source_prepared_mapping`` maps each workflow node id to the ids of the nodes the
  server prepared from it (one per iteration when the node sits inside an ``iterate`` loop);
- ``session.results`` holds each prepared node's output (``image_output``,
  ``image_collection_output``...); its insertion order is the execution order, which orders
  the images of an iterated node;
- ``session.graph`` tells the board each node really used and whether it was intermediate.

Each record is a dict with the seeds' keys plus two more::

    {"node_id": str, "node_type": str, "label": str,
     "input_index": int | None,   # index of the node's exposed board input; None if not in the Form
     "board_id": str,             # the board id, or "none" for uncategorized
     "tier": "output" | "intermediate",   # is_intermediate false -> "output"
     "image_names": list[str]}

``input_index`` is None (not -1) for a node whose board is not exposed; the seeds' examples
use ``.get(node_id, -1)`` on their own lookup, which works either way.

Example::

    from invokeai_py_client.workflow.outputs import map_outputs

    for rec in map_outputs(queue_item, wf.output_nodes()):
        print(rec["node_id"], rec["tier"], rec["image_names"])
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

__all__ = ["OutputNodeLike", "image_names_in_result", "map_outputs", "output_image_names"]

UNCATEGORIZED = "none"


class OutputNodeLike(Protocol):
    """What the mapping needs to know about an output node (``WorkflowHandle.output_nodes()``)."""

    @property
    def node_id(self) -> str: ...

    @property
    def node_type(self) -> str: ...

    @property
    def label(self) -> str: ...

    @property
    def board(self) -> str | None: ...

    @property
    def input_index(self) -> int | None: ...


def image_names_in_result(result: Any) -> list[str]:
    """Image names in one invocation output, in order.

    Handles ``{"image": {"image_name"}}``, ``{"collection": [{"image_name"}, ...]}`` and any
    other top-level field holding an image reference or a list of them.

    Example::

        image_names_in_result({"type": "image_output", "image": {"image_name": "a.png"}})
        # ['a.png']
    """
    if not isinstance(result, Mapping):
        return []
    names: list[str] = []
    for key, value in result.items():
        if key in ("type", "output_meta"):
            continue
        if isinstance(value, Mapping):
            name = value.get("image_name")
            if isinstance(name, str):
                names.append(name)
        elif isinstance(value, list):
            for entry in value:
                if isinstance(entry, Mapping) and isinstance(entry.get("image_name"), str):
                    names.append(entry["image_name"])
    return names


def _session(queue_item: Mapping[str, Any]) -> Mapping[str, Any]:
    session = queue_item.get("session")
    return session if isinstance(session, Mapping) else {}


def _prepared_ids(session: Mapping[str, Any], node_id: str, order: Mapping[str, int]) -> list[str]:
    mapping = session.get("source_prepared_mapping")
    if not isinstance(mapping, Mapping):
        return []
    ids = mapping.get(node_id)
    if not isinstance(ids, Iterable) or isinstance(ids, str):
        return []
    # the server keeps these in a set: order them by execution (results insertion order)
    return sorted((str(i) for i in ids), key=lambda i: (order.get(i, len(order)), i))


def output_image_names(queue_item: Mapping[str, Any], node_id: str) -> list[str]:
    """The images one workflow node produced in this queue item, in execution order."""
    session = _session(queue_item)
    results = session.get("results")
    if not isinstance(results, Mapping):
        return []
    order = {str(k): n for n, k in enumerate(results)}
    names: list[str] = []
    for pid in _prepared_ids(session, node_id, order):
        names.extend(image_names_in_result(results.get(pid)))
    return names


def _board_from_graph(graph_node: Mapping[str, Any] | None) -> str | None:
    if graph_node is None or "board" not in graph_node:
        return None
    board = graph_node.get("board")
    if isinstance(board, Mapping) and isinstance(board.get("board_id"), str):
        return str(board["board_id"])
    return UNCATEGORIZED  # present but null: the node saved to uncategorized


def _board_from_node(board: str | None) -> str:
    return UNCATEGORIZED if board in (None, "", "none", "auto") else str(board)


def map_outputs(
    queue_item: Mapping[str, Any], output_nodes: Sequence[OutputNodeLike]
) -> list[dict[str, Any]]:
    """One record per output node (workflow order) with the images it produced.

    Nodes that did not run (a failed item) get an empty ``image_names``. The board and tier
    come from the graph the server ran when the queue item carries it, else from the node.
    """
    session = _session(queue_item)
    graph = session.get("graph")
    graph_nodes = graph.get("nodes") if isinstance(graph, Mapping) else None
    if not isinstance(graph_nodes, Mapping):
        graph_nodes = {}
    out: list[dict[str, Any]] = []
    for node in output_nodes:
        gnode = graph_nodes.get(node.node_id)
        gnode = gnode if isinstance(gnode, Mapping) else None
        board_id = _board_from_graph(gnode) or _board_from_node(node.board)
        intermediate = bool(gnode.get("is_intermediate", False)) if gnode is not None else False
        out.append(
            {
                "node_id": node.node_id,
                "node_type": node.node_type,
                "label": node.label,
                "input_index": node.input_index,
                "board_id": board_id,
                "tier": "intermediate" if intermediate else "output",
                "image_names": output_image_names(queue_item, node.node_id),
            }
        )
    return out
