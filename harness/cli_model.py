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
