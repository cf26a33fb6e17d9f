"""Alembic migrations of the results store (:mod:`vsbench.harness.store`), run programmatically.

``versions/`` holds one file per schema revision (``0001``, ``0002``, ...). It has no ``__init__.py``
(Alembic loads every ``.py`` there as a revision): it is listed in ``packages`` as a namespace package.
To add a revision, copy the newest file, bump ``revision`` / ``down_revision`` (and
``store.HEAD_REVISION``), and write ``upgrade`` / ``downgrade`` with explicit ``op`` calls (never
import the current table definitions: a migration is frozen in time), and add the table change to
``store.py``'s tables.
"""
