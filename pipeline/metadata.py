"""The lineage store: an SQLite file in the pipeline root (runs, executions, artifacts, events).

It plays the part ML Metadata plays in TFX, small enough to read with the `sqlite3` shell:

- `runs`: one row per `pipeline.run` invocation (status, exit code, effective config, code version)
- `executions`: one row per component per run (status running/complete/failed/cached, timings,
  input fingerprint, error, exit code, the scheduler's attempt number when a scheduler ran it, and
  for a cached one the execution whose outputs it reused)
- `artifacts`: what an execution wrote (URI, type, fingerprint, JSON properties such as counts,
  metrics or the pushed version)
- `events`: which execution read (`input`) and wrote (`output`) which artifact

An execution is recorded as `running` before its component starts, so a run killed half way
leaves a row that says so; the next run marks such rows `interrupted`.
"""

import contextlib
import datetime
import json
import sqlite3

from components.common.errors import DataError

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
  id TEXT PRIMARY KEY, started TEXT, ended TEXT, status TEXT, exit_code INTEGER,
  command TEXT, config TEXT, code_version TEXT, message TEXT);
CREATE TABLE IF NOT EXISTS executions (
  id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT, component TEXT, fingerprint TEXT,
  status TEXT, started TEXT, ended TEXT, seconds REAL, error TEXT, cached_from INTEGER,
  output_uri TEXT, summary TEXT);
CREATE TABLE IF NOT EXISTS artifacts (
  id INTEGER PRIMARY KEY AUTOINCREMENT, uri TEXT, type TEXT, fingerprint TEXT,
  properties TEXT, created TEXT);
CREATE TABLE IF NOT EXISTS events (
  execution_id INTEGER, artifact_id INTEGER, kind TEXT);
CREATE INDEX IF NOT EXISTS executions_by_fingerprint ON executions (component, fingerprint, status);
"""
# Columns added after the first release: a store written before them gains them when opened.
ADDED_COLUMNS = {"executions": {"exit_code": "INTEGER", "attempt": "INTEGER"}}


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Store:
    """Thin accessors over the SQLite file; every write is its own committed transaction."""

    def __init__(self, path: str):
        self.path = path
        self.db = sqlite3.connect(path, timeout=30, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        try:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.executescript(SCHEMA)
            self._add_columns()
            self.db.execute("PRAGMA quick_check").fetchone()
        except sqlite3.DatabaseError as e:
            self.db.close()
            raise DataError(
                f"the lineage store {path} is damaged ({e}): move it aside (e.g. mv {path} {path}.damaged) to "
                "start a new lineage; published outputs stay where they are, but the next run reuses none of them"
            ) from None

    def close(self):
        self.db.close()

    def _add_columns(self) -> None:
        for table, columns in ADDED_COLUMNS.items():
            have = {row["name"] for row in self.db.execute(f"PRAGMA table_info({table})")}
            for name, kind in columns.items():
                if name not in have:
                    self.db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")

    @contextlib.contextmanager
    def _tx(self):
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    # --- runs ---
    def start_run(self, run_id: str, command: str, config: dict, code_version: str) -> bool:
        """Open run `run_id`, or attach to it when it exists (a scheduler runs one step per process, each
        with the same run id): then its status is `running` again and `command` is added to its
        commands. Whatever a killed process left `running` is marked interrupted first. True when the
        run existed."""
        with self._tx() as db:
            db.execute(
                "UPDATE executions SET status='interrupted', error='the run was killed before it finished', "
                "exit_code=COALESCE(exit_code, 137) WHERE status='running'"
            )
            db.execute(
                "UPDATE runs SET status='interrupted', message='killed before it finished' WHERE status='running'"
            )
            if db.execute("SELECT 1 FROM runs WHERE id=?", (run_id,)).fetchone():
                db.execute(
                    "UPDATE runs SET status='running', ended=NULL, command=command || char(10) || ?, code_version=? "
                    "WHERE id=?",
                    (command, code_version, run_id),
                )
                return True
            db.execute(
                "INSERT INTO runs (id, started, status, command, config, code_version) VALUES (?,?,?,?,?,?)",
                (run_id, now(), "running", command, json.dumps(config, sort_keys=True), code_version),
            )
            return False

    def end_run(self, run_id: str, status: str, exit_code: int, message: str = "") -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE runs SET ended=?, status=?, exit_code=?, message=? WHERE id=?",
                (now(), status, exit_code, message, run_id),
            )

    def runs(self, limit: int = 50) -> list:
        return self.db.execute("SELECT * FROM runs ORDER BY started DESC LIMIT ?", (limit,)).fetchall()

    def run(self, run_id: str):
        """The run with this id or unique id prefix (as git takes commits), else None."""
        row = self.db.execute("SELECT * FROM runs WHERE id=?", (run_id,)).fetchone()
        if row is None:
            matches = self.runs_starting_with(run_id)
            row = self.run(matches[0]) if len(matches) == 1 else None
        return row

    def runs_starting_with(self, prefix: str) -> list:
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return [
            r["id"]
            for r in self.db.execute("SELECT id FROM runs WHERE id LIKE ? ESCAPE '\\' ORDER BY id", (escaped + "%",))
        ]

    # --- executions ---
    def start_execution(
        self, run_id: str, component: str, fingerprint: str, output_uri: str, attempt: int | None = None
    ) -> int:
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO executions (run_id, component, fingerprint, status, started, output_uri, attempt) "
                "VALUES (?,?,?,?,?,?,?)",
                (run_id, component, fingerprint, "running", now(), output_uri, attempt),
            )
            return cur.lastrowid

    def finish_execution(
        self,
        execution_id: int,
        status: str,
        seconds: float,
        summary: str = "",
        error: str = "",
        output_uri: str | None = None,
        exit_code: int = 0,
    ) -> None:
        """Close an execution; `output_uri` (when given) is where its output ended up; `exit_code` is the
        code the step stopped the run with (0: it let the run go on)."""
        with self._tx() as db:
            db.execute(
                "UPDATE executions SET status=?, ended=?, seconds=?, summary=?, error=?, exit_code=?, "
                "output_uri=COALESCE(?, output_uri) WHERE id=?",
                (status, now(), seconds, summary, error, exit_code, output_uri, execution_id),
            )

    def record_cached(
        self, run_id: str, component: str, fingerprint: str, source, exit_code: int = 0, attempt: int | None = None
    ) -> int:
        """An execution that reused `source`'s outputs: same artifacts, linked as this run's outputs."""
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO executions (run_id, component, fingerprint, status, started, ended, seconds, "
                "cached_from, output_uri, summary, exit_code, attempt) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    run_id,
                    component,
                    fingerprint,
                    "cached",
                    now(),
                    now(),
                    0.0,
                    source["id"],
                    source["output_uri"],
                    source["summary"],
                    exit_code,
                    attempt,
                ),
            )
            for row in db.execute("SELECT artifact_id, kind FROM events WHERE execution_id=?", (source["id"],)):
                db.execute("INSERT INTO events VALUES (?,?,?)", (cur.lastrowid, row["artifact_id"], row["kind"]))
            return cur.lastrowid

    def find_complete(self, component: str, fingerprint: str):
        """The latest successful (or reusing) execution of `component` with this fingerprint, or None."""
        return self.db.execute(
            "SELECT * FROM executions WHERE component=? AND fingerprint=? AND status IN ('complete', 'cached') "
            "ORDER BY id DESC LIMIT 1",
            (component, fingerprint),
        ).fetchone()

    def latest_complete(self, component: str, run_id: str | None = None):
        """The latest successful (or cache-reusing) execution of `component`, any fingerprint; of run
        `run_id` only when given."""
        in_run = " AND run_id=?" if run_id is not None else ""
        return self.db.execute(
            f"SELECT * FROM executions WHERE component=? AND status IN ('complete', 'cached'){in_run} "
            "ORDER BY id DESC LIMIT 1",
            (component, *([run_id] if run_id is not None else [])),
        ).fetchone()

    def execution(self, execution_id: int):
        return self.db.execute("SELECT * FROM executions WHERE id=?", (execution_id,)).fetchone()

    def latest_output(self, component: str, complete, before: str | None = None) -> str | None:
        """The newest output of `component` (other than `before`) for which `complete(uri)` holds."""
        rows = self.db.execute(
            "SELECT output_uri FROM executions WHERE component=? AND status IN ('complete','cached') ORDER BY id DESC",
            (component,),
        ).fetchall()
        for row in rows:
            uri = row["output_uri"]
            if uri and uri != before and complete(uri):
                return uri
        return None

    def executions(self, run_id: str) -> list:
        return self.db.execute("SELECT * FROM executions WHERE run_id=? ORDER BY id", (run_id,)).fetchall()

    # --- artifacts ---
    def add_artifact(self, execution_id: int, uri: str, type_: str, fingerprint: str, properties: dict) -> int:
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO artifacts (uri, type, fingerprint, properties, created) VALUES (?,?,?,?,?)",
                (uri, type_, fingerprint, json.dumps(properties, sort_keys=True, default=str), now()),
            )
            db.execute("INSERT INTO events VALUES (?,?,?)", (execution_id, cur.lastrowid, "output"))
            return cur.lastrowid

    def add_input(self, execution_id: int, artifact_id: int) -> None:
        with self._tx() as db:
            db.execute("INSERT INTO events VALUES (?,?,?)", (execution_id, artifact_id, "input"))

    def artifacts_of(self, execution_id: int, kind: str = "output") -> list:
        return self.db.execute(
            "SELECT a.* FROM artifacts a JOIN events e ON e.artifact_id=a.id "
            "WHERE e.execution_id=? AND e.kind=? ORDER BY a.id",
            (execution_id, kind),
        ).fetchall()

    def recent_outputs(self, type_: str, limit: int) -> list:
        """(execution id, uri, properties) of the newest `limit` artifacts of `type_` written by complete executions."""
        rows = self.db.execute(
            "SELECT a.uri, a.properties, v.execution_id FROM artifacts a JOIN events v ON v.artifact_id=a.id "
            "JOIN executions e ON e.id=v.execution_id WHERE a.type=? AND v.kind='output' "
            "AND e.status='complete' ORDER BY a.id DESC LIMIT ?",
            (type_, limit),
        ).fetchall()
        return [(row["execution_id"], row["uri"], json.loads(row["properties"])) for row in rows]

    def producer(self, artifact_id: int):
        """The complete execution that wrote `artifact_id` (not one that reused it), or None."""
        return self.db.execute(
            "SELECT e.* FROM executions e JOIN events v ON v.execution_id=e.id WHERE v.artifact_id=? "
            "AND v.kind='output' AND e.status='complete' ORDER BY e.id LIMIT 1",
            (artifact_id,),
        ).fetchone()

    def upstream(self, artifact_id: int, type_: str):
        """The execution that wrote the `type_` input read by the producer of `artifact_id`, or None."""
        producer = self.producer(artifact_id)
        if producer is None:
            return None
        for artifact in self.artifacts_of(producer["id"], kind="input"):
            if artifact["type"] == type_:
                return self.producer(artifact["id"])
        return None

    def latest_pushed(self, destination: str):
        """The latest model pushed to `destination` (SERVING_DIR/MODEL_NAME), the gate's baseline, or None.

        Returned as a dict: id, uri, fingerprint, properties (parsed).
        """
        for row in self.db.execute("SELECT * FROM artifacts WHERE type='PushedModel' ORDER BY id DESC"):
            props = json.loads(row["properties"])
            if props.get("pushed") and props.get("destination") == destination:
                return {**dict(row), "properties": props}
        return None
