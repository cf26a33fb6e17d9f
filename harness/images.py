"""Build the vsbench solution images hermetically: ``vsbench containers build patchgan|vqgan --weights DIR``.

Two layers of images (``containers/``):

* the **runtime image** (``containers/runtime/Dockerfile``): a venv ``/opt/vsbench`` holding vsbench (its wheel,
  built here from the source tree, installed with ``--no-deps`` in a layer of its own) and what its predictors import
  (``containers/runtime/requirements.txt``: torch, numpy<2, scipy<1.11, tifffile, tqdm), on a base image with
  python 3.11. The packages come from a **wheelhouse** made on the host (:func:`wheelhouse`: ``pip download``,
  cached by the requirements' hash) and copied into the build context; the build runs with
  ``network_mode="none"``, so no ``RUN`` step reaches a network. When the base image already has torch (a CUDA
  PyTorch image, :data:`DEFAULT_BASE_IMAGE`), the torch line is left out and the base's torch is used (the venv
  sees the base's packages); on the offline Debian base (:data:`OFFLINE_BASE_IMAGE`) torch==2.13.0 comes from
  the wheelhouse.
* a **solution image** per set of weights (``containers/patchgan/Dockerfile``, ``containers/vqgan/Dockerfile``):
  FROM the runtime image, the weights baked into ``/opt/ml/model`` (root-owned, read-only), the
  ``org.vsbench.*`` labels of the container contract (:mod:`vsbench.harness.contract`), a non-root user and the
  entrypoint ``vsbench predict ALGORITHM --input /input --output /output --checkpoint /opt/ml/model --device
  auto``. The weights are checked first (:func:`inspect_weights` loads them as ``vsbench predict`` would).

Reproducible: every build context is a tar written here with fixed owners, modes and times, and the vsbench wheel
and the wheelhouse are cached by content, so building the same weights on the same base again hits the engine's
layer cache and gives the same image id. Builds use the engine's classic builder through the Docker SDK's
low-level API (:func:`build_image`).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from vsbench.harness import __version__
from vsbench.harness.contract import (
    CONTRACT_VERSION,
    INPUT_SOCKETS,
    LABEL_BATCH,
    LABEL_CONTRACT_VERSION,
    LABEL_GPU,
    LABEL_INPUT_SOCKETS,
    LABEL_MODEL_NAME,
    LABEL_MODEL_VERSION,
    LABEL_OUTPUT_SOCKETS,
    LABEL_TASK,
    LMC,
    ORGANELLES,
    OUTPUT_SOCKETS,
    one_line,
)

__all__ = [
    "DEFAULT_BASE_IMAGE", "OFFLINE_BASE_IMAGE", "SOLUTIONS", "REPO", "CONTAINERS", "RUNTIME_REQUIREMENTS",
    "ImageBuildError", "BaseInfo", "ModelWeights", "wheelhouse", "vsbench_wheel", "build_image", "probe_base_image",
    "build_runtime_image", "inspect_weights", "stage_weights", "build_solution_image", "build_offline_base",
    "expected_labels", "read_requirements", "runtime_requirements",
]

# The CUDA PyTorch image users with a GPU build on (Docker Hub, official PyTorch images; python 3.11 as in
# pytorch's own Dockerfile, torch 2.9.0 + CUDA 12.8 + cuDNN 9). Its torch is used, not the wheelhouse's.
DEFAULT_BASE_IMAGE = "pytorch/pytorch:2.9.0-cuda12.8-cudnn9-runtime"
# The offline base of hosts without a registry (containers/base/build.sh): Debian bookworm + python3 3.11.2.
OFFLINE_BASE_IMAGE = "vsbench/base:bookworm"
SOLUTIONS = ("patchgan", "vqgan")

REPO = Path(__file__).resolve().parents[1]  # the source tree (harness/ is vsbench.harness)
CONTAINERS = REPO / "containers"
RUNTIME_REQUIREMENTS = CONTAINERS / "runtime" / "requirements.txt"
PACKAGE_DIRS = ("harness", "metrics", "algorithms", "leaderboard")  # pyproject.toml [tool.setuptools.package-dir]
DEFAULT_CACHE = Path.home() / ".cache" / "vsbench"
RUNTIME_REPOSITORY = "vsbench/runtime"
RUNTIME_KEY_LABEL = "vsbench.runtime.key"  # not org.vsbench.*: that prefix declares a contract image
RUNTIME_TORCH_LABEL = "vsbench.runtime.torch"  # where its torch comes from
MODEL_DIR = "model"  # in the build context; /opt/ml/model in the image
# manylinux tags a python:3.11 Debian bookworm (glibc 2.36) or Ubuntu 22.04 (glibc 2.35) base can load
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64", "linux_x86_64", "any")
_EPOCH = 315532800  # 1980-01-01, the earliest time a zip (wheel) can hold: fixed times in contexts and wheels

# the algorithm of a solution's weights, by task (vsbench.algorithms.registry)
ALGORITHMS = {
    ("patchgan", "adipocyte"): "adipocyte-patchgan-tiny",
    ("patchgan", LMC): "patchgan-lmc-tiny",
    ("vqgan", "adipocyte"): "adipocyte-vqgan-tiny",
    ("vqgan", LMC): "vqgan-lmc-tiny",
}
ADIPOCYTE_CHANNELS = tuple(OUTPUT_SOCKETS["adipocyte"])  # nuclei, lipids, cytoplasm


class ImageBuildError(RuntimeError):
    """A wheelhouse, wheel, weights folder or image that could not be made (one-line message)."""


def _why(exc: BaseException) -> str:
    """One line of an engine error: the daemon's explanation when the SDK has one."""
    explanation = getattr(exc, "explanation", None)
    text = explanation.decode(errors="replace") if isinstance(explanation, bytes) else explanation
    return " ".join(str(text).split()) if text else one_line(exc)


# --- host side: wheels --------------------------------------------------------------------------------------


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _requirement_lines(requirements: Iterable[str]) -> list[str]:
    """Requirement lines without comments and blanks, whitespace-stripped, sorted, unique."""
    lines = {line.split("#", 1)[0].strip() for line in requirements}
    return sorted(line for line in lines if line)


def read_requirements(path: Path = RUNTIME_REQUIREMENTS) -> list[str]:
    """The requirement lines of a requirements file (:func:`_requirement_lines`)."""
    return _requirement_lines(Path(path).read_text().splitlines())


def _run(cmd: list[str], what: str, env: dict | None = None) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        lines = [ln.strip() for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
        errors = [ln for ln in lines if ln.startswith("ERROR")] or lines or [f"exit code {proc.returncode}"]
        raise ImageBuildError(f"{what}: {errors[-1][:300]}")


def wheelhouse(requirements: list[str], cache_dir: Path | None = None, python_version: str = "3.11") -> Path:
    """A folder of wheels that installs ``requirements`` offline on a linux x86_64 CPython ``python_version``.

    ``pip download --only-binary=:all: --python-version X --implementation cp --platform manylinux... -d DIR`` (if
    that fails and this interpreter is that Python version: a plain ``pip download``), into
    ``CACHE/wheelhouse/<sha256 of the sorted requirement lines and the target>`` (``CACHE``: ``cache_dir``, default
    ``~/.cache/vsbench``). Written atomically (a temporary folder renamed once complete, with a
    ``wheelhouse.json`` listing the wheels and their sha256), and reused while complete. Returns the folder.
    """
    lines = _requirement_lines(requirements)
    if not lines:
        raise ImageBuildError("wheelhouse: no requirements")
    target = {"python_version": python_version, "platforms": list(PLATFORMS), "implementation": "cp"}
    key = hashlib.sha256(json.dumps({"requirements": lines, **target}, sort_keys=True).encode()).hexdigest()
    root = Path(cache_dir or DEFAULT_CACHE) / "wheelhouse"
    folder = root / key[:24]
    if _wheelhouse_complete(folder):
        return folder
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key[:24]}.", dir=root))
    try:
        abi = "cp" + python_version.replace(".", "")
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "-d", str(tmp),
               "--only-binary=:all:", "--python-version", python_version, "--implementation", "cp", "--abi", abi]
        for platform in PLATFORMS:
            cmd += ["--platform", platform]
        try:
            _run([*cmd, *lines], "pip download")
        except ImageBuildError:
            if f"{sys.version_info.major}.{sys.version_info.minor}" != python_version:
                raise
            _run([sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "-d", str(tmp),
                  "--only-binary=:all:", *lines], "pip download")
        wheels = sorted(p for p in tmp.iterdir() if p.suffix == ".whl")
        if not wheels:
            raise ImageBuildError(f"pip download: no wheel for {', '.join(lines)}")
        manifest = {"requirements": lines, **target, "wheels": {p.name: _sha256_file(p) for p in wheels}}
        (tmp / "wheelhouse.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        try:
            os.rename(tmp, folder)
        except OSError:  # another process completed it first
            if not _wheelhouse_complete(folder):
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def _wheelhouse_complete(folder: Path) -> bool:
    try:
        wheels = json.loads((folder / "wheelhouse.json").read_text())["wheels"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return bool(wheels) and all((folder / name).is_file() for name in wheels)


def _wheelhouse_wheels(folder: Path) -> dict[str, str]:
    """Wheel file name -> sha256, as recorded in the wheelhouse's ``wheelhouse.json``."""
    return dict(json.loads((folder / "wheelhouse.json").read_text())["wheels"])


def _source_files(repo: Path = REPO) -> list[Path]:
    """The files the vsbench wheel is built from (relative to ``repo``), sorted."""
    files = [Path("pyproject.toml"), Path("README.md")]
    for top in PACKAGE_DIRS:
        for path in sorted((repo / top).rglob("*")):
            rel = path.relative_to(repo)
            if path.is_file() and not any(part == "__pycache__" or part.startswith(".") for part in rel.parts):
                files.append(rel)
    return sorted(f for f in files if (repo / f).is_file())


def vsbench_wheel(out_dir: Path, cache_dir: Path | None = None) -> Path:
    """The vsbench wheel of the source tree, copied into ``out_dir``; returns its path there.

    Built with ``pip wheel --no-deps --no-build-isolation`` from a copy of ``pyproject.toml``, ``README.md`` and
    the package folders (the source tree is not written to), with ``SOURCE_DATE_EPOCH`` fixed; cached in
    ``CACHE/wheels/<sha256 of those files>/`` so that the same sources always give the same bytes (and the same
    image layers)."""
    files = _source_files()
    digest = hashlib.sha256()
    for rel in files:
        digest.update(rel.as_posix().encode() + b"\0" + _sha256_file(REPO / rel).encode() + b"\n")
    key = digest.hexdigest()
    folder = Path(cache_dir or DEFAULT_CACHE) / "wheels" / key[:24]
    cached = sorted(folder.glob("vsbench-*.whl")) if folder.is_dir() else []
    if not cached:
        folder.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="vsbench-wheel-") as tmp:
            src, dist = Path(tmp) / "src", Path(tmp) / "dist"
            for rel in files:
                (src / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(REPO / rel, src / rel)
            env = {**os.environ, "SOURCE_DATE_EPOCH": str(_EPOCH), "PIP_NO_INPUT": "1"}
            _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check", "--no-deps",
                  "--no-build-isolation", "-w", str(dist), str(src)], "building the vsbench wheel", env=env)
            built = sorted(dist.glob("vsbench-*.whl"))
            if len(built) != 1:
                raise ImageBuildError(f"building the vsbench wheel: expected one wheel, got {len(built)}")
            staging = Path(tempfile.mkdtemp(prefix=f".{key[:24]}.", dir=folder.parent))
            shutil.copy2(built[0], staging / built[0].name)
            try:
                os.rename(staging, folder)
            except OSError:
                shutil.rmtree(staging, ignore_errors=True)
        cached = sorted(folder.glob("vsbench-*.whl"))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(cached[0], out_dir / cached[0].name)
    return out_dir / cached[0].name


# --- build contexts and the engine ------------------------------------------------------------------------


def _add_tree(tar: tarfile.TarFile, src: Path, arcname: str, read_only: bool = False) -> None:
    """Add ``src`` (a file or a folder, recursively, sorted) as ``arcname`` with root owner, fixed time and
    modes 0644 / 0755 (``read_only``: 0444 / 0555)."""
    file_mode, dir_mode = (0o444, 0o555) if read_only else (0o644, 0o755)

    def info(name: str, is_dir: bool, size: int = 0) -> tarfile.TarInfo:
        ti = tarfile.TarInfo(name)
        ti.type = tarfile.DIRTYPE if is_dir else tarfile.REGTYPE
        ti.mode, ti.size, ti.mtime = (dir_mode if is_dir else file_mode), size, _EPOCH
        ti.uid = ti.gid = 0
        ti.uname = ti.gname = "root"
        return ti

    if src.is_dir():
        tar.addfile(info(arcname, True))
        for child in sorted(src.iterdir()):
            if child.is_symlink():
                raise ImageBuildError(f"{child}: symbolic links are not put into images")
            _add_tree(tar, child, f"{arcname}/{child.name}", read_only)
    else:
        with open(src, "rb") as fh:
            tar.addfile(info(arcname, False, src.stat().st_size), fh)


def _context_tar(entries: Iterable[tuple[str, Path | bytes, bool]], into: Path) -> Path:
    """Write a build context tar to ``into``: ``(name, file / folder / bytes, read_only)`` entries, in order."""
    with tarfile.open(into, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, src, read_only in entries:
            if isinstance(src, bytes):
                ti = tarfile.TarInfo(name)
                ti.size, ti.mtime, ti.mode = len(src), _EPOCH, 0o444 if read_only else 0o644
                ti.uname = ti.gname = "root"
                tar.addfile(ti, io.BytesIO(src))
            else:
                _add_tree(tar, Path(src), name, read_only)
    return into


def _client(client=None):
    if client is not None:
        return client
    try:
        import docker

        found = docker.from_env(timeout=900)
        found.ping()
        return found
    except Exception as exc:  # no SDK, no socket, engine down
        raise ImageBuildError(f"no Docker engine answers ({type(exc).__name__}: {one_line(exc)[:160]})") from None


def _api(client):
    return getattr(client, "api", client)  # a DockerClient or an APIClient


def _image_id(client, name: str) -> str | None:
    import docker

    try:
        return _api(client).inspect_image(name)["Id"]
    except docker.errors.ImageNotFound:
        return None


def _image_labels(client, name: str) -> dict[str, str]:
    return dict((_api(client).inspect_image(name).get("Config") or {}).get("Labels") or {})


def build_image(context: Path, tag: str, buildargs: dict | None = None, labels: dict | None = None, client=None,
                progress: bool = True, dockerfile: str = "Dockerfile") -> str:
    """Build the image of ``context`` (a folder, or a tar of one) as ``tag``; returns its id ``sha256:...``.

    The Docker SDK's low-level ``build`` (the engine's classic builder) with ``network_mode="none"`` (no ``RUN``
    step reaches a network), ``pull=False``, no proxy build args, intermediate containers removed. A folder is
    sent as a tar with fixed owners and times (the layer cache then depends on contents only). The build steps
    go to stderr when ``progress``. :class:`ImageBuildError` with the engine's error (and the last line of
    output before it) if the build fails."""
    context = Path(context)
    client = _client(client)
    with tempfile.TemporaryDirectory(prefix="vsbench-context-") as tmp:
        if context.is_dir():
            entries = [(child.name, child, False) for child in sorted(context.iterdir())]
            tar_path = _context_tar(entries, Path(tmp) / "context.tar")
        else:
            tar_path = context
        last_output = ""
        with open(tar_path, "rb") as fh:
            try:
                stream = _api(client).build(
                    fileobj=fh, custom_context=True, tag=tag, dockerfile=dockerfile, buildargs=buildargs or {},
                    labels=labels or None, decode=True, network_mode="none", rm=True, forcerm=True, pull=False,
                    use_config_proxy=False)
                for chunk in stream:
                    if "error" in chunk or "errorDetail" in chunk:
                        error = chunk.get("error") or (chunk.get("errorDetail") or {}).get("message") or "failed"
                        error = " ".join(str(error).split())
                        detail = f" (last output: {last_output[:200]})" if last_output else ""
                        raise ImageBuildError(f"docker build {tag}: {error[:300]}{detail}")
                    text = chunk.get("stream")
                    if text:
                        if progress:
                            sys.stderr.write(text)
                            sys.stderr.flush()
                        stripped = [ln.strip() for ln in text.splitlines() if ln.strip()]
                        if stripped and not stripped[-1].startswith("--->"):
                            last_output = stripped[-1]
            except ImageBuildError:
                raise
            except Exception as exc:  # API errors, a broken connection
                raise ImageBuildError(f"docker build {tag}: {_why(exc)[:300]}") from None
    image_id = _image_id(client, tag)
    if image_id is None:
        raise ImageBuildError(f"docker build {tag}: the build ended without an image")
    return image_id


# --- the runtime image --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BaseInfo:
    """What :func:`probe_base_image` found in a base image: its id, the ``python3`` version (``3.11``) and the
    torch version it already has (None: torch comes from the wheelhouse)."""

    image: str
    image_id: str
    python: str
    torch: str | None = None
    cuda: str | None = None


_PROBE = """
import json, sys
info = {"python": "%d.%d" % sys.version_info[:2], "torch": None, "cuda": None}
try:
    import torch
    info["torch"], info["cuda"] = torch.__version__, torch.version.cuda
except Exception:
    pass
print("VSBENCH-PROBE " + json.dumps(info))
"""


def _ensure_image(client, image: str, progress: bool) -> str:
    """The id of ``image``, pulled first if it is not here; :class:`ImageBuildError` if it cannot be had."""
    image_id = _image_id(client, image)
    if image_id is not None:
        return image_id
    if progress:
        print(f"pulling {image} ...", file=sys.stderr)
    try:
        _api(client).pull(image)
    except Exception as exc:
        hint = "" if image == OFFLINE_BASE_IMAGE else (f"; without a registry use the offline base: vsbench "
                                                       f"containers base, then --base-image {OFFLINE_BASE_IMAGE}")
        raise ImageBuildError(f"base image {image} is not here and could not be pulled "
                              f"({_why(exc)[:160]}){hint}") from None
    image_id = _image_id(client, image)
    if image_id is None:
        raise ImageBuildError(f"base image {image}: pulled, but the engine does not list it")
    return image_id


def probe_base_image(image: str, client=None, progress: bool = False) -> BaseInfo:
    """Run ``python3`` in ``image`` (no network, removed after) to learn its Python version and whether it has
    torch (and which CUDA); pulls the image first if it is not here."""
    client = _client(client)
    image_id = _ensure_image(client, image, progress)
    try:
        out = client.containers.run(image_id, ["-c", _PROBE], entrypoint=["python3"], network_mode="none",
                                    remove=True, stdout=True, stderr=True)
    except Exception as exc:
        raise ImageBuildError(f"base image {image}: 'python3' does not run in it ({_why(exc)[:160]})") from None
    for line in out.decode(errors="replace").splitlines():
        if line.startswith("VSBENCH-PROBE "):
            info = json.loads(line.removeprefix("VSBENCH-PROBE "))
            return BaseInfo(image, image_id, info["python"], info["torch"], info["cuda"])
    raise ImageBuildError(f"base image {image}: the python3 probe printed nothing")


def runtime_requirements(base: BaseInfo, requirements: list[str] | None = None) -> list[str]:
    """The requirement lines to install on ``base``: :data:`RUNTIME_REQUIREMENTS`, without torch when the base
    image has its own."""
    lines = _requirement_lines(requirements if requirements is not None else read_requirements())
    if base.torch:
        lines = [ln for ln in lines if not _is_torch(ln)]
    return lines


def _is_torch(line: str) -> bool:
    name = line.split(";")[0]
    for sep in "<>=!~[ ":
        name = name.split(sep)[0]
    return name.strip().lower() == "torch"


def build_runtime_image(base_image: str = DEFAULT_BASE_IMAGE, tag: str | None = None, client=None,
                        progress: bool = True, cache_dir: Path | None = None) -> str:
    """Build (or find) the vsbench runtime image on ``base_image``; returns its id.

    Probes the base (:func:`probe_base_image`), makes the :func:`wheelhouse` of :func:`runtime_requirements` for
    its Python and the :func:`vsbench_wheel`, and builds ``containers/runtime/Dockerfile`` as ``tag`` (default
    ``vsbench/runtime:<vsbench version>-<key>``, ``key`` a short sha256 of the base image id, the Dockerfile, the
    requirements and every wheel). An image already tagged so with the same key (label ``vsbench.runtime.key``)
    is reused without a build."""
    client = _client(client)
    base = probe_base_image(base_image, client, progress)
    if base.python != "3.11":
        raise ImageBuildError(f"base image {base_image} has python {base.python}; the runtime needs python 3.11 "
                              f"(scipy<1.11 has no wheels for newer Pythons)")
    lines = runtime_requirements(base)
    with tempfile.TemporaryDirectory(prefix="vsbench-runtime-") as tmp:
        house = wheelhouse(lines, cache_dir, python_version=base.python)
        wheel = vsbench_wheel(Path(tmp) / "vsbench", cache_dir)
        dockerfile = (CONTAINERS / "runtime" / "Dockerfile").read_bytes()
        requirements = ("\n".join(lines) + "\n").encode()
        digest = hashlib.sha256()
        for part in (base.image_id, hashlib.sha256(dockerfile).hexdigest(), requirements.decode(),
                     json.dumps(_wheelhouse_wheels(house), sort_keys=True), wheel.name, _sha256_file(wheel)):
            digest.update(part.encode() + b"\n")
        key = digest.hexdigest()[:12]
        tag = tag or f"{RUNTIME_REPOSITORY}:{__version__}-{key}"
        if _image_id(client, tag) is not None and _image_labels(client, tag).get(RUNTIME_KEY_LABEL) == key:
            return _image_id(client, tag)
        entries = [("Dockerfile", dockerfile, False), ("requirements.txt", requirements, False),
                   ("vsbench", wheel.parent, False)]
        (Path(tmp) / "wheels").mkdir()
        entries.append(("wheels", Path(tmp) / "wheels", False))
        for name in sorted(_wheelhouse_wheels(house)):
            entries.append((f"wheels/{name}", house / name, False))
        tar_path = _context_tar(entries, Path(tmp) / "context.tar")
        torch_source = f"{base.torch} (base image)" if base.torch else next(
            (ln for ln in lines if _is_torch(ln)), "none")
        labels = {RUNTIME_KEY_LABEL: key, RUNTIME_TORCH_LABEL: torch_source,
                  "org.opencontainers.image.title": "vsbench runtime",
                  "org.opencontainers.image.version": __version__,
                  "org.opencontainers.image.base.name": base_image,
                  "org.opencontainers.image.base.digest": base.image_id}
        return build_image(tar_path, tag, {"BASE_IMAGE": base.image_id}, labels, client, progress)


# --- weights and solution images -----------------------------------------------------------------------------


@dataclass
class ModelWeights:
    """A checked set of weights: the ``solution`` family, its ``task`` and registry ``algorithm``, the model
    ``name`` the predictor reports once loaded, and ``files``: path in ``/opt/ml/model`` -> source file."""

    solution: str
    task: str
    algorithm: str
    name: str = ""
    files: dict[str, Path] = field(default_factory=dict)
    version: str = ""  # short sha256 of the staged weights (set by stage_weights)
    sha256: str = ""


def _patchgan_files(weights: Path) -> tuple[str, dict[str, Path]]:
    from vsbench.algorithms.patchgan.predictor import checkpoint_files
    from vsbench.algorithms.patchgan.train import config_from_checkpoint, load_checkpoint

    files = checkpoint_files(weights)
    task = config_from_checkpoint(load_checkpoint(files[0])).task
    staged = {"checkpoint.pt": files[0]}
    for sub in files[1:]:
        staged[f"{sub.parent.name}/checkpoint.pt"] = sub
    return task, staged


def _vqgan_files(weights: Path) -> tuple[str, dict[str, Path]]:
    from vsbench.algorithms.vqgan.predictor import specialist_checkpoint

    if not weights.is_dir():
        raise FileNotFoundError(f"{weights}: not a folder of vqgan specialists (ROOT/<organelle or channel>/)")
    present = {p.name for p in weights.iterdir() if p.is_dir()}
    organelles, channels = present & set(ORGANELLES), present & set(ADIPOCYTE_CHANNELS)
    if organelles and channels:
        raise ValueError(f"{weights}: holds both LMC organelles ({', '.join(sorted(organelles))}) and adipocyte "
                         f"channels ({', '.join(sorted(channels))}); give one task's specialists")
    task, names = (LMC, ORGANELLES) if organelles or not channels else ("adipocyte", ADIPOCYTE_CHANNELS)
    missing = [n for n in names if n not in present]
    if missing:
        raise FileNotFoundError(f"{weights}: no {', '.join(missing)} specialist folder (a {task} vqgan needs "
                                f"{', '.join(names)})")
    staged = {}
    for name in names:
        path = specialist_checkpoint(weights, name)
        staged[f"{name}/{path.name}"] = path
    return task, staged


def inspect_weights(solution: str, weights: Path | str) -> ModelWeights:
    """What ``weights`` are for ``solution`` (``patchgan``, ``vqgan``): the task, the algorithm and the files
    to bake in; :class:`ImageBuildError` (one line) if they are not weights of that solution.

    patchgan: a ``vsbench train patchgan`` folder (``checkpoint.pt``, plus ``stage2_<channel>/`` folders) or one
    checkpoint file in it (e.g. ``best.pt``); its config's task gives ``adipocyte-patchgan-tiny`` or
    ``patchgan-lmc-tiny``. vqgan: a root of specialist folders (``best.pt`` if there, else ``checkpoint.pt``):
    nucleus, mitochondria, tubulin, actin -> ``vqgan-lmc-tiny``; nuclei, lipids, cytoplasm ->
    ``adipocyte-vqgan-tiny``. That they load is checked by :func:`stage_weights`."""
    if solution not in SOLUTIONS:
        raise ImageBuildError(f"unknown solution {solution!r}; one of {', '.join(SOLUTIONS)}")
    weights = Path(weights)
    if not weights.exists():
        raise ImageBuildError(f"{weights}: no such weights folder or file")
    try:
        task, files = (_patchgan_files if solution == "patchgan" else _vqgan_files)(weights)
    except Exception as exc:  # missing files, unreadable checkpoints, wrong dict layouts
        raise ImageBuildError(f"{weights}: not loadable {solution} weights ({one_line(exc)[:200]})") from None
    if (solution, task) not in ALGORITHMS:
        raise ImageBuildError(f"{weights}: {solution} weights of task {task!r}, which has no contract")
    return ModelWeights(solution, task, ALGORITHMS[solution, task], files=files)


def _tree_digest(folder: Path) -> str:
    """sha256 over every file under ``folder``: relative path, NUL, the file's sha256, newline; sorted by path."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0" + _sha256_file(path).encode() + b"\n")
    return digest.hexdigest()


def stage_weights(model: ModelWeights, into: Path) -> Path:
    """Copy the weights' files into ``into`` (the folder that becomes ``/opt/ml/model``), load them from there
    as the image will (``make_algorithm(algorithm, checkpoint=into)``, on the CPU) and record the model's name
    and its version (the first 12 hex digits of :func:`_tree_digest`); :class:`ImageBuildError` if they do not
    load. Returns ``into``."""
    from vsbench.algorithms.registry import algorithm_class

    into = Path(into)
    for rel, src in model.files.items():
        (into / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, into / rel)
    try:
        cls = algorithm_class(model.algorithm)
        predictor = cls(checkpoint=into, device="cpu")
    except Exception as exc:
        raise ImageBuildError(f"{model.algorithm}: the weights do not load ({one_line(exc)[:200]})") from None
    if getattr(predictor, "task", LMC) != model.task:
        raise ImageBuildError(f"{model.algorithm}: loaded a {getattr(predictor, 'task', LMC)} model, expected "
                              f"{model.task}")
    model.name = getattr(predictor, "name", model.algorithm)
    model.sha256 = _tree_digest(into)
    model.version = model.sha256[:12]
    return into


def expected_labels(model: ModelWeights) -> dict[str, str]:
    """The ``org.vsbench.*`` labels of the solution image of ``model`` (``containers/CONTRACT.md``)."""
    return {
        LABEL_TASK: model.task,
        LABEL_CONTRACT_VERSION: CONTRACT_VERSION,
        LABEL_INPUT_SOCKETS: INPUT_SOCKETS[model.task],
        LABEL_OUTPUT_SOCKETS: ",".join(OUTPUT_SOCKETS[model.task].values()),
        LABEL_BATCH: "true",
        LABEL_GPU: "true",
        LABEL_MODEL_NAME: model.name,
        LABEL_MODEL_VERSION: model.version,
    }


def build_solution_image(solution: str, weights: Path | str, base_image: str = DEFAULT_BASE_IMAGE,
                         tag: str | None = None, client=None, progress: bool = True, cache_dir: Path | None = None,
                         runtime_image: str | None = None) -> str:
    """Build the image of a ``solution`` (``patchgan``, ``vqgan``) with ``weights`` baked in; returns its id.

    Checks the weights (:func:`inspect_weights`, :func:`stage_weights`), builds or reuses the runtime image on
    ``base_image`` (:func:`build_runtime_image`; or takes ``runtime_image``), then ``containers/<solution>/
    Dockerfile`` FROM it with the weights in ``/opt/ml/model`` (root-owned, read-only) and the contract labels
    (:func:`expected_labels`). ``tag``: default ``vsbench/<solution>-<task>:<model version>-<runtime key>``."""
    model = inspect_weights(solution, weights)
    client = _client(client)
    with tempfile.TemporaryDirectory(prefix=f"vsbench-{solution}-") as tmp:
        staged = stage_weights(model, Path(tmp) / MODEL_DIR)
        runtime_id = _ensure_image(client, runtime_image, progress) if runtime_image else build_runtime_image(
            base_image, client=client, progress=progress, cache_dir=cache_dir)
        runtime_key = _image_labels(client, runtime_id).get(RUNTIME_KEY_LABEL) or runtime_id.split(":")[-1][:12]
        tag = tag or f"vsbench/{solution}-{model.task}:{model.version}-{runtime_key[:8]}"
        labels = expected_labels(model)
        buildargs = {
            "RUNTIME_IMAGE": runtime_id,
            "ALGORITHM": model.algorithm,
            "TASK": model.task,
            "INPUT_SOCKETS": labels[LABEL_INPUT_SOCKETS],
            "OUTPUT_SOCKETS": labels[LABEL_OUTPUT_SOCKETS],
            "MODEL_NAME": model.name,
            "MODEL_VERSION": model.version,
        }
        entries = [("Dockerfile", (CONTAINERS / solution / "Dockerfile").read_bytes(), False),
                   (MODEL_DIR, staged, True)]
        tar_path = _context_tar(entries, Path(tmp) / "context.tar")
        image_id = build_image(tar_path, tag, buildargs, None, client, progress)
    found = _image_labels(client, image_id)
    wrong = {k: found.get(k) for k, v in labels.items() if found.get(k) != v}
    if wrong:
        raise ImageBuildError(f"{tag}: labels differ from the contract's: {wrong}")
    return image_id


def build_offline_base(tag: str = OFFLINE_BASE_IMAGE) -> str:
    """Run ``containers/base/build.sh TAG`` (debootstrap, needs root; does nothing when TAG exists) and return the
    image id; :class:`ImageBuildError` with its last line on failure."""
    script = CONTAINERS / "base" / "build.sh"
    proc = subprocess.run([str(script), tag], capture_output=True, text=True)
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()] or [f"exit {proc.returncode}"]
        raise ImageBuildError(f"containers/base/build.sh: {lines[-1].strip()[:300]}")
    out = subprocess.run(["docker", "image", "inspect", "--format", "{{.Id}}", tag], capture_output=True, text=True)
    if out.returncode != 0:
        raise ImageBuildError(f"containers/base/build.sh: {tag} is not listed after the build")
    return out.stdout.strip()

