"""``vsbench model export patchgan|vqgan``: weights-only checkpoints (:mod:`vsbench.algorithms.export`)."""

from __future__ import annotations

import argparse
from pathlib import Path

EXPORT_DESCRIPTION = """\
Write a weights-only copy of a training checkpoint: the inference network, its config, step, task keys and the
sha256 of the checkpoint it came from, without the discriminator and the optimiser states (a tiny VQGAN specialist:
3.6 MB -> 1.0 MB). The predictors load it like the original and predict the same (float32), or the same to float16
rounding of the weights (--half; cast back to float32 on load). An export cannot resume training.

patchgan: --checkpoint a folder (its checkpoint.pt, plus stage2_<channel>/ files) or a file (best.pt) ->
OUT/checkpoint.pt (and OUT/stage2_<channel>/checkpoint.pt). vqgan: a specialist file or folder (best.pt if there,
else checkpoint.pt) -> OUT/checkpoint.pt (or OUT itself if it ends in .pt), or a root of specialist folders
(ROOT/<organelle>/) -> OUT/<organelle>/checkpoint.pt each."""


def _add_model_export(model_sub: argparse._SubParsersAction) -> None:
    """Add ``export`` to the ``vsbench model`` subparsers."""
    p = model_sub.add_parser("export", help="write a weights-only checkpoint (no discriminator, no optimisers)",
                             description=EXPORT_DESCRIPTION,
                             formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", choices=["patchgan", "vqgan"], help="model family")
    p.add_argument("--checkpoint", type=Path, required=True, help="the training checkpoint (folder or file)")
    p.add_argument("--out", type=Path, required=True, help="the exported checkpoint's folder (or .pt file)")
    p.add_argument("--half", action="store_true", help="store the weights as float16 (about half the size)")
    p.add_argument("--overwrite", action="store_true", help="replace existing files")
    p.set_defaults(func=_cmd_model_export)


def _cmd_model_export(args) -> int:
    from vsbench.algorithms.export import export_checkpoint, file_sha256

    written = export_checkpoint(args.model, args.checkpoint, args.out, half=args.half, overwrite=args.overwrite)
    for path in written:
        print(f"{path}: {path.stat().st_size:,} bytes, sha256 {file_sha256(path)}")
    return 0


PATH_DESCRIPTION = """\
Print the absolute folder of a checkpoint committed with vsbench (the CPU-trained tiny weights 'vsbench demo' uses),
and only that, so that a shell can use it:
  vsbench predict vqgan-lmc-tiny --split SPLIT --out OUT --checkpoint "$(vsbench model path vqgan-lmc-tiny)"
  vsbench containers build vqgan --weights "$(vsbench model path vqgan-lmc-tiny)"
or in a benchmark file, checkpoint: the printed folder. NAME: an algorithm name (vqgan-lmc-tiny,
adipocyte-patchgan-tiny) or the folder's own name (patchgan-adipocyte-tiny)."""


def _add_model_path(model_sub: argparse._SubParsersAction) -> None:
    """Add ``path`` to the ``vsbench model`` subparsers."""
    p = model_sub.add_parser("path", help="print the folder of a committed checkpoint (vqgan-lmc-tiny, "
                             "adipocyte-patchgan-tiny)", description=PATH_DESCRIPTION,
                             formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", metavar="NAME", help="algorithm or folder name of the committed checkpoint")
    p.set_defaults(func=_cmd_model_path)


def _cmd_model_path(args) -> int:
    from vsbench.algorithms.checkpoints import path

    try:
        folder = path(args.name)
    except KeyError as exc:
        raise ValueError(exc.args[0]) from None
    print(folder)
    return 0


def missing_weights(algorithm: str) -> str | None:
    """The one-line error for running ``algorithm`` with neither ``--checkpoint`` nor ``--train`` when it is a deep
    model (it learns and loads checkpoints): how to pass weights, the committed ones where there are some; None
    for any other algorithm (those that learn then ask for a training split themselves)."""
    from vsbench.algorithms.checkpoints import DEMO_CHECKPOINTS
    from vsbench.algorithms.registry import learns, loads_checkpoints

    if not (learns(algorithm) and loads_checkpoints(algorithm)):
        return None
    if algorithm in DEMO_CHECKPOINTS:
        return (f"algorithm '{algorithm}' needs trained weights: pass its committed checkpoint with --checkpoint "
                f"\"$(vsbench model path {algorithm})\", a 'vsbench train' folder with --checkpoint DIR, or a "
                "training split with --train SPLIT")
    return (f"algorithm '{algorithm}' needs trained weights: pass a 'vsbench train' folder with --checkpoint DIR, or "
            "a training split with --train SPLIT")
