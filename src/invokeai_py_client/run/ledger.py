"""The run ledger: a SQLite file (``ledger.sqlite``) in the output directory.

Everything a run does is committed here as it happens, so a process killed at any point can
be resumed without losing or repeating work:

- ``meta``: the plan (workflow JSON, sweep, axes, payload template), the run id and its
  ``destination`` (a run-unique string every queue item of the run carries), the server URL,
  uploaded local images (content hash -> server image name).
- ``batches``: one row per ``enqueue_batch`` request, written with state ``sending`` BEFORE
  the POST (client-chosen ``batch_id``, the run range ``lo..hi-1`` it asks for), then
  ``sent`` with the item ids and the range the server really took; ``absent`` when a resume
  found the server never received it.
- ``items``: each queue item of the run: its run index (matched from the server's
  ``field_values``), status, parameters, timestamps, error, image names, ``superseded``
  when a retry replaced it, and ``known_at``: the client's UTC time (:func:`utc_now`) when
  the run first learned the item had finished (by event, poll or adoption).
- ``files``: each downloaded image (written to a temporary name and renamed before the row
  is committed, so a partial file is never recorded as done).

SQLite runs in WAL mode with ``synchronous=NORMAL``: every commit survives the process being
killed (only an OS crash could lose the last commits).

Example::

    ledger = Ledger.open(out_dir)
    ledger.get_meta("run_id")
    ledger.batches()
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from invokeai_py_client.exceptions import RunError

__all__ = ["LEDGER_NAME", "BatchRow", "FileRow", "ItemRow", "Ledger", "utc_now"]

LEDGER_NAME = "ledger.sqlite"
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS batches (
    batch_id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    lo INTEGER NOT NULL,
    hi INTEGER NOT NULL,
    state TEXT NOT NULL,
    requested INTEGER,
    enqueued INTEGER,
    item_ids TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS items (
    item_id INTEGER PRIMARY KEY,
    batch_id TEXT NOT NULL,
    run_index INTEGER,
    status TEXT NOT NULL,
    params TEXT,
    param_indices TEXT,
    started_at TEXT,
    completed_at TEXT,
    error_type TEXT,
    error_message TEXT,
    images TEXT,
    superseded INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL,
    known_at TEXT
);
CREATE INDEX IF NOT EXISTS items_run ON items (run_index);
CREATE TABLE IF NOT EXISTS files (
    image_name TEXT PRIMARY KEY,
    item_id INTEGER NOT NULL,
    run_index INTEGER NOT NULL,
    node_id TEXT NOT NULL,
    path TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    downloaded_at TEXT NOT NULL
);
"""


def utc_now() -> str:
    """The current UTC time, ISO 8601 with milliseconds."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True, slots=True)
class BatchRow:
    """One enqueue request of the run."""

    batch_id: str
    seq: int
    lo: int
    hi: int
    state: str  # sending | sent | absent
    requested: int | None
    enqueued: int | None
    item_ids: list[int]


@dataclass(slots=True)
class ItemRow:
    """One queue item of the run, as last seen."""

    item_id: int
    batch_id: str
    run_index: int | None
    status: str
    params: dict[str, Any] | None = None
    param_indices: dict[str, Any] | None = None
    started_at: str | None = None
    completed_at: str | None = None
    error_type: str | None = None
    error_message: str | None = None
    images: list[dict[str, str]] | None = None  # [{"node_id", "image_name"}], None = unknown
    superseded: bool = False
    known_at: str | None = None  # client UTC time the run learned the item finished


@dataclass(frozen=True, slots=True)
class FileRow:
    """One downloaded image."""

    image_name: str
    item_id: int
    run_index: int
    node_id: str
    path: str
    bytes: int
    downloaded_at: str


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _dumps(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"), default=str)


class Ledger:
    """The SQLite ledger of one run directory (see the module docstring).

    Use :meth:`create` for a new run and :meth:`open` to resume one. All methods commit.
    """

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path = path
        self._conn = conn

    # ------------------------------------------------------------------ open / create

    @classmethod
    def _connect(cls, path: Path) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(_SCHEMA)
            columns = {r[1] for r in conn.execute("PRAGMA table_info(items)")}
            if "known_at" not in columns:  # a ledger written before known_at existed
                conn.execute("ALTER TABLE items ADD COLUMN known_at TEXT")
        except sqlite3.Error as exc:
            raise RunError(f"cannot open the run ledger {str(path)!r}: {exc}") from exc
        return conn

    @classmethod
    def create(cls, out_dir: str | Path, meta: Mapping[str, Any]) -> Ledger:
        """Start a new ledger in ``out_dir`` (which must not hold one already)."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        path = out / LEDGER_NAME
        if path.exists():
            raise RunError(
                f"{str(out)!r} already holds a run (ledger.sqlite); resume it with "
                "resume(out_dir) or choose an empty output directory"
            )
        ledger = cls(path, cls._connect(path))
        with ledger._tx():
            ledger._conn.execute(
                "INSERT INTO meta VALUES ('schema_version', ?)", (json.dumps(SCHEMA_VERSION),)
            )
            for key, value in meta.items():
                ledger._conn.execute(
                    "INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value))
                )
        return ledger

    @classmethod
    def open(cls, out_dir: str | Path) -> Ledger:
        """Open the ledger of an existing run directory."""
        path = Path(out_dir) / LEDGER_NAME
        if not path.is_file():
            raise RunError(
                f"{str(out_dir)!r} holds no run ledger ({LEDGER_NAME}); nothing to resume"
            )
        ledger = cls(path, cls._connect(path))
        version = ledger.get_meta("schema_version")
        if version != SCHEMA_VERSION:
            raise RunError(f"unsupported ledger schema {version!r} in {str(path)!r}")
        return ledger

    def close(self) -> None:
        """Close the database (idempotent)."""
        try:
            self._conn.close()
        except sqlite3.Error as exc:
            raise RunError(f"cannot close the ledger: {exc}") from exc

    class _Tx:
        def __init__(self, conn: sqlite3.Connection) -> None:
            self.conn = conn

        def __enter__(self) -> None:
            self.conn.execute("BEGIN")

        def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
            if exc_type is None:
                self.conn.execute("COMMIT")
            else:
                self.conn.execute("ROLLBACK")

    def _tx(self) -> Ledger._Tx:
        return Ledger._Tx(self._conn)

    # ------------------------------------------------------------------ meta

    def get_meta(self, key: str, default: Any = None) -> Any:
        """A meta value (JSON-decoded), or ``default``."""
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else _loads(row[0])

    def set_meta(self, key: str, value: Any) -> None:
        """Set a meta value (JSON-encoded)."""
        self._conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    # ------------------------------------------------------------------ batches

    def batch_sending(self, batch_id: str, lo: int, hi: int) -> None:
        """Record an enqueue about to be sent (BEFORE the POST)."""
        now = utc_now()
        seq = self._conn.execute("SELECT COALESCE(MAX(seq), -1) + 1 FROM batches").fetchone()[0]
        self._conn.execute(
            "INSERT INTO batches VALUES (?, ?, ?, ?, 'sending', ?, NULL, NULL, ?, ?)",
            (batch_id, seq, lo, hi, hi - lo, now, now),
        )

    def batch_sent(self, batch_id: str, enqueued: int, item_ids: Sequence[int]) -> None:
        """Record the server's answer: the range really taken is ``lo..lo+enqueued-1``."""
        self._conn.execute(
            "UPDATE batches SET state = 'sent', enqueued = ?, hi = lo + ?, item_ids = ?, "
            "updated_at = ? WHERE batch_id = ?",
            (enqueued, enqueued, _dumps(sorted(int(i) for i in item_ids)), utc_now(), batch_id),
        )

    def batch_absent(self, batch_id: str) -> None:
        """Record that the server never received this batch (its runs are sent again)."""
        self._conn.execute(
            "UPDATE batches SET state = 'absent', enqueued = 0, hi = lo, updated_at = ? "
            "WHERE batch_id = ?",
            (utc_now(), batch_id),
        )

    def batches(self, state: str | None = None) -> list[BatchRow]:
        """Batches in send order (optionally only those in ``state``)."""
        sql = "SELECT batch_id, seq, lo, hi, state, requested, enqueued, item_ids FROM batches"
        args: tuple[Any, ...] = ()
        if state is not None:
            sql += " WHERE state = ?"
            args = (state,)
        rows = self._conn.execute(sql + " ORDER BY seq", args).fetchall()
        return [
            BatchRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], list(_loads(r[7]) or []))
            for r in rows
        ]

    def sent_until(self) -> int:
        """The first run index no sent or sending batch covers (runs are sent in order)."""
        row = self._conn.execute(
            "SELECT COALESCE(MAX(hi), 0) FROM batches WHERE state IN ('sent', 'sending')"
        ).fetchone()
        return int(row[0])

    # ------------------------------------------------------------------ items

    def upsert_items(self, rows: Iterable[ItemRow]) -> None:
        """Insert or update items (one transaction)."""
        now = utc_now()
        with self._tx():
            self._conn.executemany(
                "INSERT INTO items (item_id, batch_id, run_index, status, params, param_indices, "
                "started_at, completed_at, error_type, error_message, images, superseded, "
                "updated_at, known_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(item_id) DO UPDATE SET batch_id = excluded.batch_id, "
                "run_index = excluded.run_index, status = excluded.status, "
                "params = excluded.params, param_indices = excluded.param_indices, "
                "started_at = excluded.started_at, completed_at = excluded.completed_at, "
                "error_type = excluded.error_type, error_message = excluded.error_message, "
                "images = excluded.images, superseded = excluded.superseded, "
                "updated_at = excluded.updated_at, known_at = excluded.known_at",
                [
                    (
                        r.item_id,
                        r.batch_id,
                        r.run_index,
                        r.status,
                        _dumps(r.params),
                        _dumps(r.param_indices),
                        r.started_at,
                        r.completed_at,
                        r.error_type,
                        r.error_message,
                        _dumps(r.images),
                        1 if r.superseded else 0,
                        now,
                        r.known_at,
                    )
                    for r in rows
                ],
            )

    def items(self, *, include_superseded: bool = True) -> list[ItemRow]:
        """Every item of the run, by item id."""
        sql = (
            "SELECT item_id, batch_id, run_index, status, params, param_indices, started_at, "
            "completed_at, error_type, error_message, images, superseded, known_at FROM items"
        )
        if not include_superseded:
            sql += " WHERE superseded = 0"
        return [
            ItemRow(
                item_id=r[0],
                batch_id=r[1],
                run_index=r[2],
                status=r[3],
                params=_loads(r[4]),
                param_indices=_loads(r[5]),
                started_at=r[6],
                completed_at=r[7],
                error_type=r[8],
                error_message=r[9],
                images=_loads(r[10]),
                superseded=bool(r[11]),
                known_at=r[12],
            )
            for r in self._conn.execute(sql + " ORDER BY item_id")
        ]

    # ------------------------------------------------------------------ files

    def add_file(self, row: FileRow) -> None:
        """Record a downloaded file (call after the file was renamed into place)."""
        self._conn.execute(
            "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                row.image_name,
                row.item_id,
                row.run_index,
                row.node_id,
                row.path,
                row.bytes,
                row.downloaded_at,
            ),
        )

    def delete_file(self, image_name: str) -> None:
        """Forget a downloaded file (it is missing or partial on disk)."""
        self._conn.execute("DELETE FROM files WHERE image_name = ?", (image_name,))

    def files(self) -> dict[str, FileRow]:
        """Downloaded files by server image name."""
        return {
            r[0]: FileRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6])
            for r in self._conn.execute(
                "SELECT image_name, item_id, run_index, node_id, path, bytes, downloaded_at "
                "FROM files"
            )
        }

    def iter_files(self) -> Iterator[FileRow]:
        """Downloaded files in run order."""
        for r in self._conn.execute(
            "SELECT image_name, item_id, run_index, node_id, path, bytes, downloaded_at "
            "FROM files ORDER BY run_index, node_id, image_name"
        ):
            yield FileRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6])
