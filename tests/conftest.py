"""Shared pytest setup: make ``tests/`` importable so tests can ``import lmc_reference``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

_TESTS = str(Path(__file__).resolve().parent)
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

# CI (CI=true) runs a fixed set of hypothesis examples, so a red run is reproducible and a green
# one is not luck; local runs explore new examples each time.
from hypothesis import settings  # noqa: E402

settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

from browser_support import browser  # noqa: E402,F401  (fixture: headless Chromium through Selenium)
from docker_support import base_image, docker_client  # noqa: E402,F401  (fixtures for the container tests)
from pg_support import db_url  # noqa: E402,F401  (fixture: an empty SQLite file or PostgreSQL schema)
