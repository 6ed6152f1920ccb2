"""The run registry: runs, node executions, metrics, in SQLite inside the store.

Several processes (search workers, Ray tasks) write at once: WAL mode and a busy timeout make that
safe; every write is its own short transaction so a kill loses at most the row being written.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    file TEXT NOT NULL,
    experiment TEXT,
    command TEXT,
    overrides TEXT,
    started REAL NOT NULL,
    finished REAL,
    status TEXT NOT NULL DEFAULT 'running'
);
CREATE TABLE IF NOT EXISTS node_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id INTEGER NOT NULL,
    node TEXT NOT NULL,
    key TEXT NOT NULL,
    op TEXT NOT NULL,
    status TEXT NOT NULL,          -- ran | cached | failed | cancelled
    started REAL,
    seconds REAL,
    bindings TEXT,                 -- JSON of params bound (search trials)
    error TEXT,
    pid INTEGER
);
CREATE INDEX IF NOT EXISTS node_runs_run ON node_runs(run_id);
CREATE TABLE IF NOT EXISTS metrics (
    run_id INTEGER NOT NULL,
    node TEXT NOT NULL,
    key TEXT NOT NULL,
    name TEXT NOT NULL,
    step INTEGER,
    value REAL
);
CREATE INDEX IF NOT EXISTS metrics_key ON metrics(key, name);
CREATE TABLE IF NOT EXISTS node_state (    -- the last key seen for each node: dry-run explains changes
    file TEXT NOT NULL,
    node TEXT NOT NULL,
    key TEXT NOT NULL,
    material TEXT NOT NULL,
    PRIMARY KEY (file, node)
);
CREATE TABLE IF NOT EXISTS results (        -- declared results of a run, for `expc show`
    run_id INTEGER NOT NULL,
    node TEXT NOT NULL,
    key TEXT NOT NULL,
    kind TEXT,
    summary TEXT,
    type TEXT                      -- the node's type expression (`split[data]`), for summaries
);
CREATE TABLE IF NOT EXISTS file_hashes (    -- content digests of input files (expc.interpreter.hashing)
    path TEXT PRIMARY KEY,
    dev INTEGER NOT NULL,
    ino INTEGER NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    algo TEXT NOT NULL,
    digest TEXT NOT NULL,
    hashed REAL NOT NULL           -- when (time.time()), for people reading the table
);
"""


class Runs:
    def __init__(self, store_root: str | Path):
        self.path = Path(store_root) / "runs.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(self.path), timeout=60, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA busy_timeout=60000")
        self.db.executescript(_SCHEMA)
        _add_column(self.db, "results", "type", "TEXT")  # stores made before result types were kept

    def close(self) -> None:
        self.db.close()

    # -- writes ------------------------------------------------------------------------------------

    def start_run(self, file: str, experiment: str, command: str, overrides: list[str]) -> int:
        cur = self.db.execute(
            "INSERT INTO runs(file, experiment, command, overrides, started) VALUES (?,?,?,?,?)",
            (file, experiment, command, json.dumps(overrides), time.time()),
        )
        return int(cur.lastrowid)

    def finish_run(self, run_id: int, status: str) -> None:
        self.db.execute("UPDATE runs SET finished=?, status=? WHERE id=?", (time.time(), status, run_id))

    def node(self, run_id: int, node: str, key: str, op: str, status: str, started: float | None = None,
             seconds: float | None = None, bindings: dict | None = None, error: str | None = None) -> None:
        self.db.execute(
            "INSERT INTO node_runs(run_id, node, key, op, status, started, seconds, bindings, error, pid) "
            "VALUES (?,?,?,?,?,?,?,?,?,?)",
            (run_id, node, key, op, status, started, seconds, json.dumps(bindings or {}, sort_keys=True),
             error, os.getpid()),
        )

    def metric(self, run_id: int, node: str, key: str, name: str, value: float, step: int | None) -> None:
        self.db.execute(
            "INSERT INTO metrics(run_id, node, key, name, step, value) VALUES (?,?,?,?,?,?)",
            (run_id, node, key, name, step, float(value)),
        )

    def remember(self, file: str, node: str, key: str, material: str) -> None:
        self.db.execute(
            "INSERT INTO node_state(file, node, key, material) VALUES (?,?,?,?) "
            "ON CONFLICT(file, node) DO UPDATE SET key=excluded.key, material=excluded.material",
            (file, node, key, material),
        )

    def result(self, run_id: int, node: str, key: str, kind: str | None, summary: Any,
               type: str | None = None) -> None:
        self.db.execute(
            "INSERT INTO results(run_id, node, key, kind, summary, type) VALUES (?,?,?,?,?,?)",
            (run_id, node, key, kind, json.dumps(summary, default=str), type),
        )

    def remember_file_hash(self, path: str, dev: int, ino: int, size: int, mtime_ns: int, algo: str,
                           digest: str) -> None:
        self.db.execute(
            "INSERT INTO file_hashes(path, dev, ino, size, mtime_ns, algo, digest, hashed) VALUES (?,?,?,?,?,?,?,?) "
            "ON CONFLICT(path) DO UPDATE SET dev=excluded.dev, ino=excluded.ino, size=excluded.size, "
            "mtime_ns=excluded.mtime_ns, algo=excluded.algo, digest=excluded.digest, hashed=excluded.hashed",
            (path, _i64(dev), _i64(ino), size, mtime_ns, algo, digest, time.time()),
        )

    # -- reads -------------------------------------------------------------------------------------

    def file_hash(self, path: str, dev: int, ino: int, size: int, mtime_ns: int, algo: str) -> str | None:
        """The digest kept for this version of the file (same path, device, inode, size and mtime)."""
        row = self.db.execute(
            "SELECT digest FROM file_hashes WHERE path=? AND dev=? AND ino=? AND size=? AND mtime_ns=? AND algo=?",
            (path, _i64(dev), _i64(ino), size, mtime_ns, algo),
        ).fetchone()
        return row[0] if row else None

    def last_state(self, file: str, node: str) -> tuple[str, str] | None:
        row = self.db.execute("SELECT key, material FROM node_state WHERE file=? AND node=?", (file, node)).fetchone()
        return (row[0], row[1]) if row else None

    def list_runs(self, limit: int = 50) -> list[tuple]:
        return self.db.execute(
            "SELECT r.id, r.file, r.experiment, r.status, r.started, r.finished, "
            "(SELECT COUNT(*) FROM node_runs n WHERE n.run_id=r.id AND n.status='ran'), "
            "(SELECT COUNT(*) FROM node_runs n WHERE n.run_id=r.id AND n.status='cached') "
            "FROM runs r ORDER BY r.id DESC LIMIT ?",
            (limit,),
        ).fetchall()

    def run_row(self, run_id: int | None) -> tuple | None:
        if run_id is None:
            return self.db.execute("SELECT * FROM runs ORDER BY id DESC LIMIT 1").fetchone()
        return self.db.execute("SELECT * FROM runs WHERE id=?", (run_id,)).fetchone()

    def node_runs(self, run_id: int) -> list[tuple]:
        return self.db.execute(
            "SELECT node, key, op, status, seconds, bindings, error FROM node_runs WHERE run_id=? ORDER BY id",
            (run_id,),
        ).fetchall()

    def results(self, run_id: int) -> list[tuple]:
        return self.db.execute(
            "SELECT node, key, kind, summary FROM results WHERE run_id=? ORDER BY rowid", (run_id,)
        ).fetchall()

    def typed_results(self, run_id: int) -> list[tuple]:
        """(node, key, kind, type, summary) of a run's declared results; type is None for old runs."""
        return self.db.execute(
            "SELECT node, key, kind, type, summary FROM results WHERE run_id=? ORDER BY rowid", (run_id,)
        ).fetchall()

    def runs_of_key(self, key: str) -> list[tuple]:
        """(node, status, seconds, run_id) of every execution of a key, oldest first."""
        return self.db.execute(
            "SELECT node, status, seconds, run_id FROM node_runs WHERE key=? ORDER BY id", (key,)
        ).fetchall()

    def metrics_for(self, key: str, name: str | None = None) -> list[tuple]:
        q = "SELECT name, step, value FROM metrics WHERE key=?"
        args: list[Any] = [key]
        if name:
            q += " AND name=?"
            args.append(name)
        return self.db.execute(q + " ORDER BY rowid", args).fetchall()


def _i64(n: int) -> int:
    """An unsigned 64-bit number (some file systems' inode numbers) as SQLite's signed INTEGER."""
    return n - (1 << 64) if n >= 1 << 63 else n


def _add_column(db: sqlite3.Connection, table: str, column: str, decl: str) -> None:
    """Add a column an older store lacks; another process may add it at the same moment."""
    if any(row[1] == column for row in db.execute(f"PRAGMA table_info({table})")):
        return
    try:
        db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {decl}")
    except sqlite3.OperationalError as e:
        if "duplicate column" not in str(e):
            raise
