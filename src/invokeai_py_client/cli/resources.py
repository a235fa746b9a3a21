"""``ivk boards``, ``ivk images``, ``ivk models`` and ``ivk queue``: the server's resources."""

from __future__ import annotations

# typer declares options as argument defaults:
# ruff: noqa: B008
import glob
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from ._common import STATE, CliError, connected, emit, info, server_urls, stdout, summary

if TYPE_CHECKING:
    from ..board import BoardHandle
    from ..client import InvokeAIClient

SERVER_OPT = typer.Option(
    None, "--server", help="InvokeAI server URL (default: INVOKEAI_URL, then 127.0.0.1:9090)."
)
JSON_OPT = typer.Option(False, "--json", help="JSON lines output ending with a summary object.")


def _url(server: str | None) -> str:
    return server_urls([server] if server else None)[0]


def find_board(client: InvokeAIClient, board: str) -> BoardHandle:
    """A board by id, else by exact name (``none`` / ``Uncategorized`` = uncategorized)."""
    from ..exceptions import BoardError

    repo = client.board_repo
    if board in ("none", "uncategorized"):
        return repo.get_uncategorized_handle()
    try:
        return repo.get_board_handle_by_name(board)
    except BoardError:
        pass
    try:
        return repo.get_board_handle(board)
    except BoardError:
        names = ", ".join(repr(b.board_name) for b in repo.list_boards()[:15]) or "none"
        raise CliError(f"no board named or with id {board!r}; boards: {names}") from None


# --------------------------------------------------------------------------- boards

boards_app = typer.Typer(help="List, create, delete and download boards.", no_args_is_help=True)


@boards_app.command("list")
def boards_list(server: str | None = SERVER_OPT, json_out: bool = JSON_OPT) -> None:
    """List the boards (with the uncategorized one) and their image counts."""
    STATE.json_mode = json_out
    with connected(_url(server)) as client:
        boards = client.board_repo.list_boards(include_uncategorized=True)
    if json_out:
        for b in boards:
            emit({"type": "board", **b.model_dump(mode="json")})
        summary(True, boards=len(boards))
        return
    table = Table(title=f"{len(boards)} boards")
    table.add_column("board_id")
    table.add_column("name")
    table.add_column("images", justify="right")
    for b in boards:
        table.add_row(b.board_id, b.board_name, str(b.image_count))
    stdout.print(table)


@boards_app.command("create")
def boards_create(
    name: str = typer.Argument(..., help="Board name."),
    exist_ok: bool = typer.Option(
        False, "--exist-ok", help="Reuse a board with that name instead of making another."
    ),
    server: str | None = SERVER_OPT,
    json_out: bool = JSON_OPT,
) -> None:
    """Create a board (names need not be unique; --exist-ok reuses one)."""
    STATE.json_mode = json_out
    with connected(_url(server)) as client:
        repo = client.board_repo
        handle = repo.get_or_create_board(name) if exist_ok else repo.create_board(name)
    info(f"board {handle.board_name!r}: {handle.board_id}")
    summary(True, board_id=handle.board_id, board_name=handle.board_name)


@boards_app.command("delete")
def boards_delete(
    board: str = typer.Argument(..., help="Board name or id."),
    delete_images: bool = typer.Option(
        False,
        "--delete-images",
        help="Also delete its images (default: they become uncategorized).",
    ),
    server: str | None = SERVER_OPT,
    json_out: bool = JSON_OPT,
) -> None:
    """Delete a board (its images become uncategorized unless --delete-images)."""
    STATE.json_mode = json_out
    with connected(_url(server)) as client:
        handle = find_board(client, board)
        client.board_repo.delete_board(handle.board_id, delete_images=delete_images)
    info(f"deleted board {handle.board_name!r} ({handle.board_id})")
    summary(True, board_id=handle.board_id, deleted_images=delete_images)


@boards_app.command("download")
def boards_download(
    board: str = typer.Argument(..., help="Board name or id (`none` = uncategorized)."),
    out: Path = typer.Option(..., "--out", "-o", help="Directory to write the images to."),
    server: str | None = SERVER_OPT,
    json_out: bool = JSON_OPT,
    jobs: int = typer.Option(4, "--jobs", "-j", min=1, max=32, help="Parallel downloads."),
) -> None:
    """Download every image of a board into a directory (existing files are kept)."""
    STATE.json_mode = json_out
    out.mkdir(parents=True, exist_ok=True)
    with connected(_url(server)) as client:
        handle = find_board(client, board)
        names = handle.list_image_names()
        todo = [n for n in names if not (out / n).is_file()]

        def fetch(name: str) -> str:
            data = handle.download_image(name, full_resolution=True)
            tmp = out / (name + ".part")
            tmp.write_bytes(data)
            tmp.replace(out / name)
            return name

        with ThreadPoolExecutor(max_workers=jobs) as pool:
            for name in pool.map(fetch, todo):
                if json_out:
                    emit({"type": "image", "image_name": name, "path": str(out / name)})
    info(f"{len(todo)} downloaded, {len(names) - len(todo)} already there: {out}")
    summary(True, board_id=handle.board_id, images=len(names), downloaded=len(todo), out_dir=out)


# --------------------------------------------------------------------------- images

images_app = typer.Typer(help="Upload images.", no_args_is_help=True)


@images_app.command("upload")
def images_upload(
    files: list[str] = typer.Argument(..., help="Image files or glob patterns."),
    board: str | None = typer.Option(
        None, "--board", help="Board name (created if missing) or id; default uncategorized."
    ),
    server: str | None = SERVER_OPT,
    json_out: bool = JSON_OPT,
) -> None:
    """Upload image files, optionally onto a board; prints each server image name."""
    STATE.json_mode = json_out
    paths: list[Path] = []
    for pattern in files:
        hits = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        if not hits:
            raise CliError(f"no file matches {pattern!r}", code="file_not_found")
        for h in hits:
            p = Path(h)
            if not p.is_file():
                raise CliError(f"no such file: {h}", code="file_not_found")
            paths.append(p)
    with connected(_url(server)) as client:
        if board is None:
            handle = client.board_repo.get_uncategorized_handle()
        else:
            try:
                handle = find_board(client, board)
            except CliError:
                handle = client.board_repo.create_board(board)
        uploaded: list[dict[str, Any]] = []
        for p in paths:
            img = handle.upload_image(p)
            row = {"file": str(p), "image_name": img.image_name, "board_id": handle.board_id}
            uploaded.append(row)
            if json_out:
                emit({"type": "image", **row})
            else:
                info(f"{p} -> {img.image_name}")
    summary(True, uploaded=len(uploaded), board_id=handle.board_id)


# --------------------------------------------------------------------------- models

models_app = typer.Typer(help="Installed models.", no_args_is_help=True)


@models_app.command("list")
def models_list(
    base: list[str] = typer.Option([], "--base", help="Only these bases (sd-1, sdxl, flux...)."),
    type_: str | None = typer.Option(None, "--type", help="Only this type (main, lora...)."),
    name: str | None = typer.Option(None, "--name", help="Only this exact name."),
    server: str | None = SERVER_OPT,
    json_out: bool = JSON_OPT,
) -> None:
    """List installed models, optionally filtered by base and type."""
    STATE.json_mode = json_out
    with connected(_url(server)) as client:
        models = client.dnn_model_repo.list_models(base=base or None, type=type_, name=name)
    if json_out:
        for m in models:
            emit({"type": "model", **m.model_dump(mode="json")})
        summary(True, models=len(models))
        return
    table = Table(title=f"{len(models)} models")
    for col in ("name", "base", "type", "format", "key"):
        table.add_column(col)
    for m in models:
        table.add_row(m.name, m.base_str, m.type_str, str(m.format or ""), m.key)
    stdout.print(table)


# --------------------------------------------------------------------------- queue

queue_app = typer.Typer(help="The server's session queue.", no_args_is_help=True)


@queue_app.command("status")
def queue_status(server: str | None = SERVER_OPT, json_out: bool = JSON_OPT) -> None:
    """Counts of pending / in progress / completed / failed / canceled items."""
    STATE.json_mode = json_out
    with connected(_url(server)) as client:
        status = client.queue.queue_status()
    queue = status.get("queue", status)
    if json_out:
        emit({"type": "queue", **status})
        summary(True, **{k: queue.get(k) for k in _COUNTS if k in queue})
        return
    info("  ".join(f"{k}: {queue.get(k, 0)}" for k in _COUNTS))
    proc = status.get("processor") or {}
    if proc:
        info(
            f"processor started: {proc.get('is_started')}, processing: {proc.get('is_processing')}"
        )


_COUNTS = ("pending", "in_progress", "completed", "failed", "canceled", "total")


@queue_app.command("cancel")
def queue_cancel(
    batch: list[str] = typer.Option([], "--batch", help="Cancel the items of this batch id."),
    item: list[int] = typer.Option([], "--item", help="Cancel this queue item id."),
    all_: bool = typer.Option(False, "--all", help="Cancel every pending and running item."),
    server: str | None = SERVER_OPT,
    json_out: bool = JSON_OPT,
) -> None:
    """Cancel queue items: by batch id, by item id, or --all."""
    STATE.json_mode = json_out
    if not (batch or item or all_):
        raise CliError("say what to cancel: --batch ID, --item ID or --all")
    with connected(_url(server)) as client:
        q = client.queue
        canceled = 0
        if batch:
            res = q.cancel_by_batch_ids(batch)
            canceled += int(res.get("canceled", 0) or 0)
        for item_id in item:
            q.cancel_item(item_id)
            canceled += 1
        if all_:
            res = client.http.request(
                "PUT", "/api/v1/queue/default/cancel_all_except_current"
            ).json()
            canceled += int(res.get("canceled", 0) or 0)
            current = client.http.get_json("/api/v1/queue/default/current")
            if isinstance(current, dict) and current.get("item_id") is not None:
                q.cancel_item(int(current["item_id"]))
                canceled += 1
    info(f"canceled {canceled} item(s)")
    summary(True, canceled=canceled)


def register(app: typer.Typer) -> None:
    """Add the resource groups to the app."""
    app.add_typer(boards_app, name="boards")
    app.add_typer(images_app, name="images")
    app.add_typer(models_app, name="models")
    app.add_typer(queue_app, name="queue")
