"""The results store: inference runs, their per-case results, and the scores computed on them, in a database.

One **run** is one submission on one split under one runtime configuration, keyed by ``run_key`` (a sha256
hex the caller derives from what makes the run what it is: image digest or checkpoint hash, split hash,
runtime, limits, seed, ...). A run has **case results** (one per case, as ``run.json``'s ``cases``) and any
number of **scores** (one per evaluation, keyed by ``score_key``; a re-evaluation with a new evaluator or
ground truth is a new score of the same run, without re-running inference), and every score has its
**metric values**: the metrics.json aggregates flattened to ``(scope, key, metric, value)`` rows
(:func:`flatten_metrics`), so a leaderboard is one query.

An SQLite file by default (``.vsbench/results.db``; env ``VSBENCH_DB_URL`` overrides), PostgreSQL by URL
(``postgresql+psycopg://user:password@host/db``); :func:`resolve_database` is the rule every command follows
to pick one (``--database``, ``$VSBENCH_DB_URL``, the benchmark file's ``database:``, the workspace). Only
:attr:`ResultStore.display_url` (password hidden) is for showing. The schema is versioned with Alembic
(:mod:`vsbench.harness.migrations`): opening a store upgrades it to the newest revision, and a store whose
schema is newer than this code is refused. Writes are safe from several processes at once: SQLite in WAL
mode with every write transaction taking the write lock up front (``BEGIN IMMEDIATE``) and a busy timeout;
PostgreSQL with ``INSERT ... ON CONFLICT`` and row locks. Every upsert is idempotent.

Values: timestamps are timezone-aware UTC ``datetime`` objects on the way out (``datetime`` with a time zone
or an ISO 8601 string on the way in); JSON columns hold plain JSON, NaN and infinities become ``null``
(JSON has neither); a metric value that is NaN is stored as NULL and read back as ``None``.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
import sqlite3
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, OperationalError, SQLAlchemyError

__all__ = ["ResultStore", "StoreError", "flatten_metrics", "score_from_metrics", "upgrade", "default_url",
           "resolve_database", "hide_password",
           "HEAD_REVISION", "RUN_STATUSES", "CASE_STATUSES"]

ENV_URL = "VSBENCH_DB_URL"
DEFAULT_WORKSPACE = Path(".vsbench")
DB_FILE = "results.db"
SCRIPT_LOCATION = "vsbench.harness:migrations"
VERSION_TABLE = "vsbench_schema_version"
HEAD_REVISION = "0002"  # the newest file in migrations/versions (checked against the scripts at open)
_PG_LOCK = 0x7673_6265_6E63  # pg_advisory_xact_lock key: one migration at a time per database

RUN_STATUSES = ("pending", "running", "complete", "failed")  # failed: no case succeeded, or the runtime itself failed
CASE_STATUSES = ("succeeded", "failed", "timed_out", "oom", "invalid_output")
SUBMISSION_KINDS = ("image", "archive", "solution")
RUNTIMES = ("docker", "local")


class StoreError(RuntimeError):
    """A results-store problem, in one line: what is wrong and with which store, run or score."""


# --------------------------------------------------------------------------------------------- schema


class UTCDateTime(sa.types.TypeDecorator):
    """``DateTime(timezone=True)`` that always hands back aware UTC datetimes (SQLite keeps no zone)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        value = value.astimezone(dt.timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)


def _json() -> sa.JSON:
    return sa.JSON(none_as_null=True)


metadata = sa.MetaData()

runs = sa.Table(
    "runs", metadata,
    sa.Column("run_key", sa.String(128), primary_key=True),
    sa.Column("benchmark", sa.String(), nullable=False),
    sa.Column("submission", sa.String(), nullable=False),
    sa.Column("submission_version", sa.String()),
    sa.Column("submission_kind", sa.String(16)),
    sa.Column("image_ref", sa.String()),
    sa.Column("image_digest", sa.String()),
    sa.Column("checkpoint_hash", sa.String()),
    sa.Column("split_name", sa.String()),
    sa.Column("split_path", sa.String()),
    sa.Column("split_hash", sa.String()),
    sa.Column("inputs_hash", sa.String()),
    sa.Column("runtime", sa.String(16)),
    sa.Column("sandboxed", sa.Boolean()),
    sa.Column("contract", sa.String()),
    sa.Column("batch", sa.Boolean()),
    sa.Column("limits", _json()),
    sa.Column("seed", sa.BigInteger()),
    sa.Column("hardware", _json()),
    sa.Column("vsbench_version", sa.String()),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("started_at", UTCDateTime()),
    sa.Column("finished_at", UTCDateTime()),
    sa.Column("duration_s", sa.Float()),
    sa.Column("n_cases", sa.Integer()),
    sa.Column("n_succeeded", sa.Integer()),
    sa.Column("n_failed", sa.Integer()),
    sa.Column("predictions_path", sa.String()),
    sa.Column("predictions_hash", sa.String()),
    sa.Column("run_record_path", sa.String()),
    sa.Column("logs_path", sa.String()),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Index("ix_runs_benchmark_submission_created", "benchmark", "submission", "created_at"),  # 0002
)

case_results = sa.Table(
    "case_results", metadata,
    sa.Column("run_key", sa.String(128), sa.ForeignKey("runs.run_key", ondelete="CASCADE"), primary_key=True),
    sa.Column("case", sa.String(), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text()),
    sa.Column("exit_code", sa.Integer()),
    sa.Column("durations", _json()),
    sa.Column("stdout", sa.Text()),
    sa.Column("stderr", sa.Text()),
    sa.Column("image_digest", sa.String()),
)

scores = sa.Table(
    "scores", metadata,
    sa.Column("score_key", sa.String(128), primary_key=True),
    sa.Column("run_key", sa.String(128), sa.ForeignKey("runs.run_key", ondelete="CASCADE"), nullable=False),
    sa.Column("evaluator", sa.String(), nullable=False),
    sa.Column("evaluator_version", sa.String()),
    sa.Column("metrics", _json()),
    sa.Column("metrics_path", sa.String()),
    sa.Column("aggregates", _json()),
    sa.Column("n_errors", sa.Integer()),
    sa.Column("provenance", _json()),  # 0002
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime()),  # 0002
    sa.Index("ix_scores_run_key", "run_key"),  # 0002
)

metric_values_table = sa.Table(
    "metric_values", metadata,
    sa.Column("score_key", sa.String(128), sa.ForeignKey("scores.score_key", ondelete="CASCADE"), primary_key=True),
    sa.Column("scope", sa.String(), primary_key=True),
    sa.Column("key", sa.String(), primary_key=True),
    sa.Column("metric", sa.String(), primary_key=True),
    sa.Column("value", sa.Float()),
)

# ------------------------------------------------------------------------------------ input checking

# field -> kind: "key" (non-empty str, at most 128), "str", "text", "bool", "int", "float", "json", "time",
# or a tuple of the allowed strings
RUN_FIELDS: dict[str, Any] = {
    "run_key": "key", "benchmark": "str", "submission": "str", "submission_version": "str",
    "submission_kind": SUBMISSION_KINDS, "image_ref": "str", "image_digest": "str", "checkpoint_hash": "str",
    "split_name": "str", "split_path": "str", "split_hash": "str", "inputs_hash": "str", "runtime": RUNTIMES,
    "sandboxed": "bool", "contract": "str", "batch": "bool", "limits": "json", "seed": "int", "hardware": "json",
    "vsbench_version": "str", "status": RUN_STATUSES, "started_at": "time", "finished_at": "time",
    "duration_s": "float", "n_cases": "int", "n_succeeded": "int", "n_failed": "int", "predictions_path": "str",
    "predictions_hash": "str", "run_record_path": "str", "logs_path": "str",
}
CASE_FIELDS: dict[str, Any] = {
    "case": "str", "status": CASE_STATUSES, "reason": "text", "exit_code": "int", "durations": "json",
    "stdout": "text", "stderr": "text", "image_digest": "str",
}
SCORE_FIELDS: dict[str, Any] = {
    "score_key": "key", "run_key": "key", "evaluator": "str", "evaluator_version": "str", "metrics": "json",
    "metrics_path": "str", "aggregates": "json", "n_errors": "int", "provenance": "json",
}
VALUE_FIELDS: dict[str, Any] = {"scope": "str", "key": "str", "metric": "str", "value": "float"}
_MANAGED = ("created_at", "updated_at")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def json_clean(value: Any, where: str = "value") -> Any:
    """``value`` as plain JSON: numpy scalars made Python, tuples made lists, paths made strings, NaN and
    infinities made None; anything else that JSON cannot hold is a :class:`ValueError` naming ``where``."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): json_clean(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_clean(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, Path):
        return str(value)
    item = getattr(value, "item", None)  # numpy scalars (and 0-d arrays)
    if callable(item) and getattr(value, "ndim", 1) == 0:
        return json_clean(item(), where)
    raise ValueError(f"{where}: {type(value).__name__} is not JSON")


def _time_value(value: Any, where: str) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        try:
            value = dt.datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
        except ValueError:
            raise ValueError(f"{where}: {value!r} is not an ISO 8601 time") from None
    if not isinstance(value, dt.datetime):
        raise ValueError(f"{where}: expected a datetime or an ISO 8601 string, got {type(value).__name__}")
    if value.tzinfo is None:
        raise ValueError(f"{where}: {value.isoformat()} has no time zone (give UTC)")
    return value.astimezone(dt.timezone.utc)


def _check(kind: Any, value: Any, where: str) -> Any:
    if kind == "json":
        return json_clean(value, where)
    if kind == "time":
        return _time_value(value, where)
    if value is None:
        if kind == "key":
            raise ValueError(f"{where}: missing")
        return None
    if isinstance(kind, tuple):
        if value not in kind:
            raise ValueError(f"{where}: {value!r} is not one of {', '.join(kind)}")
        return value
    if kind in ("key", "str", "text"):
        if not isinstance(value, (str, Path)):
            raise ValueError(f"{where}: expected a string, got {type(value).__name__}")
        value = str(value)
        if kind == "key" and not 0 < len(value) <= 128:
            raise ValueError(f"{where}: must be 1 to 128 characters, got {len(value)}")
        return value
    if kind == "bool":
        if not isinstance(value, bool) and type(value).__name__ != "bool_":
            raise ValueError(f"{where}: expected true or false, got {value!r}")
        return bool(value)
    if kind == "int":
        if isinstance(value, bool) or not (isinstance(value, int) or type(value).__name__.startswith(("int", "uint"))):
            raise ValueError(f"{where}: expected an integer, got {value!r}")
        return int(value)
    if kind == "float":
        if isinstance(value, bool):
            raise ValueError(f"{where}: expected a number, got {value!r}")
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{where}: expected a number, got {value!r}") from None
        return None if math.isnan(value) else value
    raise AssertionError(kind)


def _validated(row: Mapping[str, Any], fields: Mapping[str, Any], what: str) -> dict[str, Any]:
    if not isinstance(row, Mapping):
        raise ValueError(f"{what}: expected a dict, got {type(row).__name__}")
    unknown = [k for k in row if k not in fields]
    if unknown:
        managed = [k for k in unknown if k in _MANAGED]
        if managed:
            raise ValueError(f"{what}: {managed[0]} is set by the store, leave it out")
        raise ValueError(f"{what}: unknown field {unknown[0]!r} (known: {', '.join(fields)})")
    return {k: _check(fields[k], v, f"{what}: {k}") for k, v in row.items()}


# -------------------------------------------------------------------------------------- connecting


def default_url(workspace: Path | str | None = None) -> str:
    """``$VSBENCH_DB_URL`` when set (and no ``workspace`` is given), else ``sqlite:///<workspace>/results.db``
    (``workspace`` defaults to ``.vsbench`` in the current folder)."""
    if workspace is None and os.environ.get(ENV_URL):
        return os.environ[ENV_URL]
    folder = Path(workspace) if workspace is not None else DEFAULT_WORKSPACE
    return f"sqlite:///{(folder / DB_FILE).resolve()}"


def resolve_database(flag: str | None, benchmark_database: str | None = None,
                     workspace: Path | str | None = None, workspace_explicit: bool = False) -> str:
    """The results database a command uses, as a URL (or a bare SQLite path), the one rule of every command:

    ``flag`` (``--database``) when given; else ``<workspace>/results.db`` when ``workspace_explicit`` (a
    ``--workspace`` given on the command line counts like ``--database``); else ``$VSBENCH_DB_URL`` when set;
    else ``benchmark_database`` (the benchmark file's ``database:``); else ``<workspace>/results.db``, the
    workspace defaulting to ``.vsbench`` in the current folder. An empty ``--database`` is a :class:`ValueError`.
    """
    if flag is not None:
        if not flag.strip():
            raise ValueError("--database: empty URL (give an SQLAlchemy URL, e.g. sqlite:///results.db)")
        return flag
    folder = Path(workspace) if workspace is not None else DEFAULT_WORKSPACE
    if workspace_explicit:
        return default_url(folder)
    if os.environ.get(ENV_URL):
        return os.environ[ENV_URL]
    if benchmark_database:
        return benchmark_database
    return default_url(folder)


_PASSWORD = re.compile(r"(://[^/?#@:]*:)[^/?#@]*@")


def hide_password(url: str) -> str:
    """``url`` with its password, if any, shown as ``***`` (also when ``url`` is not a valid URL)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return _PASSWORD.sub(r"\1***@", url)


def _parse_url(url: str) -> URL:
    if "://" not in url:  # a bare path: an SQLite file
        url = f"sqlite:///{Path(url).expanduser().resolve()}"
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):  # ValueError: e.g. a port that is not a number
        raise StoreError(f"results store: {hide_password(url)!r} is not a database URL") from None
    backend = parsed.get_backend_name()
    if backend == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")  # psycopg 3 is the driver vsbench installs
    if backend not in ("sqlite", "postgresql"):
        raise StoreError(f"results store {parsed.render_as_string(hide_password=True)}: unsupported database "
                         f"{backend!r} (sqlite or postgresql)")
    return parsed


def _sqlite_on_connect(dbapi_connection, _record) -> None:
    dbapi_connection.isolation_level = None  # the driver opens no transactions: _sqlite_on_begin does
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA busy_timeout = 60000")  # first: switching to WAL may wait for a lock
        for attempt in range(100):  # two processes converting a new file to WAL at once: one may get SQLITE_BUSY
            try:                    # at once, without the busy handler; it retries
                cursor.execute("PRAGMA journal_mode = WAL")
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == 99:
                    raise
                time.sleep(0.05 + 0.01 * attempt)
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _sqlite_on_begin(conn: Connection) -> None:
    # a write transaction takes the write lock when it starts: a deferred one that read first could not
    # upgrade after another process wrote (SQLITE_BUSY at once, the busy timeout does not apply)
    immediate = conn.get_execution_options().get("vsbench_write", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _check_exists(url: URL) -> None:
    """:class:`StoreError` when ``url`` is an SQLite file that does not exist (a server database is not checked)."""
    database = url.database
    if url.get_backend_name() != "sqlite" or database == ":memory:" or (database or "").startswith("file:"):
        return
    path = Path(database or "").expanduser()
    if not database or not path.is_file():
        raise StoreError(f"no results database at {path.resolve() if database else '(empty SQLite path)'}: nothing "
                         "is stored there (run 'vsbench run' first, or give --database URL or --workspace DIR)")


def _make_engine(url: URL) -> Engine:
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:" and not url.database.startswith("file:"):
            Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 60})
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    return sa.create_engine(url, pool_pre_ping=True)


def _one_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    text = " ".join(str(orig).split())
    return (text[:300] + " ...") if len(text) > 300 else text or type(orig).__name__


def _alembic_config(connection: Connection | None = None):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", SCRIPT_LOCATION)
    cfg.attributes["version_table"] = VERSION_TABLE
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


@contextmanager
def _write_transaction(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as conn:
        conn.execution_options(vsbench_write=True)
        with conn.begin():
            yield conn


def _migrate_retrying(engine: Engine, shown: str, postgres: bool) -> str:
    """:func:`_migrate`, retried for a while when SQLite reports the database locked (lock upgrades that the
    busy handler cannot wait for, e.g. two processes opening a new store at the same instant)."""
    for attempt in range(20):
        try:
            return _migrate(engine, shown)
        except OperationalError as exc:
            if postgres or "locked" not in str(exc) or attempt == 19:
                raise
            engine.dispose()
            time.sleep(0.1 * (attempt + 1))
    raise AssertionError("unreachable")


def _migrate(engine: Engine, shown: str, revision: str = "head") -> str:
    """Upgrade the database behind ``engine`` to ``revision``; return the revision it is at.

    A look first, in a read transaction (a store already at the target costs no write lock); then, if
    needed, the upgrade in one write transaction that holds the database's lock (SQLite: ``BEGIN
    IMMEDIATE``; PostgreSQL: an advisory lock), so two processes opening a new store migrate it once."""
    from alembic import command
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    cfg = _alembic_config()
    script = ScriptDirectory.from_config(cfg)
    head = script.get_current_head()
    if head != HEAD_REVISION:  # e.g. an installation without migrations/versions/*.py
        raise StoreError(f"results store: the migrations shipped end at {head}, not {HEAD_REVISION}: "
                         "a broken vsbench installation")
    target = head if revision == "head" else revision
    try:
        script.get_revision(target)
    except CommandError:
        raise ValueError(f"results store: no schema revision {target!r} (known: "
                         f"{', '.join(reversed([s.revision for s in script.walk_revisions()]))})") from None

    def current_revision(conn: Connection) -> str | None:
        current = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_heads()
        for rev in current:
            try:
                known = script.get_revision(rev) is not None
            except CommandError:
                known = False
            if not known:
                raise StoreError(f"results store {shown}: schema revision {rev} is newer than this vsbench knows "
                                 f"(its newest is {head}); upgrade vsbench to use this store")
        if len(current) > 1:
            raise StoreError(f"results store {shown}: several schema heads {', '.join(current)}; repair by hand")
        return current[0] if current else None

    with engine.connect() as conn:
        if current_revision(conn) == target:
            return target
    with _write_transaction(engine) as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK})
        current = current_revision(conn)  # again: another process may have migrated meanwhile
        if current != target:
            if current is not None and target in {s.revision for s in script.iterate_revisions(current, "base")}:
                raise StoreError(f"results store {shown}: at schema revision {current}, past {target}; "
                                 "vsbench does not downgrade")
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, target)
            current = current_revision(conn)
    return current or "base"


def upgrade(url: str, revision: str = "head") -> str:
    """Upgrade the store at ``url`` to ``revision`` (default the newest); returns the revision it is at.
    Opening a :class:`ResultStore` does this to ``head``; an older target is for tests and tooling."""
    parsed = _parse_url(url)
    engine = _make_engine(parsed)
    shown = parsed.render_as_string(hide_password=True)
    try:
        return _migrate(engine, shown, revision)
    except SQLAlchemyError as exc:
        raise StoreError(f"results store {shown}: {_one_line(exc)}") from None
    finally:
        engine.dispose()


# -------------------------------------------------------------------------------------------- store


def _row(mapping) -> dict[str, Any]:
    return dict(mapping)


def _case_rows(run_key: str, cases: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """``cases`` (dicts as ``run.json``'s, or objects with a ``to_dict``) as validated case_results rows."""
    rows = []
    for i, case in enumerate(cases):
        case = case.to_dict() if hasattr(case, "to_dict") else case
        row = _validated(case, CASE_FIELDS, f"replace_cases {run_key}: case {i}")
        for name in ("case", "status"):
            if row.get(name) is None:
                raise ValueError(f"replace_cases {run_key}: case {i}: {name} missing")
        rows.append({**{k: None for k in CASE_FIELDS}, **row, "run_key": run_key})
    return rows


def _write_cases(conn: Connection, run_key: str, rows: list[dict[str, Any]]) -> None:
    """Replace the run's case results by ``rows`` and set its case counts, inside the caller's transaction."""
    n_ok = sum(r["status"] == "succeeded" for r in rows)
    # the run's row first: its lock serialises two writers of the same run (PostgreSQL)
    changed = conn.execute(runs.update().where(runs.c.run_key == run_key).values(
        n_cases=len(rows), n_succeeded=n_ok, n_failed=len(rows) - n_ok, updated_at=_now()))
    if changed.rowcount == 0:
        raise StoreError(f"replace_cases: no run {run_key} (upsert_run first)")
    conn.execute(case_results.delete().where(case_results.c.run_key == run_key))
    if rows:
        conn.execute(case_results.insert(), rows)


class ResultStore:
    """Runs, case results, scores and metric values in an SQLite file or a PostgreSQL database.

    ``url``: an SQLAlchemy URL (``sqlite:///path/results.db``, ``postgresql+psycopg://user:pw@host/db``) or a
    bare path of an SQLite file; None: ``$VSBENCH_DB_URL`` if set, else ``<workspace>/results.db`` with
    ``workspace`` defaulting to ``.vsbench`` (folders are created). Opening upgrades the schema to the newest
    revision (:attr:`schema_revision`); a schema newer than this code is refused (:class:`StoreError`).
    ``must_exist``: an SQLite file that is not there is a :class:`StoreError` naming where it looked, and
    nothing is created (the read commands: they never make an empty database). Bad input is a
    :class:`ValueError`, a database problem a :class:`StoreError`, both one line. Use as a
    context manager, or call :meth:`close`.
    """

    url: str  #: the full URL, password included: to connect, never to show
    display_url: str  #: the URL with the password shown as ``***``: for messages, output and sites
    schema_revision: str

    def __init__(self, url: str | None = None, *, workspace: Path | None = None, must_exist: bool = False):
        if url is None:
            url = default_url(workspace)
        elif workspace is not None:
            raise ValueError("ResultStore: give a url or a workspace, not both")
        parsed = _parse_url(str(url))
        if must_exist:
            _check_exists(parsed)
        self.url = parsed.render_as_string(hide_password=False)
        self.display_url = parsed.render_as_string(hide_password=True)
        self._engine = _make_engine(parsed)
        self._postgres = parsed.get_backend_name() == "postgresql"
        try:
            self.schema_revision = _migrate_retrying(self._engine, self.display_url, self._postgres)
        except SQLAlchemyError as exc:
            self._engine.dispose()
            raise StoreError(f"results store {self.display_url}: {_one_line(exc)}") from None
        except BaseException:
            self._engine.dispose()
            raise

    def __repr__(self) -> str:
        return f"ResultStore({self.display_url!r}, schema {self.schema_revision})"

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Release the store's connections (the store cannot be used afterwards)."""
        self._engine.dispose()

    # ------------------------------------------------------------------ plumbing

    @contextmanager
    def _write(self, what: str) -> Iterator[Connection]:
        try:
            with _write_transaction(self._engine) as conn:
                yield conn
        except IntegrityError as exc:
            raise StoreError(f"{what}: {_one_line(exc)}") from None
        except (DBAPIError, SQLAlchemyError) as exc:
            raise StoreError(f"{what}: results store {self.display_url}: {_one_line(exc)}") from None

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        try:
            with self._engine.connect() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise StoreError(f"results store {self.display_url}: {_one_line(exc)}") from None

    def _insert(self, table: sa.Table):
        if self._postgres:
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        return insert(table)

    def _upsert(self, conn: Connection, table: sa.Table, key: str, values: dict[str, Any], keep: tuple[str, ...]):
        """INSERT ``values``, or on a key conflict update the given columns except ``key`` and ``keep``."""
        stmt = self._insert(table).values(**values)
        update = {c: stmt.excluded[c] for c in values if c != key and c not in keep}
        conn.execute(stmt.on_conflict_do_update(index_elements=[table.c[key]], set_=update))

    # ------------------------------------------------------------------ runs

    def upsert_run(self, run: Mapping[str, Any], cases: list[Mapping[str, Any]] | None = None) -> None:
        """Insert the run ``run["run_key"]`` or update the fields ``run`` gives (the others keep their values).

        A new run needs ``benchmark`` and ``submission``; ``status`` defaults to ``pending``. ``created_at`` and
        ``updated_at`` are the store's. The same call twice leaves one row, as after the first. ``cases``, when
        given, replace the run's case results in the same transaction (:meth:`replace_cases`): a process killed
        in between never leaves a finished run without its cases.
        """
        if not isinstance(run, Mapping):
            raise ValueError(f"upsert_run: expected a dict, got {type(run).__name__}")
        row = _validated(run, RUN_FIELDS, f"upsert_run {run.get('run_key') or ''}".rstrip())
        key = row.get("run_key")
        if key is None:
            raise ValueError("upsert_run: run_key missing")
        for name in ("benchmark", "submission", "status"):
            if name in row and row[name] is None:
                raise ValueError(f"upsert_run {key}: {name} cannot be null")
        case_rows = None if cases is None else _case_rows(key, cases)
        now = _now()
        with self._write(f"upsert_run {key}") as conn:
            if "benchmark" in row and "submission" in row:
                values = {"status": "pending", **row, "created_at": now, "updated_at": now}
                self._upsert(conn, runs, "run_key", values, keep=("created_at", *([] if "status" in row
                                                                                  else ["status"])))
            else:
                changed = conn.execute(runs.update().where(runs.c.run_key == key)
                                       .values(**{k: v for k, v in row.items() if k != "run_key"}, updated_at=now))
                if changed.rowcount == 0:
                    raise StoreError(f"upsert_run {key}: no such run, and a new run needs benchmark and submission")
            if case_rows is not None:
                _write_cases(conn, key, case_rows)

    def replace_cases(self, run_key: str, cases: list[Mapping[str, Any]]) -> None:
        """Replace the run's case results by ``cases`` (dicts as ``run.json``'s ``cases``, or objects with a
        ``to_dict``) in one transaction: on any error the old rows stay. Also sets the run's ``n_cases``,
        ``n_succeeded`` and ``n_failed`` (every case that did not succeed)."""
        run_key = _check("key", run_key, "replace_cases: run_key")
        rows = _case_rows(run_key, cases)
        with self._write(f"replace_cases {run_key}") as conn:
            _write_cases(conn, run_key, rows)

    def get_run(self, run_key: str) -> dict[str, Any] | None:
        """The run's row with ``cases`` (sorted by case) and ``score_keys``, or None when there is none."""
        with self._read() as conn:
            found = conn.execute(sa.select(runs).where(runs.c.run_key == run_key)).mappings().first()
            if found is None:
                return None
            run = _row(found)
            run["cases"] = [
                {k: v for k, v in r.items() if k != "run_key"}
                for r in conn.execute(sa.select(case_results).where(case_results.c.run_key == run_key)
                                      .order_by(case_results.c.case)).mappings()
            ]
            run["score_keys"] = list(conn.execute(sa.select(scores.c.score_key).where(scores.c.run_key == run_key)
                                                  .order_by(scores.c.created_at, scores.c.score_key)).scalars())
        return run

    def list_runs(self, benchmark: str | None = None, submission: str | None = None) -> list[dict[str, Any]]:
        """Runs (rows without cases), newest first, each with ``score_keys`` (oldest first); optionally only
        those of one ``benchmark`` and/or ``submission``."""
        where = []
        if benchmark is not None:
            where.append(runs.c.benchmark == benchmark)
        if submission is not None:
            where.append(runs.c.submission == submission)
        with self._read() as conn:
            found = [_row(r) for r in conn.execute(sa.select(runs).where(*where)
                                                   .order_by(runs.c.created_at.desc(), runs.c.run_key)).mappings()]
            keys: dict[str, list[str]] = {}
            query = (sa.select(scores.c.run_key, scores.c.score_key)
                     .where(scores.c.run_key.in_(sa.select(runs.c.run_key).where(*where)))
                     .order_by(scores.c.created_at, scores.c.score_key))
            for run_key, score_key in conn.execute(query):
                keys.setdefault(run_key, []).append(score_key)
        for run in found:
            run["score_keys"] = keys.get(run["run_key"], [])
        return found

    # ------------------------------------------------------------------ scores

    def upsert_score(self, score: Mapping[str, Any]) -> None:
        """Insert or update the score ``score["score_key"]`` of run ``score["run_key"]`` (which must exist).

        ``score`` holds the :data:`SCORE_FIELDS` (``evaluator`` required for a new score) and optionally
        ``values``: the metric-value rows (``scope``, ``key``, ``metric``, ``value``; e.g. from
        :func:`flatten_metrics`), which then replace the score's old ones in the same transaction. Fields
        left out keep their values; the same call twice leaves one score and the same values.
        """
        if not isinstance(score, Mapping):
            raise ValueError(f"upsert_score: expected a dict, got {type(score).__name__}")
        score = dict(score)
        values = score.pop("values", None)
        key = score.get("score_key")
        row = _validated(score, SCORE_FIELDS, f"upsert_score {key or ''}".rstrip())
        if row.get("score_key") is None:
            raise ValueError("upsert_score: score_key missing")
        if row.get("run_key") is None:
            raise ValueError(f"upsert_score {key}: run_key missing")
        if "evaluator" in row and row["evaluator"] is None:
            raise ValueError(f"upsert_score {key}: evaluator cannot be null")
        value_rows = None
        if values is not None:
            if not isinstance(values, (list, tuple)):
                raise ValueError(f"upsert_score {key}: values must be a list of dicts")
            value_rows = []
            for i, v in enumerate(values):
                r = _validated(v, VALUE_FIELDS, f"upsert_score {key}: values[{i}]")
                for name in ("scope", "key", "metric"):
                    if r.get(name) is None:
                        raise ValueError(f"upsert_score {key}: values[{i}]: {name} missing")
                value_rows.append({"value": None, **r, "score_key": key})
        now = _now()
        with self._write(f"upsert_score {key}") as conn:
            run_found = conn.execute(sa.select(runs.c.run_key).where(runs.c.run_key == row["run_key"])).first()
            if run_found is None:
                raise StoreError(f"upsert_score {key}: no run {row['run_key']} (upsert_run first)")
            if "evaluator" in row:
                self._upsert(conn, scores, "score_key", {**row, "created_at": now, "updated_at": now},
                             keep=("created_at",))
            else:
                changed = conn.execute(scores.update().where(scores.c.score_key == key)
                                       .values(**{k: v for k, v in row.items() if k != "score_key"}, updated_at=now))
                if changed.rowcount == 0:
                    raise StoreError(f"upsert_score {key}: no such score, and a new score needs an evaluator")
            if value_rows is not None:
                conn.execute(metric_values_table.delete().where(metric_values_table.c.score_key == key))
                if value_rows:
                    conn.execute(metric_values_table.insert(), value_rows)

    def get_score(self, score_key: str) -> dict[str, Any] | None:
        """The score's row (without its metric values: :meth:`metric_values`), or None when there is none."""
        with self._read() as conn:
            found = conn.execute(sa.select(scores).where(scores.c.score_key == score_key)).mappings().first()
        return None if found is None else _row(found)

    def metric_values(self, score_key: str) -> list[dict[str, Any]]:
        """The score's metric values as ``{"scope", "key", "metric", "value"}`` (value None for NaN), sorted;
        empty when the score has none or does not exist."""
        t = metric_values_table
        with self._read() as conn:
            rows = conn.execute(sa.select(t.c.scope, t.c.key, t.c.metric, t.c.value).where(t.c.score_key == score_key)
                                .order_by(t.c.scope, t.c.key, t.c.metric)).mappings()
            return [_row(r) for r in rows]


# ------------------------------------------------------------------------------------------ metrics


def _number(value: Any) -> tuple[bool, float | None]:
    """(is a metric value, the value): numbers and None are; bools, strings, containers are not."""
    if value is None:
        return True, None
    if isinstance(value, bool) or isinstance(value, (str, bytes, Mapping, list, tuple)):
        return False, None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return False, None
    return True, None if math.isnan(number) else number


def _leaves(scope: str, key: str, metrics: Any) -> list[dict[str, Any]]:
    if not isinstance(metrics, Mapping):
        return []
    rows = []
    for metric, value in metrics.items():
        ok, number = _number(value)
        if ok:
            rows.append({"scope": scope, "key": key, "metric": str(metric), "value": number})
    return rows


def _is_adipocyte(metrics_json: Mapping[str, Any]) -> bool:
    aggregates = metrics_json.get("aggregates") or {}
    task = metrics_json.get("task") or (metrics_json.get("provenance") or {}).get("task")
    return task == "adipocyte" or (isinstance(aggregates, Mapping) and "per_magnification" in aggregates)


_ADIPO_HEADLINE = ("pixel_mae", "feature_mae", "mae", "n_sets")


def flatten_metrics(metrics_json: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The aggregates of a metrics.json as ``{"scope", "key", "metric", "value"}`` rows (value None for a
    NaN / null mean), unique by (scope, key, metric).

    Light My Cells (:func:`vsbench.harness.evaluate.evaluate_lmc`): ``aggregates`` -> scope ``organelle``,
    key the organelle; ``transmitted_light`` -> scope ``modality:<BF|DIC|PC>``, key the organelle;
    ``z_deviation`` -> scope ``z_deviation:<d>``, key the organelle; metric ``MAE``, ``PCC``, ``SSIM``,
    ``E_dist``, ``C_dist`` (and ``CP_*``).

    Adipocyte (:func:`vsbench.harness.evaluate_adipocyte.evaluate_adipocyte`): ``aggregates.total`` -> scope
    ``overall``, key ``total``; ``aggregates.per_magnification`` -> scope ``magnification``, key the
    magnification (``pixel_mae``, ``feature_mae``, ``mae``, ``n_sets``), scope ``channel``, key
    ``<mag>/<channel>`` (``pixel_mae`` and the generic metrics of ``aggregates.generic``), scope ``feature``,
    key ``<mag>/<feature>`` (``feature_mae``); ``z_deviation`` -> scope ``z_deviation:<d>``, key the
    magnification, and ``<mag>/<channel>`` for its channel values.
    """
    if not isinstance(metrics_json, Mapping) or not isinstance(metrics_json.get("aggregates"), Mapping):
        raise ValueError("flatten_metrics: not a vsbench metrics.json (no 'aggregates' object)")
    rows: list[dict[str, Any]] = []
    if _is_adipocyte(metrics_json):
        agg = metrics_json["aggregates"]
        total = agg.get("total") or {}
        rows += _leaves("overall", "total", {m: total.get(m) for m in _ADIPO_HEADLINE if m in total})
        for mag, part in (agg.get("per_magnification") or {}).items():
            part = part or {}
            rows += _leaves("magnification", str(mag), {m: part.get(m) for m in _ADIPO_HEADLINE if m in part})
            for ch, value in (part.get("pixel_per_channel") or {}).items():
                rows += _leaves("channel", f"{mag}/{ch}", {"pixel_mae": value})
            for feature, value in (part.get("per_feature") or {}).items():
                rows += _leaves("feature", f"{mag}/{feature}", {"feature_mae": value})
        for mag, by_channel in (agg.get("generic") or {}).items():
            for ch, values in (by_channel or {}).items():
                rows += _leaves("channel", f"{mag}/{ch}", values)
        for mag, by_d in (metrics_json.get("z_deviation") or {}).items():
            for d, part in (by_d or {}).items():
                part = part or {}
                scope = f"z_deviation:{d}"
                rows += _leaves(scope, str(mag), {m: part.get(m) for m in _ADIPO_HEADLINE if m in part})
                for ch, value in (part.get("pixel_per_channel") or {}).items():
                    rows += _leaves(scope, f"{mag}/{ch}", {"pixel_mae": value})
                for ch, values in (part.get("generic") or {}).items():
                    rows += _leaves(scope, f"{mag}/{ch}", values)
    else:
        for organelle, values in metrics_json["aggregates"].items():
            rows += _leaves("organelle", str(organelle), values)
        for modality, by_organelle in (metrics_json.get("transmitted_light") or {}).items():
            for organelle, values in (by_organelle or {}).items():
                rows += _leaves(f"modality:{modality}", str(organelle), values)
        for organelle, by_d in (metrics_json.get("z_deviation") or {}).items():
            for d, values in (by_d or {}).items():
                rows += _leaves(f"z_deviation:{d}", str(organelle), values)
    seen: dict[tuple[str, str, str], dict[str, Any]] = {}
    for row in rows:  # a generic metric named like a headline one would collide: the first one stays
        seen.setdefault((row["scope"], row["key"], row["metric"]), row)
    return list(seen.values())


def score_from_metrics(metrics_json: Mapping[str, Any], *, score_key: str, run_key: str,
                       metrics_path: Path | str | None = None) -> dict[str, Any]:
    """A :meth:`ResultStore.upsert_score` dict for a metrics.json: evaluator and version, metric names,
    headline aggregates (LMC: ``aggregates``; adipocyte: ``total`` and per magnification pixel / feature /
    combined MAE and set counts), ``n_errors``, ``provenance`` and ``values`` (:func:`flatten_metrics`)."""
    values = flatten_metrics(metrics_json)
    provenance = metrics_json.get("provenance") or {}
    if _is_adipocyte(metrics_json):
        agg = metrics_json["aggregates"]
        headline = {"total": {m: (agg.get("total") or {}).get(m) for m in _ADIPO_HEADLINE},
                    "per_magnification": {mag: {m: (part or {}).get(m) for m in _ADIPO_HEADLINE}
                                          for mag, part in (agg.get("per_magnification") or {}).items()}}
        names = list(_ADIPO_HEADLINE[:3]) + list(provenance.get("generic_metrics") or [])
    else:
        headline = metrics_json["aggregates"]
        declared = provenance.get("metrics") or {}
        names = sorted({m for ms in declared.values() for m in ms}) if isinstance(declared, Mapping) else []
        names = names or sorted({v["metric"] for v in values})
    errors = metrics_json.get("errors")
    return {
        "score_key": score_key,
        "run_key": run_key,
        "evaluator": provenance.get("evaluator") or "unknown",
        "evaluator_version": provenance.get("vsbench_version"),
        "metrics": names,
        "metrics_path": None if metrics_path is None else str(metrics_path),
        "aggregates": headline,
        "n_errors": provenance.get("n_errors", len(errors) if isinstance(errors, list) else None),
        "provenance": provenance,
        "values": values,
    }
