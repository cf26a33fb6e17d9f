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


def labelled_image(client, image: str, labels: dict[str, str]) -> str:
    """A child of ``image`` that only adds ``labels`` (e.g. declares a plain image a vsbench batch image);
    tagged ``<image repo>-labelled:<hash12>`` so repeated runs reuse it. Returns the tag."""
    import hashlib
    import io

    dockerfile = f"FROM {image}\n" + "".join(f'LABEL "{k}"="{v}"\n' for k, v in sorted(labels.items()))
    base_id = client.images.get(image).id
    digest = hashlib.sha256((base_id + dockerfile).encode()).hexdigest()[:12]
    repo = image.rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image
    tag = f"{repo}-labelled:{digest}"
    try:
        client.images.get(tag)
    except Exception:
        client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag, network_mode="none", rm=True,
                            pull=False)
    return tag
