"""PostgreSQL for the tests: the ``db_url`` fixture (an empty SQLite file, or a fresh PostgreSQL schema).

The server is ``$VSBENCH_TEST_POSTGRES_URL`` (default the one ``containers/postgres.sh`` starts, as ``make test``
does); PostgreSQL cases are marked ``postgres`` and skip when it does not answer, unless
``VSBENCH_REQUIRE_POSTGRES=1``.
"""

from __future__ import annotations

import os
import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

DEFAULT_PG_URL = "postgresql+psycopg://vsbench:vsbench@localhost:5432/vsbench_test"
PG_URL = os.environ.get("VSBENCH_TEST_POSTGRES_URL", DEFAULT_PG_URL)

_pg_problem: list[str | None] = []  # checked once per session: None when it answers


def _postgres_problem() -> str | None:
    if not _pg_problem:
        engine = sa.create_engine(PG_URL, connect_args={"connect_timeout": 3})
        try:
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            _pg_problem.append(None)
        except Exception as exc:  # any failure to connect: the server is not there
            _pg_problem.append(" ".join(str(getattr(exc, "orig", exc)).split())[:200])
        finally:
            engine.dispose()
    return _pg_problem[0]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request, tmp_path):
    """A URL of an empty database: a new SQLite file, or a new PostgreSQL schema dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store' / 'results.db'}"
        return
    problem = _postgres_problem()
    if problem is not None:
        message = f"PostgreSQL at {make_url(PG_URL).render_as_string()} does not answer: {problem}"
        if os.environ.get("VSBENCH_REQUIRE_POSTGRES") == "1":
            pytest.fail(message + " (VSBENCH_REQUIRE_POSTGRES=1; run containers/postgres.sh)")
        pytest.skip(message)
    schema = f"test_{uuid.uuid4().hex[:16]}"
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
