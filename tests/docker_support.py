"""Docker fixtures shared by the container tests: the engine, the offline base image.

Tests that need the engine are marked ``docker``. Without an engine they are skipped, unless
``VSBENCH_REQUIRE_DOCKER=1`` (set by ``make test``, which installs and starts one): then a missing engine is a
failure, so CI can never go green by skipping the sandbox.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BASE_IMAGE = os.environ.get("VSBENCH_BASE_IMAGE", "vsbench/base:bookworm")


def _require() -> bool:
    return os.environ.get("VSBENCH_REQUIRE_DOCKER", "") not in ("", "0")


@pytest.fixture(scope="session")
def docker_client():
    """A Docker SDK client whose engine answers (skip, or fail under VSBENCH_REQUIRE_DOCKER=1)."""
    try:
        import docker

        client = docker.from_env(timeout=300)
        client.ping()
    except Exception as exc:  # no SDK, no socket, engine down
        detail = str(exc).splitlines()[0][:120] if str(exc) else ""
        message = f"no Docker engine answers ({type(exc).__name__}: {detail})"
        if _require():
            pytest.fail(message + "; VSBENCH_REQUIRE_DOCKER=1")
        pytest.skip(message)
    yield client
    client.close()


@pytest.fixture(scope="session")
def base_image(docker_client) -> str:
    """The offline base image (containers/base/build.sh builds it once; later sessions find it)."""
    subprocess.run([str(REPO / "containers" / "base" / "build.sh"), BASE_IMAGE], check=True)
    return BASE_IMAGE
