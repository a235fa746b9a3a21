"""High-level helpers that run workflows packaged with the library: :class:`QuickClient`.

The workflows live in ``quick/workflows/`` in GUI export format (open them in the InvokeAI
GUI to see what runs). They go through the same workflow handle API as user workflows.

Example::

    from invokeai_py_client import InvokeAIClient
    from invokeai_py_client.quick import QuickClient

    qc = QuickClient(InvokeAIClient.from_url("http://127.0.0.1:9090"))
    copy = qc.copy_image_to_board("abc.png", board_id="none")
    img = qc.generate_image_sdxl_t2i("a lighthouse at dusk", "blurry", 1024, 1024, 25)
"""

from __future__ import annotations

import json
import random
from importlib import resources
from typing import TYPE_CHECKING, Any

from ..dnn_model import BaseDnnModelType, DnnModelType, IvkDnnModel
from ..exceptions import InvokeAIError, ModelNotFoundError
from ..images import UNCATEGORIZED_BOARD_ID, IvkImage
from ..ivk_fields import SchedulerName
from ..ivk_fields.model_conversion import to_ivk_model_field
from ..workflow import WorkflowDefinition

if TYPE_CHECKING:
    from ..client import InvokeAIClient
    from ..workflow import WorkflowHandle

__all__ = ["QuickClient", "load_packaged_workflow"]

COPY_WORKFLOW = "copy_image_to_board.json"
SDXL_T2I_WORKFLOW = "sdxl_text_to_image.json"

# input indices of the packaged workflows (their Form order)
_COPY_IMAGE, _COPY_BOARD = 0, 1
(
    _SDXL_MODEL,
    _SDXL_POSITIVE,
    _SDXL_NEGATIVE,
    _SDXL_WIDTH,
    _SDXL_HEIGHT,
    _SDXL_STEPS,
    _SDXL_CFG,
    _SDXL_SCHEDULER,
    _SDXL_SEED,
    _SDXL_BOARD,
) = range(10)


def load_packaged_workflow(name: str) -> WorkflowDefinition:
    """A workflow shipped in ``invokeai_py_client/quick/workflows``.

    Example::

        definition = load_packaged_workflow("copy_image_to_board.json")
    """
    ref = resources.files("invokeai_py_client.quick").joinpath("workflows", name)
    if not ref.is_file():
        raise InvokeAIError(f"no packaged workflow named {name!r}")
    return WorkflowDefinition.from_dict(json.loads(ref.read_text(encoding="utf-8")))


class QuickClient:
    """One-call helpers for common jobs, built on packaged workflows.

    Example::

        qc = QuickClient(client)
        img = qc.copy_image_to_board(name, board.board_id)
        print(img.image_name if img else "no such image")
    """

    def __init__(self, client: InvokeAIClient) -> None:
        self.client = client

    def _handle(self, name: str) -> WorkflowHandle:
        return self.client.workflow_repo.create_workflow(load_packaged_workflow(name))

    def _check_board(self, board_id: str | None) -> str:
        if board_id is None or board_id == UNCATEGORIZED_BOARD_ID:
            return UNCATEGORIZED_BOARD_ID
        self.client.board_repo.get_board(board_id)  # BoardError with a clear message if absent
        return board_id

    def _run_single_output(self, wf: WorkflowHandle, timeout: float) -> IvkImage | None:
        wf.submit_sync()
        item = wf.wait_for_completion_sync(timeout=timeout)
        names = [
            name
            for rec in wf.map_outputs_to_images(item)
            if rec.get("tier") == "output"
            for name in rec.get("image_names") or []
        ]
        if not names:
            return None
        return self.client.images.get_image(names[-1])

    # ------------------------------------------------------------------ copy

    def copy_image_to_board(
        self, image_name: str, board_id: str | None, *, timeout: float = 120.0
    ) -> IvkImage | None:
        """Save a copy of an existing image onto a board (``"none"`` = uncategorized).

        Returns the new image's record, or ``None`` when there is no image named
        ``image_name``. Raises :class:`BoardError` when the board does not exist.

        Example::

            copy = qc.copy_image_to_board("abc.png", board.board_id)
            assert copy.board_id == board.board_id
        """
        target = self._check_board(board_id)
        if self.client.images.try_get_image(image_name) is None:
            return None
        wf = self._handle(COPY_WORKFLOW)
        wf.set(_COPY_IMAGE, image_name)
        wf.set(_COPY_BOARD, target)
        return self._run_single_output(wf, timeout)

    # ------------------------------------------------------------------ SDXL text to image

    def find_sdxl_model(self, model_name: str | None = None) -> IvkDnnModel:
        """The SDXL main model to use: the one named ``model_name``, else the first by name.

        Raises :class:`ModelNotFoundError` saying what is installed when none fits.
        """
        models = self.client.dnn_model_repo.list_models(
            base=BaseDnnModelType.StableDiffusionXL, type=DnnModelType.Main
        )
        if not models:
            raise ModelNotFoundError(
                "no SDXL main model is installed on the server; install one (e.g. "
                "client.dnn_model_repo.install_model('/path/to/sdxl.safetensors')) "
                "and try again"
            )
        if model_name is None:
            return sorted(models, key=lambda m: m.name.lower())[0]
        for match in (
            [m for m in models if m.name == model_name],
            [m for m in models if m.name.lower() == model_name.lower()],
        ):
            if match:
                return match[0]
        raise ModelNotFoundError(
            f"no SDXL main model named {model_name!r}; installed SDXL main models: "
            f"{sorted(m.name for m in models)}"
        )

    def prepare_sdxl_t2i(
        self,
        model: IvkDnnModel | dict[str, Any],
        positive_prompt: str,
        negative_prompt: str = "",
        width: int = 1024,
        height: int = 1024,
        steps: int = 30,
        *,
        cfg_scale: float = 7.5,
        scheduler: SchedulerName | str = SchedulerName.EULER,
        seed: int | None = None,
        board_id: str | None = None,
    ) -> WorkflowHandle:
        """The packaged SDXL text-to-image workflow with every input set (not submitted).

        Use it for a dry run (``wf.build_payload()``) or to submit yourself.

        Example::

            wf = qc.prepare_sdxl_t2i(model, "a red fox", steps=20, seed=7)
            body = wf.build_payload()
        """
        if width % 8 or height % 8:
            raise InvokeAIError(
                f"SDXL width and height must be multiples of 8, got {width}x{height}"
            )
        wf = self._handle(SDXL_T2I_WORKFLOW)
        wf.set_input_value(_SDXL_MODEL, to_ivk_model_field(model))
        wf.set(_SDXL_POSITIVE, positive_prompt)
        wf.set(_SDXL_NEGATIVE, negative_prompt)
        wf.set(_SDXL_WIDTH, width)
        wf.set(_SDXL_HEIGHT, height)
        wf.set(_SDXL_STEPS, steps)
        wf.set(_SDXL_CFG, cfg_scale)
        wf.set(
            _SDXL_SCHEDULER, scheduler.value if isinstance(scheduler, SchedulerName) else scheduler
        )
        wf.set(_SDXL_SEED, seed if seed is not None else random.randint(0, 2**32 - 1))
        wf.set(_SDXL_BOARD, board_id or UNCATEGORIZED_BOARD_ID)
        return wf

    def generate_image_sdxl_t2i(
        self,
        positive_prompt: str,
        negative_prompt: str = "",
        width: int = 1024,
        height: int = 1024,
        steps: int = 30,
        model_name: str | None = None,
        scheduler: SchedulerName | str = SchedulerName.EULER,
        board_id: str | None = None,
        *,
        cfg_scale: float = 7.5,
        seed: int | None = None,
        timeout: float = 600.0,
    ) -> IvkImage | None:
        """Generate one SDXL image from text and return its record.

        Uses the SDXL main model named ``model_name`` (else the first installed one).
        Raises :class:`ModelNotFoundError` when no SDXL main model is installed,
        :class:`BoardError` for an unknown board, and the job errors of
        ``wait_for_completion_sync`` when the run fails.

        Example::

            img = qc.generate_image_sdxl_t2i(
                "A cinematic sunset over snowy mountains", "blurry, low quality",
                1024, 1024, 30, model_name="juggernautXL", board_id=board.board_id,
            )
            Path("out.png").write_bytes(client.images.download_image(img.image_name))
        """
        target = self._check_board(board_id)
        model = self.find_sdxl_model(model_name)
        wf = self.prepare_sdxl_t2i(
            model,
            positive_prompt,
            negative_prompt,
            width,
            height,
            steps,
            cfg_scale=cfg_scale,
            scheduler=scheduler,
            seed=seed,
            board_id=target,
        )
        return self._run_single_output(wf, timeout)
