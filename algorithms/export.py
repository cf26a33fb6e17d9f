"""Weights-only checkpoints of the two reference solutions (``vsbench model export patchgan|vqgan``).

A training checkpoint (:mod:`vsbench.algorithms.patchgan.train`, :mod:`vsbench.algorithms.vqgan.train`) holds what
resuming needs: the inference network, the discriminator and both Adam states (a ``tiny`` VQGAN specialist: 3.6 MB,
of which the VQModel is 0.97 MB). An *exported* checkpoint keeps only the inference network and everything the
predictors and the provenance records read, so the same loaders load it and predict exactly the same (float32), or
the same to float16 rounding of the weights (``half``; cast back to float32 on load, so inference still runs in
float32):

* kept: ``format`` (unchanged: older readers that only load the inference network still work), ``config``,
  ``seed``, ``step``, the task keys (patchgan ``alignment``, ``magnification``, ``channels``, ``stage2``,
  ``reuse``; vqgan ``organelle``, ``target_window``), the validation score, and the inference network
  (patchgan ``generator``, vqgan ``model``);
* dropped: ``discriminator`` and the optimiser states (``g_opt``/``d_opt``, ``ae_opt``/``d_opt``): an exported
  checkpoint cannot resume training (the trainers say so in one line);
* added: ``weights_only`` (True), ``weights_dtype`` (``float32`` or ``float16``) and ``exported_from``: the source
  file's name relative to the exported root (``file``), its ``sha256`` and ``size``, ``weights_sha256`` (the
  :func:`weights_digest` of its inference network) and, for a Patch-GAN's Model 1, ``checkpoint_digest``: the source
  folder's :func:`~vsbench.algorithms.patchgan.predictor.checkpoint_digest`
  (what a prediction record of the source names). The trainers write their checkpoints through a temporary file
  whose name (with the process id) ends up inside the zip archive, so a bit-identical retraining still gives a
  training checkpoint of another sha256; ``weights_sha256`` depends only on the weights (names, dtypes, shapes,
  values) and so names the same network across reruns (and equals the :func:`weights_digest` of a float32 export).

Only floating-point tensors are halved (BatchNorm's ``num_batches_tracked`` stays int64). The files are written
from an in-memory buffer (the archive name inside the zip is then always ``archive``, not the temporary file's
name), so exporting the same source twice gives byte-identical files, and atomically (temporary file, rename).

Layouts, as the predictors load them: ``patchgan``: ``SRC`` a folder (its ``checkpoint.pt``) or a file (e.g.
``best.pt``), plus the ``stage2_<channel>/`` files :func:`~vsbench.algorithms.patchgan.predictor.checkpoint_files`
picks -> ``DST/checkpoint.pt`` and ``DST/stage2_<channel>/checkpoint.pt``. ``vqgan``: ``SRC`` a specialist file, a
specialist folder (``best.pt`` if there, else ``checkpoint.pt``, as the predictors choose) -> ``DST/checkpoint.pt``
(or ``DST`` itself when it ends in ``.pt``), or a root of specialist folders (``SRC/<organelle>/``) ->
``DST/<organelle>/checkpoint.pt`` for each.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Mapping
from pathlib import Path

import torch

__all__ = ["FAMILIES", "DROPPED", "NETWORK", "export_checkpoint", "export_patchgan", "export_vqgan", "export_state",
           "is_weights_only", "float32_weights", "save_state", "file_sha256", "weights_digest",
           "require_training_state"]

FAMILIES = ("patchgan", "vqgan")
NETWORK = {"patchgan": "generator", "vqgan": "model"}  # the inference network's state dict
DROPPED = {"patchgan": ("discriminator", "g_opt", "d_opt"), "vqgan": ("discriminator", "ae_opt", "d_opt")}
CHECKPOINT = "checkpoint.pt"
_SPECIALIST_FILES = ("best.pt", CHECKPOINT)  # the order vqgan.predictor.specialist_checkpoint picks them in


def file_sha256(path: Path | str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def weights_digest(weights: Mapping[str, torch.Tensor]) -> str:
    """sha256 over a state dict's tensors in key order: name, dtype, shape, then the values' bytes."""
    h = hashlib.sha256()
    for name in sorted(weights):
        t = weights[name].detach().cpu().contiguous()
        h.update(f"{name}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
        h.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def is_weights_only(state: Mapping) -> bool:
    """True for an exported checkpoint (no discriminator, no optimiser states)."""
    return bool(state.get("weights_only"))


def require_training_state(state: Mapping, path: object = "checkpoint") -> None:
    """:class:`ValueError` (one line) if ``state`` is an exported weights-only checkpoint: it cannot resume."""
    if is_weights_only(state):
        raise ValueError(f"{path} is a weights-only (exported) checkpoint: it has no discriminator or optimiser "
                         "state to resume training from; train into another folder, or resume from the full "
                         "checkpoint it was exported from")


def float32_weights(weights: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``weights`` with every floating-point tensor as float32 (a float16 export, cast back for inference)."""
    return {k: v.float() if torch.is_tensor(v) and v.is_floating_point() else v for k, v in weights.items()}


def _half_weights(weights: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.half() if torch.is_tensor(v) and v.is_floating_point() else v for k, v in weights.items()}


def export_state(state: Mapping, family: str, exported_from: dict, half: bool = False) -> dict:
    """The weights-only dict of a full training ``state`` of ``family`` (module docstring)."""
    if family not in FAMILIES:
        raise ValueError(f"unknown model family {family!r}; choose from {', '.join(FAMILIES)}")
    network = NETWORK[family]
    if network not in state:
        raise ValueError(f"not a {family} checkpoint: no {network!r} weights")
    out = {k: v for k, v in state.items() if k not in DROPPED[family]}
    if is_weights_only(state):  # re-exporting an export: keep its origin
        exported_from = state.get("exported_from") or exported_from
    weights = {k: v.detach().clone().contiguous() for k, v in state[network].items()}
    if not is_weights_only(state):
        exported_from = {**exported_from, "weights_sha256": weights_digest(weights)}
    out[network] = _half_weights(weights) if half else weights
    out["weights_only"] = True
    out["weights_dtype"] = "float16" if half else "float32"
    out["exported_from"] = dict(exported_from)
    return out


def save_state(state: Mapping, path: Path | str) -> Path:
    """``torch.save`` to ``path`` through a memory buffer (byte-reproducible), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    torch.save(dict(state), buf)
    tmp = path.parent / f".{path.name}.{os.getpid()}.tmp"
    tmp.write_bytes(buf.getvalue())
    tmp.replace(path)
    return path


def _check_target(dst: Path, overwrite: bool) -> None:
    if dst.exists() and not overwrite:
        raise FileExistsError(f"{dst} exists; choose another --out or pass --overwrite")


def _origin(src: Path, root: Path) -> dict:
    return {"file": src.relative_to(root).as_posix() if src.is_relative_to(root) else src.name,
            "sha256": file_sha256(src), "size": src.stat().st_size}


def export_patchgan(src: Path | str, dst: Path | str, half: bool = False, overwrite: bool = False) -> list[Path]:
    """Export a Patch-GAN checkpoint folder (or file) to the folder ``dst`` (module docstring); the written files."""
    from vsbench.algorithms.patchgan.predictor import checkpoint_digest, checkpoint_files
    from vsbench.algorithms.patchgan.train import load_checkpoint

    files = checkpoint_files(src)
    root, dst = files[0].parent, Path(dst)
    targets = [dst / CHECKPOINT] + [dst / f.parent.name / CHECKPOINT for f in files[1:]]
    for t in targets:
        _check_target(t, overwrite)
    digest = checkpoint_digest(src)
    written = []
    for i, (f, t) in enumerate(zip(files, targets, strict=True)):
        origin = _origin(f, root)
        if i == 0:
            origin["checkpoint_digest"] = digest
        written.append(save_state(export_state(load_checkpoint(f), "patchgan", origin, half), t))
    return written


def _vqgan_sources(src: Path) -> list[tuple[Path, str | None]]:
    """``(file, subfolder name or None)`` for each specialist of ``src`` (module docstring)."""
    if src.is_file():
        return [(src, None)]
    if not src.is_dir():
        raise FileNotFoundError(f"{src}: no vqgan checkpoint (file or folder)")
    for name in _SPECIALIST_FILES:
        if (src / name).is_file():
            return [(src / name, None)]
    found = []
    for sub in sorted(p for p in src.iterdir() if p.is_dir()):
        for name in _SPECIALIST_FILES:
            if (sub / name).is_file():
                found.append((sub / name, sub.name))
                break
    if not found:
        raise FileNotFoundError(f"{src}: no vqgan specialist (expected best.pt or checkpoint.pt in it, or in "
                                "its organelle subfolders)")
    return found


def export_vqgan(src: Path | str, dst: Path | str, half: bool = False, overwrite: bool = False) -> list[Path]:
    """Export one VQGAN specialist or a root of them (module docstring); the written files."""
    from vsbench.algorithms.vqgan.train import load_checkpoint

    src, dst = Path(src), Path(dst)
    sources = _vqgan_sources(src)
    root = src if src.is_dir() else src.parent
    if sources[0][1] is None:
        targets = [dst if dst.suffix == ".pt" else dst / CHECKPOINT]
    else:
        targets = [dst / sub / CHECKPOINT for _, sub in sources]
    for t in targets:
        _check_target(t, overwrite)
    states = [(load_checkpoint(f), f) for f, _ in sources]  # every one readable before any is written
    for (state, f), (_, sub) in zip(states, sources, strict=True):
        if sub is not None and state["organelle"] != sub:
            raise ValueError(f"{f} is a {state['organelle']} specialist, not {sub}")
    return [save_state(export_state(state, "vqgan", _origin(f, root), half), t)
            for (state, f), t in zip(states, targets, strict=True)]


def export_checkpoint(family: str, src: Path | str, dst: Path | str, half: bool = False,
                      overwrite: bool = False) -> list[Path]:
    """:func:`export_patchgan` or :func:`export_vqgan` by ``family``."""
    if family == "patchgan":
        return export_patchgan(src, dst, half, overwrite)
    if family == "vqgan":
        return export_vqgan(src, dst, half, overwrite)
    raise ValueError(f"unknown model family {family!r}; choose from {', '.join(FAMILIES)}")
