"""Build the test images of the sandbox tests with the Docker SDK, cached by content.

An image is tagged ``vsbench-test/<name>:<hash12>``, the hash covering the build context (relative paths, modes
and bytes of every file), the Dockerfile path, the build arguments and the base image's id: a tag that exists
is reused, so each image is built once and again only when its folder (or the base) changes. Builds never
use the network (``network_mode="none"``); the grand-challenge template image installs numpy and tifffile
from a wheelhouse that :func:`wheelhouse` downloads once on the host (``pip download``) into a cache.

Images:

* ``containers/hostile/Dockerfile`` (``setuid/Dockerfile`` for that attack; context ``containers/hostile/``):
  :func:`build_hostile`;
* ``containers/gc-template-lmc/`` plus a ``wheels/`` folder: :func:`build_gc_template`.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import shutil
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONTAINERS = REPO / "containers"
HOSTILE = CONTAINERS / "hostile"
GC_TEMPLATE = CONTAINERS / "gc-template-lmc"
TAG_PREFIX = "vsbench-test/"
ATTACKS = ("gt-search", "write-input", "escape-output", "network", "fork-bomb", "memory-hog", "sleep-forever",
           "huge-output", "setuid")
_IGNORED = ("__pycache__", ".pyc", ".DS_Store")


class ImageBuildError(RuntimeError):
    """A test image could not be built (one line, with the tail of the build log)."""


def _files(folder: Path) -> list[Path]:
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if d not in _IGNORED)
        found += [Path(dirpath) / f for f in sorted(filenames) if not f.endswith(_IGNORED)]
    return sorted(found)


def context_hash(folder: Path, *, dockerfile: str = "Dockerfile", buildargs: dict[str, str] | None = None,
                 base_id: str = "") -> str:
    """sha256 (hex) of a build context and what else decides the image."""
    h = hashlib.sha256()
    h.update(json.dumps({"dockerfile": dockerfile, "buildargs": buildargs or {}, "base": base_id},
                        sort_keys=True).encode())
    for path in _files(folder):
        st = path.lstat()
        h.update(f"\n{path.relative_to(folder).as_posix()}\t{st.st_mode & 0o777}\t{st.st_size}\n".encode())
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def _tail(log) -> str:
    lines = []
    for chunk in log or ():
        if isinstance(chunk, dict):
            lines += str(chunk.get("stream") or chunk.get("error") or "").splitlines()
    return " | ".join(line for line in lines[-8:] if line.strip())


def build_image(client, name: str, context: Path, *, dockerfile: str = "Dockerfile",
                buildargs: dict[str, str] | None = None, base_image: str | None = None,
                hash_context: Path | None = None) -> str:
    """Build ``context`` as ``vsbench-test/<name>:<hash12>`` unless that tag exists; returns the tag.

    ``hash_context``: the folder whose content names the image when ``context`` is a temporary copy of it
    (default ``context``). ``base_image`` goes in as the ``BASE_IMAGE`` build argument, and its id in the hash.
    """
    import docker

    buildargs = dict(buildargs or {})
    base_id = ""
    if base_image:
        buildargs.setdefault("BASE_IMAGE", base_image)
        base_id = client.images.get(base_image).id
    digest = context_hash(hash_context or context, dockerfile=dockerfile, buildargs=buildargs, base_id=base_id)
    tag = f"{TAG_PREFIX}{name}:{digest[:12]}"
    try:
        client.images.get(tag)
        return tag
    except docker.errors.ImageNotFound:
        pass
    try:
        client.images.build(path=str(context), dockerfile=dockerfile, tag=tag, buildargs=buildargs,
                            network_mode="none", rm=True, forcerm=True, pull=False)
    except docker.errors.BuildError as exc:
        raise ImageBuildError(f"building {tag} from {context}: {exc.msg} [{_tail(exc.build_log)}]") from None
    except docker.errors.APIError as exc:
        raise ImageBuildError(f"building {tag} from {context}: {exc}") from None
    _drop_older(client, name, tag)
    return tag


def _drop_older(client, name: str, keep: str) -> None:
    """Remove the other tags of ``vsbench-test/<name>`` (earlier versions of the folder); errors are ignored."""
    import docker

    try:
        images = client.images.list(name=f"{TAG_PREFIX}{name}")
    except docker.errors.APIError:
        return
    for image in images:
        for tag in image.tags:
            if tag != keep and tag.startswith(f"{TAG_PREFIX}{name}:"):
                try:
                    client.images.remove(tag, noprune=False)
                except docker.errors.APIError:
                    pass  # in use by a container, or already gone


def build_hostile(client, attack: str, attack_case: str, base_image: str) -> str:
    """The hostile image of ``attack`` (``containers/hostile/``, build argument ``ATTACK``) attacking the case
    whose file stem is ``attack_case`` (``*``: every case); returns its tag."""
    if attack not in ATTACKS:
        raise ValueError(f"unknown attack {attack!r} (one of {', '.join(ATTACKS)})")
    dockerfile = "setuid/Dockerfile" if attack == "setuid" else "Dockerfile"
    return build_image(client, f"hostile-{attack}", HOSTILE, dockerfile=dockerfile,
                       buildargs={"ATTACK": attack, "ATTACK_CASE": attack_case}, base_image=base_image)


def wheel_requirements() -> list[str]:
    """numpy (< 2) and tifffile, pinned to the versions of this environment when it has them."""
    reqs = []
    for package, fallback in (("numpy", "numpy<2"), ("tifffile", "tifffile")):
        try:
            version = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            version = None
        ok = version is not None and (package != "numpy" or int(version.split(".")[0]) < 2)
        reqs.append(f"{package}=={version}" if ok else fallback)
    return reqs


def wheelhouse(requirements: list[str] | None = None) -> Path:
    """The host-side wheelhouse of :func:`wheel_requirements` for the images' CPython 3.11
    (:func:`vsbench.harness.images.wheelhouse`, made once with ``pip download`` and cached)."""
    from vsbench.harness.images import wheelhouse as make_wheelhouse

    return make_wheelhouse(requirements or wheel_requirements())


def build_gc_template(client, base_image: str) -> str:
    """The grand-challenge template LMC image (``containers/gc-template-lmc/``) with the wheelhouse copied in
    as ``wheels/``; returns its tag."""
    wheels = wheelhouse()
    with tempfile.TemporaryDirectory(prefix="vsbench-gc-template.") as tmp:
        context = Path(tmp) / "context"
        shutil.copytree(GC_TEMPLATE, context, ignore=shutil.ignore_patterns(*_IGNORED, "wheels"))
        shutil.copytree(wheels, context / "wheels")
        return build_image(client, "gc-template-lmc", context, base_image=base_image)
