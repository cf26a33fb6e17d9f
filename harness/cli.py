"""The ``vsbench`` command line.

Every failure prints one line, ``vsbench: error: ...``, and exits non-zero; ``--debug`` shows the
traceback instead.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import warnings
from pathlib import Path
from typing import NoReturn

from vsbench.harness import __version__
from vsbench.harness.cli_args import non_negative_int, positive_float, positive_int
from vsbench.harness.cli_compare import add_compare
from vsbench.harness.cli_containers import add_containers
from vsbench.harness.cli_leaderboard import add_leaderboard
from vsbench.harness.cli_model import _add_model_export, _add_model_path, missing_weights
from vsbench.harness.cli_runs import add_runs

# vsbench.algorithms.patchgan.config.CONFIGS, listed here so that building the parser does not import torch
PATCHGAN_CONFIGS = ["paper-20x", "paper-40x", "paper-60x", "tiny", "paper-lmc", "lmc-tiny"]
VQGAN_CONFIGS = ["paper", "tiny"]  # vsbench.algorithms.vqgan.config.CONFIGS
MODEL_CONFIGS = list(dict.fromkeys([*PATCHGAN_CONFIGS, *VQGAN_CONFIGS]))  # --config choices, each once ("tiny")
ORGANELLE_CHOICES = ["nucleus", "mitochondria", "tubulin", "actin"]  # vsbench.algorithms.base.ORGANELLES
ADIPOCYTE_CHANNELS = ["nuclei", "lipids", "cytoplasm"]  # vsbench.algorithms.adipocyte_base.CHANNELS

EPILOG_EVALUATE = """\
predictions layout (the container output contract, as on grand-challenge):
  lmc:       PRED/<organelle>-fluorescence-ome-tiff/<input file name>   organelle in nucleus, mitochondria,
             tubulin, actin. All four outputs are required for every input, even without ground truth.
  adipocyte: PRED/<channel>-fluorescence-tiff/<target file name>        channel in nuclei, lipids, cytoplasm;
             uint16 at the original size, in the raw 16-bit intensity scale (the metrics are on raw values).

adipocyte: one split per magnification; repeat --split/--predictions in pairs to get the total weighted
by image sets, e.g.  --split s20 --predictions p20 --split s40 --predictions p40.
Pixel MAE, CellProfiler-feature MAE and their mean per magnification (the organisers' definitions),
plus a breakdown by z-deviation d. CellProfiler takes about 75 s per 2154x2554 image per core;
ground-truth features are cached by content hash (--cache-dir, default ~/.cache/vsbench).

exit status: 0 all cases scored; 1 some cases could not be scored (listed in 'errors' of the
JSON, which is written anyway; --allow-partial makes this 0); 2 bad usage or unusable input.
"""


def _add_synth_lmc(sub) -> None:
    p = sub.add_parser(
        "lmc", help="synthetic Light My Cells data: a train and a test split",
        description="Write OUT/train and OUT/test: cells seen in BF, PC or DIC through defocus (inputs), "
        "their organelles in fluorescence (ground truth). Deterministic for a seed.",
    )
    p.add_argument("out", type=Path, help="folder to create (holds train/ and test/)")
    p.add_argument("--fovs", type=positive_int, default=6, help="fields of view in the test split (default 6)")
    p.add_argument("--train-fovs", type=positive_int, default=None,
                   help="fields of view in the train split (default: --fovs)")
    p.add_argument("--size", type=positive_int, default=256, help="image side in pixels (default 256)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--max-deviation", type=non_negative_int, default=5,
                   help="test slices per field are 0..N planes from best focus (default 5)")
    p.set_defaults(func=_cmd_synth_lmc)


def _size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be HxW, e.g. 256x256, not {text!r}") from None
    return h, w


def _add_synth_adipocyte(sub) -> None:
    p = sub.add_parser(
        "adipocyte", help="synthetic Adipocyte Cell Imaging Challenge data: one split",
        description="Write a split of synthetic adipocyte image sets: 7 brightfield planes named as the Yokogawa "
        "CV7000 files (inputs) and nuclei, lipid-droplet and cytoplasm fluorescence (ground truth), with the "
        "site-dependent brightfield-to-fluorescence misalignment of the challenge data and the 7-plane window "
        "shifted by d = 0..--max-shift planes from best focus. Deterministic for a seed.",
    )
    p.add_argument("out", type=Path, help="split folder to create")
    p.add_argument("--magnification", choices=["20x", "40x", "60x"], default="20x")
    p.add_argument("--sets", type=positive_int, default=2, help="image sets (well x site) (default 2)")
    p.add_argument("--size", type=_size, default=(256, 256), help="HxW in pixels (default 256x256; real: 2154x2554)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-shift", type=non_negative_int, default=3,
                   help="largest z-deviation d of the input window (default 3)")
    p.set_defaults(func=_cmd_synth_adipocyte)


def _add_import_lmc(sub) -> None:
    p = sub.add_parser(
        "lmc", help="import the Light My Cells training layout (Study_*/image_<N>_...ome.tiff)",
        description="Copy a Light My Cells training download into a vsbench split. The training files do "
        "not say which slice is in focus: give --best-z CSV (name,best_z or name,modality,image_z,best_z), "
        "or --estimate-best-z to estimate it from the transmitted-light stack (see the README).",
    )
    p.add_argument("src", type=Path, help="folder holding Study_*/ (or the image files directly)")
    p.add_argument("out", type=Path, help="split folder to create")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--best-z", type=Path, help="CSV with the best-focus slice of every input or field")
    g.add_argument("--estimate-best-z", action="store_true", help="estimate best focus from each z-stack")
    p.add_argument("--link", action="store_true", help="hard-link instead of copying where possible")
    p.set_defaults(func=_cmd_import_lmc)


def _add_import_adipocyte(sub) -> None:
    p = sub.add_parser(
        "adipocyte", help="import Adipocyte Cell Imaging Challenge CV7000 TIFFs (one magnification)",
        description="Copy one magnification's folder of the Adipocyte Cell Imaging Challenge (e.g. '20x images/', "
        "searched recursively) into a vsbench split: the 7 brightfield planes (C04, Z01..Z07) of each well and site "
        "to inputs/, the nuclei, lipid and cytoplasm fluorescence (C01..C03) to ground_truth/, byte for byte. "
        "Incomplete image sets are skipped with a warning; the input window is recorded as acquired (d = 0).",
    )
    p.add_argument("src", type=Path, help="folder holding the AssayPlate_Greiner_#655090_*.tif files")
    p.add_argument("out", type=Path, help="split folder to create (an earlier import there is replaced)")
    p.add_argument("--magnification", choices=["20x", "40x", "60x"], default=None,
                   help="magnification of the images (default: from a folder name containing 20x, 40x or 60x)")
    p.add_argument("--sets", default=None, metavar="KEYS",
                   help="import only these image sets, comma-separated <well>_F<site>, e.g. B03_F001,B03_F002")
    p.set_defaults(func=_cmd_import_adipocyte)


def _registration(text: str) -> str | int:
    if text in ("dz", "focus"):
        return text
    if text.isdigit() and 1 <= int(text) <= 7:
        return int(text)
    raise argparse.ArgumentTypeError(f"must be dz, focus or a plane 1..7, not {text!r}")


def _add_align(sub) -> None:
    align = sub.add_parser(
        "align", help="measure the brightfield-to-fluorescence misalignment of an adipocyte split",
        description="Brightfield-to-fluorescence alignment of the adipocyte data (Soft Matter Lab report §2, "
        "'Image alignment'; adipocyte.md §3.4).",
    )
    align_sub = align.add_subparsers(dest="align_command", metavar="ACTION", required=True)
    p = align_sub.add_parser(
        "estimate", help="measure the offset of every image set, fit the site model and the scale M",
        description="Cross-correlate the brightfield with the lipid-droplet image of every image set of SPLIT "
        "(FFT, on patches, Gaussian fit to the peak), fit the scale M from how the patch offsets grow with the "
        "distance from the image centre, iterate (apply the affine, measure the residual) until the residual is "
        "below --tolerance, and fit the site model dx = Ax sin(phi) + Bx cos(phi) + Cx (same for y), "
        "phi = 2 pi (site - 1) / N_sites. Prints per site the measured and model (dx, dy), per image set the "
        "measurement, and the fitted M, A, B, C next to the report's Table 1 defaults. Convention: the feature "
        "at brightfield pixel p appears in the fluorescence at c + M (p - c) + (dx, dy), c the image centre.",
    )
    p.add_argument("split", type=Path, help="adipocyte split with ground_truth/ (the lipid images, C02)")
    p.add_argument("--json", action="store_true", help="print the full result as JSON instead of the tables")
    p.add_argument("--patch", type=positive_int, default=256, help="patch side in pixels (default 256)")
    p.add_argument("--registration", type=_registration, default="dz", metavar="{dz,focus,1..7}",
                   help="brightfield image to correlate: dz = Z(f+1) - Z(f-1) around the in-focus plane "
                   "f = Z(4 - z_shift) (default), focus = plane f, or a plane number")
    p.add_argument("--max-iterations", type=positive_int, default=6, help="rounds of apply-and-remeasure (default 6)")
    p.add_argument("--tolerance", type=positive_float, default=0.02,
                   help="stop when the residual affine moves no pixel by more than this (default 0.02 px)")
    p.add_argument("--no-scale", action="store_true", help="keep M = 1 (fit offsets only)")
    p.set_defaults(func=_cmd_align_estimate)


def _add_train(sub) -> None:
    p = sub.add_parser(
        "train", help="train a deep model on a training split (checkpoints, resume, CSV of losses)",
        description="Train a deep model on a training split. vqgan: one Light My Cells winner specialist per "
        "organelle (--organelle; train each into its own folder ROOT/<organelle>, then 'vsbench predict "
        "--algorithm vqgan-lmc-tiny --checkpoint ROOT'; adipocyte channels likewise, with adipocyte-vqgan-tiny). "
        "patchgan: Model 1 of the Soft Matter Lab Patch-GAN "
        "(least-squares cGAN + beta * MAE), aligned brightfield, random crops with flips and 90-degree rotations. "
        "Writes OUT/checkpoint.pt after every epoch and OUT/losses.csv (mean losses per epoch); a rerun with the "
        "same OUT, config and seed resumes from the checkpoint up to --steps updates in all.",
    )
    p.add_argument("model", choices=["patchgan", "vqgan"], help="model family")
    p.add_argument("--task", choices=["adipocyte", "lmc"],
                   help="task (default: adipocyte for patchgan; for vqgan the --organelle decides); patchgan on lmc: "
                   "one transmitted-light slice -> 4 organelles, configs lmc-tiny and paper-lmc")
    p.add_argument("--organelle", choices=[*ORGANELLE_CHOICES, *ADIPOCYTE_CHANNELS],
                   help="vqgan: the target of the specialist to train, one model per target: an LMC organelle, or "
                   "an adipocyte channel (nuclei, lipids, cytoplasm; input: brightfield planes Z02, Z04, Z06)")
    p.add_argument("--split", type=Path, required=True, help="training split (with ground truth)")
    p.add_argument("--config", choices=MODEL_CONFIGS,
                   help="configuration (patchgan: default tiny, or lmc-tiny for --task lmc; vqgan: tiny or paper; "
                   "paper* are for GPU machines)")
    p.add_argument("--out", type=Path, required=True, help="checkpoint folder (resumed if it holds one)")
    p.add_argument("--steps", type=positive_int,
                   help="updates in all, resumed ones included (default 2500 patchgan, 1500 vqgan)")
    p.add_argument("--steps-per-epoch", type=positive_int, default=100,
                   help="updates per checkpoint and CSV row (default 100)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--val", type=Path, help="validation split (with ground truth): its pixel MAE on whole images is "
                   "computed after every epoch, shown on the progress bar and written to losses.csv")
    p.add_argument("--stage2-steps", type=positive_int,
                   help="updates of each second-stage model (configs with stage 2, e.g. paper-20x; default --steps)")
    p.add_argument("--alignment", default="default", choices=["default", "none"],
                   help="adipocyte brightfield alignment: Table 1 site model of the magnification (default) or none")
    p.add_argument("--quiet", action="store_true", default=argparse.SUPPRESS,
                   help="no progress bar (as the global --quiet)")
    p.set_defaults(func=_cmd_train)


def _cmd_train_vqgan(args) -> int:
    from vsbench.algorithms.vqgan.config import get_config
    from vsbench.algorithms.vqgan.train import CHECKPOINT, specialist_data_from_split, train

    if args.organelle is None:
        raise ValueError("vqgan trains one specialist per organelle (or adipocyte channel): give --organelle")
    task = "adipocyte" if args.organelle in ADIPOCYTE_CHANNELS else "lmc"
    if args.task is not None and args.task != task:
        raise ValueError(f"--organelle {args.organelle} is a {task} target, not {args.task}")
    config = args.config or "tiny"
    if config not in VQGAN_CONFIGS:
        raise ValueError(f"vqgan has configs {', '.join(VQGAN_CONFIGS)}, not {config}")
    if task == "lmc":
        data = specialist_data_from_split(args.split, args.organelle)
        val = specialist_data_from_split(args.val, args.organelle) if args.val is not None else None
    else:
        from vsbench.algorithms.vqgan.adipocyte import adipocyte_specialist_data_from_split as from_split

        data = from_split(args.split, args.organelle)
        val = from_split(args.val, args.organelle, window=data.target_window) if args.val is not None else None
    trainer = train(get_config(config, organelle=args.organelle), data, args.out, args.steps or 1500, args.seed,
                    steps_per_epoch=args.steps_per_epoch, val_data=val, progress=not args.quiet)
    print(f"{args.out / CHECKPOINT}: vqgan {config} {args.organelle} specialist, step {trainer.step}")
    return 0


def _cmd_train(args) -> int:
    if args.model == "vqgan":
        return _cmd_train_vqgan(args)
    from vsbench.algorithms.patchgan.config import get_config
    from vsbench.algorithms.patchgan.train import CHECKPOINT, train
    from vsbench.harness.split import Split

    args.task = args.task or "adipocyte"
    if args.organelle is not None:
        raise ValueError("--organelle is for vqgan; patchgan predicts every channel with one model")
    config = args.config or ("lmc-tiny" if args.task == "lmc" else "tiny")
    if config not in PATCHGAN_CONFIGS:
        raise ValueError(f"patchgan has configs {', '.join(PATCHGAN_CONFIGS)}, not {config}")
    if get_config(config).task != args.task:
        raise ValueError(f"config {config} is for the {get_config(config).task} task, not {args.task}")
    split = Split(args.split)
    val = Split(args.val) if args.val is not None else None
    for s in (split, val):
        if s is not None and s.task != args.task:
            raise ValueError(f"{s.root} is an {s.task} split, not {args.task}")
    alignment = args.alignment
    if args.task == "lmc":  # LMC slices come aligned; the adipocyte site model does not apply
        from vsbench.algorithms.patchgan.lmc import lmc_training_data_from_split

        split = lmc_training_data_from_split(split.root)
        val = lmc_training_data_from_split(val.root) if val is not None else None
        alignment = "none"
    trainer = train(config, split, args.out, steps=args.steps or 2500, seed=args.seed,
                    steps_per_epoch=args.steps_per_epoch, alignment=alignment, val_data=val,
                    stage2_steps=args.stage2_steps, progress=not args.quiet)
    print(f"{args.out / CHECKPOINT}: {args.model} {config}, step {trainer.step}")
    for c, t2 in trainer.stage2_trainers.items():
        print(f"{args.out / f'stage2_{c}' / CHECKPOINT}: stage 2 {c}, step {t2.step}")
    return 0


class _Parser(argparse.ArgumentParser):
    """A usage error ends like every other error, ``vsbench: error: ...`` with exit status 2, after the usage of
    the (sub)command it is about. Subparsers are of this class too (``add_subparsers`` uses the parent's)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"vsbench: error: {message}\n")


GLOBAL_FLAGS = {"--debug": "show tracebacks instead of one-line errors", "--quiet": "no progress bars"}


def _global_flags_everywhere(parser: argparse.ArgumentParser) -> None:
    """Let ``--quiet`` and ``--debug`` come after any subcommand too: every subparser takes them, with default
    SUPPRESS, so that one given before the subcommand is not reset by the subparser."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):  # aliases map to the same parser
                for flag, text in GLOBAL_FLAGS.items():
                    if flag not in sub._option_string_actions:
                        sub.add_argument(flag, action="store_true", default=argparse.SUPPRESS,
                                         help=f"{text} (also before the command)")
                _global_flags_everywhere(sub)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="vsbench",
        description="Benchmark and evaluation harness for virtual staining (label-free -> fluorescence).",
        epilog="Start with 'vsbench demo'. Each command has its own --help.",
    )
    parser.add_argument("--version", action="version", version=f"vsbench {__version__}")
    for flag, text in GLOBAL_FLAGS.items():
        parser.add_argument(flag, action="store_true", help=f"{text} (also after the command)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    data = sub.add_parser("data", help="create, import and check held-out splits",
                          description="Create, import and check held-out splits.")
    data_sub = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    synth = data_sub.add_parser("synth", help="synthesize a benchmark dataset", description="Synthesize a dataset.")
    synth_tasks = synth.add_subparsers(dest="task", metavar="TASK", required=True)
    _add_synth_lmc(synth_tasks)
    _add_synth_adipocyte(synth_tasks)
    imp = data_sub.add_parser("import", help="import a challenge's raw data", description="Import raw data.")
    imp_tasks = imp.add_subparsers(dest="task", metavar="TASK", required=True)
    _add_import_lmc(imp_tasks)
    _add_import_adipocyte(imp_tasks)
    verify = data_sub.add_parser("verify", help="check every file of a split against its manifest",
                                 description="Recompute the sha256 of every file and compare with manifest.json.")
    verify.add_argument("split", type=Path)
    verify.set_defaults(func=_cmd_verify)

    algos = sub.add_parser("algorithms", help="list the in-process algorithms (baselines)",
                           description="List the algorithms 'vsbench predict' can run.")
    algos.set_defaults(func=_cmd_algorithms)

    model = sub.add_parser("model", help="describe the deep models (networks, parameter counts, configs)",
                           description="Describe the deep models of the benchmark's reference solutions.")
    model_sub = model.add_subparsers(dest="model_command", metavar="ACTION", required=True)
    info = model_sub.add_parser(
        "info", help="networks, exact parameter counts, inputs, outputs and hyper-parameters of a model config",
        description="Build every network of a model configuration (without allocating weights) and print "
        "its parameter counts, what it takes and gives, and its hyper-parameters. patchgan: the Soft Matter Lab "
        "(GU) two-stage Patch-GAN; paper-20x (Model 1 + stage-2 nuclei and cytoplasm), paper-40x, paper-60x, "
        "and tiny (CPU-sized). vqgan: one Light My Cells winner specialist (encoder, decoder, quantizer, "
        "discriminator); paper (58,088,415 parameters) and tiny. 'total' counts every network the config trains.",
    )
    info.add_argument("model", choices=["patchgan", "vqgan"], help="model family")
    info.add_argument("--config", choices=MODEL_CONFIGS,
                      help="configuration (default paper-20x for patchgan, paper for vqgan)")
    info.add_argument("--organelle", default="nucleus", choices=ORGANELLE_CHOICES,
                      help="vqgan: the specialist (default nucleus; disc weight and learning rate differ)")
    info.add_argument("--json", action="store_true", help="print the model card as JSON")
    info.set_defaults(func=_cmd_model_info)
    _add_model_export(model_sub)
    _add_model_path(model_sub)

    pred = sub.add_parser(
        "predict", help="run an in-process algorithm on a split, or on a contract input folder",
        usage="vsbench predict [SOLUTION] --split SPLIT --out OUT [--algorithm NAME] [options]\n"
        "       vsbench predict SOLUTION --input DIR --output DIR [--train SPLIT | --checkpoint CKPT]",
        description="Two modes. Split mode (--split/--out): run an algorithm on every input of a split and write "
        "its predictions in the container output layout. A rerun skips cases already done; failures are recorded in "
        "OUT/run.json. The split's task (lmc or adipocyte) picks the layout; the algorithm must be one of that task. "
        "Adipocyte layout: OUT/<channel>-fluorescence-tiff/<ground-truth file name>, channel in nuclei, lipids, "
        "cytoplasm, uint16. File mode (--input/--output): the file form of the container contract "
        "(containers/CONTRACT.md): read DIR/images/<input socket>/ (and DIR/inputs.json when present), write "
        "DIR/images/<output socket>/<same file name>; the output folder must be empty.",
    )
    pred.add_argument("solution", nargs="?", metavar="SOLUTION",
                      help="algorithm name (see 'vsbench algorithms'); split mode also takes --algorithm")
    pred.add_argument("--split", type=Path, help="split mode: split to predict (only inputs/ is read)")
    pred.add_argument("--algorithm", help="split mode: algorithm name (or give SOLUTION)")
    pred.add_argument("--train", type=Path, help="training split, for algorithms that learn")
    pred.add_argument("--checkpoint", type=Path,
                      help="load the model from this folder (written by 'vsbench train' or 'vsbench model export') "
                      "instead of training it; for the deep models: patchgan-lmc-tiny, adipocyte-patchgan-tiny (any "
                      "config of theirs), vqgan-lmc-tiny, adipocyte-vqgan-tiny (a root of specialist folders). The "
                      "committed tiny weights: --checkpoint \"$(vsbench model path vqgan-lmc-tiny)\" (or "
                      "adipocyte-patchgan-tiny)")
    pred.add_argument("--out", type=Path, help="split mode: prediction folder to write")
    pred.add_argument("--overwrite", action="store_true", help="split mode: recompute every case")
    pred.add_argument("--input", type=Path, help="file mode: contract input folder (images/<socket>/, inputs.json)")
    pred.add_argument("--output", type=Path, help="file mode: contract output folder to write (empty or absent)")
    pred.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                      help="where the deep models run: auto (default: CUDA when torch sees a GPU, else the CPU), cpu "
                      "or cuda; for the algorithms that take a device (the patchgan and vqgan ones)")
    pred.set_defaults(func=_cmd_predict)

    ev = sub.add_parser(
        "evaluate", help="score predictions against a split's ground truth",
        description="Score a prediction folder on a split with the challenge's metrics and write metrics.json "
        "(per-image results, means per organelle, per modality and per z-deviation, errors, provenance).",
        epilog=EPILOG_EVALUATE, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ev.add_argument("--task", choices=["lmc", "adipocyte"], default="lmc", help="benchmark task (default lmc)")
    ev.add_argument("--split", type=Path, required=True, action="append",
                    help="split folder (with ground_truth/); adipocyte: repeat, one per magnification")
    ev.add_argument("--predictions", type=Path, required=True, action="append",
                    help="prediction folder, one per --split, in the same order")
    ev.add_argument("--out", type=Path, default=Path("metrics.json"), help="JSON to write (default metrics.json)")
    ev.add_argument("--allow-partial", action="store_true", help="exit 0 even if some cases could not be scored")
    ev.add_argument("--workers", type=positive_int, default=None,
                    help="lmc: threads (default up to 4); adipocyte: processes (default: one per core, "
                         "as many as the free memory holds at 1.5 GB each); with --dask: local Dask workers")
    ev.add_argument("--dask", action="store_true", help="score as Dask tasks on a local cluster of --workers "
                    "processes (default 2)")
    ev.add_argument("--scheduler", metavar="ADDRESS", help="score as Dask tasks on an existing cluster "
                    "(tcp://host:8786; docs/scale-out.md)")
    ev.add_argument("--cache-dir", type=Path, default=None,
                    help="adipocyte: feature cache folder (default $VSBENCH_CACHE_DIR or ~/.cache/vsbench)")
    ev.add_argument("--no-cache", action="store_true", help="adipocyte: measure every image set again")
    ev.add_argument("--no-generic", action="store_true",
                    help="adipocyte: skip the generic per-channel metrics (MAE, SSIM, PCC, E_dist, C_dist)")
    ev.add_argument("--cellprofiler", action="store_true",
                    help="lmc: also measure nuclei with CellProfiler (count, size, shape, intensity) in the nucleus "
                    "ground truth and prediction; their relative errors become CP_* nucleus metrics")
    ev.set_defaults(func=_cmd_evaluate)

    show = sub.add_parser("show", help="print the organelle x metric x z-deviation table of a metrics.json",
                          description="Print the tables of a metrics.json written by 'vsbench evaluate'.")
    show.add_argument("metrics", type=Path)
    show.set_defaults(func=_cmd_show)

    _add_align(sub)
    _add_train(sub)
    add_containers(sub)
    add_runs(sub)
    add_compare(sub)
    add_leaderboard(sub)

    demo = sub.add_parser(
        "demo", help="the whole flow on synthetic data: both tasks, both solutions, the baselines; scored, stored",
        description="Synthesize small Light My Cells and Adipocyte splits; run the two reference solutions (their "
        "committed tiny checkpoints; as sandboxed images when a Docker engine answers) and the baselines through "
        "'vsbench run' on one benchmark file per task (OUT/lmc.yaml, OUT/adipocyte.yaml); score, store in "
        "OUT/.vsbench/results.db, print the comparisons, and write OUT/<task>/<submission>/metrics.json, "
        "OUT/z_deviation.png and the leaderboard site of each task, OUT/site/<task>/index.html (what 'vsbench "
        "leaderboard publish' writes: open it in a browser, or host the folder as is).",
    )
    demo.add_argument("--out", type=Path, default=Path("demo-output"), help="output folder (default demo-output)")
    demo.add_argument("--fovs", type=positive_int, default=6, help="test fields of view (default 6, i.e. 36 cases)")
    demo.add_argument("--size", type=positive_int, default=256, help="image side in pixels (default 256)")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--images", choices=["auto", "never"], default="auto",
                      help="auto (default): when a Docker engine answers, package the two solutions as images and "
                      "run them in the sandbox; never: run them in-process")
    demo.add_argument("--workers", type=positive_int, default=2, help="local Dask workers (default 2)")
    demo.set_defaults(func=_cmd_demo)
    _global_flags_everywhere(parser)
    return parser


def _cmd_synth_lmc(args) -> int:
    from vsbench.harness.synth_lmc import synthesize_lmc

    paths = synthesize_lmc(args.out, fovs=args.fovs, size=args.size, seed=args.seed, train_fovs=args.train_fovs,
                           max_deviation=args.max_deviation, progress=not args.quiet)
    for name, path in paths.items():
        manifest = json.loads((path / "manifest.json").read_text())
        print(f"{name}: {path} ({manifest['n_inputs']} inputs, split_hash {manifest['split_hash'][:12]})")
    return 0


def _cmd_synth_adipocyte(args) -> int:
    from vsbench.harness.synth_adipocyte import synthesize_adipocyte

    path = synthesize_adipocyte(args.out, magnification=args.magnification, sets=args.sets, size=args.size,
                                seed=args.seed, max_shift=args.max_shift, progress=not args.quiet)
    manifest = json.loads((path / "manifest.json").read_text())
    print(f"{path}: {args.sets} image set(s) at {args.magnification}, {manifest['n_inputs']} inputs, "
          f"split_hash {manifest['split_hash'][:12]}")
    return 0


def _cmd_import_lmc(args) -> int:
    from vsbench.harness.import_lmc import import_lmc

    manifest = import_lmc(args.src, args.out, best_z_csv=args.best_z, estimate_best_z=args.estimate_best_z,
                          link=args.link, progress=not args.quiet)
    print(f"{args.out}: {manifest['n_inputs']} inputs, split_hash {manifest['split_hash'][:12]}")
    return 0


def _cmd_import_adipocyte(args) -> int:
    from vsbench.harness.import_adipocyte import import_adipocyte

    sets = args.sets.split(",") if args.sets is not None else None
    path = import_adipocyte(args.src, args.out, magnification=args.magnification, sets=sets,
                            progress=not args.quiet)
    manifest = json.loads((path / "manifest.json").read_text())
    info = manifest["info"]
    print(f"{path}: {len(info['image_sets'])} image set(s) imported at {info['magnification']}, "
          f"{len(info['skipped'])} skipped, {manifest['n_inputs']} inputs, split_hash {manifest['split_hash'][:12]}")
    return 0


def _cmd_verify(args) -> int:
    from vsbench.harness.split import Split

    split = Split(args.split)
    problems = split.verify()
    for line in problems:
        print(line)
    print(f"{args.split}: {'OK' if not problems else f'{len(problems)} problem(s)'} "
          f"({len(split.manifest['files'])} files, split_hash {split.split_hash[:12]})")
    return 1 if problems else 0


def _cmd_algorithms(args) -> int:
    from vsbench.algorithms.registry import algorithm_class, algorithm_names, algorithm_task

    names = algorithm_names(task=None)
    width = max(len(n) for n in names)
    for name in names:
        cls = algorithm_class(name)
        doc = (cls.__doc__ or "").strip().splitlines()[0]
        learns = " (learns: needs --train)" if hasattr(cls, "fit") else ""
        print(f"{name:<{width}}  {algorithm_task(name):<9}  {doc}{learns}")
    return 0


def _published_match(published: int, ours: int) -> str:
    """'' when equal; ', rounded: matches' when the published figure is ``ours`` rounded (e.g. "58.1 million"
    for 58,088,415); else ', differs'."""
    if published == ours:
        return ""
    for digits in range(3, 7):
        step = 10 ** digits
        if published % step == 0 and round(ours / step) * step == published:
            return ", rounded: matches"
    return ", differs"


def _cmd_model_info(args) -> int:
    if args.model == "vqgan":
        from vsbench.algorithms.vqgan.config import model_card

        config = args.config or "paper"
        if config not in VQGAN_CONFIGS:
            raise ValueError(f"vqgan has configs {', '.join(VQGAN_CONFIGS)}, not {config}")
        card = model_card(config, args.organelle)
    else:
        from vsbench.algorithms.patchgan.config import model_card

        config = args.config or "paper-20x"
        if config not in PATCHGAN_CONFIGS:
            raise ValueError(f"patchgan has configs {', '.join(PATCHGAN_CONFIGS)}, not {config}")
        card = model_card(config)
    if args.json:
        print(json.dumps(card, indent=2))
        return 0
    print(f"{card['model']} {card['config_name']}: {card['description']}")
    totals = {"generator_total": ("generator", "inference model"), "autoencoder_total": ("autoencoder", "autoencoder"),
              "total": ("total", "all networks")}
    totals = {k: v for k, v in totals.items() if k in card}
    width = max(len(n) for n in [*card["networks"], *(label for _, label in totals.values())])
    for name, n in card["networks"].items():
        print(f"  {name:<{width}}  {n:>12,}")
    published = card.get("published", {})
    for key, (ref_key, label) in totals.items():
        ref = published.get(ref_key)
        note = "" if ref is None else f"  (published {ref:,}{_published_match(ref, card[key])})"
        print(f"  {label:<{width}}  {card[key]:>12,}{note}")
    for section in ("inputs", "outputs"):
        for key, text in card[section].items():
            print(f"{section[:-1]} {key}: {text}")
    print("config: " + ", ".join(f"{k}={v}" for k, v in card["config"].items() if k != "description"))
    return 0


def _predict_mode(args) -> str:
    """``split`` or ``file`` from the predict arguments; sets ``args.algorithm``. ValueError (one line) when
    the two modes are mixed or one is incomplete."""
    file_mode = args.input is not None or args.output is not None
    split_mode = args.split is not None or args.out is not None
    if file_mode and split_mode:
        raise ValueError("give either --input/--output (contract folders) or --split/--out (a split), not both")
    if args.solution is not None and args.algorithm is not None:
        raise ValueError("name the algorithm once: SOLUTION or --algorithm, not both")
    args.algorithm = args.algorithm or args.solution
    if file_mode:
        if args.input is None or args.output is None:
            raise ValueError("file mode needs both --input DIR and --output DIR")
        if args.algorithm is None:
            raise ValueError("name the solution: vsbench predict SOLUTION --input DIR --output DIR")
        if args.overwrite:
            raise ValueError("--overwrite is for --split mode; file mode writes into an empty --output folder")
        return "file"
    if args.split is None or args.out is None:
        raise ValueError("give --split SPLIT and --out OUT (a split), or --input DIR and --output DIR "
                         "(contract folders)")
    if args.algorithm is None:
        raise ValueError("name the algorithm: SOLUTION or --algorithm")
    return "split"


def _predictor_and_train(args, split=None):
    """The algorithm of ``args`` (loaded from ``--checkpoint`` if given) and the ``--train`` split; one-line errors
    when a split is of another task than the algorithm, or both --train and --checkpoint are given."""
    from vsbench.algorithms.registry import algorithm_task, make_algorithm
    from vsbench.harness.split import Split

    task = algorithm_task(args.algorithm)
    train = Split(args.train) if args.train else None
    for s in (split, train):
        if s is not None and s.task != task:
            raise ValueError(f"{args.algorithm} is an {task} algorithm; {s.root} is an {s.task} split")
    if args.checkpoint is not None and args.train is not None:
        raise ValueError("give either --train (train the model) or --checkpoint (load a trained one), not both")
    if args.checkpoint is None and args.train is None and (problem := missing_weights(args.algorithm)):
        raise ValueError(problem)
    device = getattr(args, "device", "auto")
    if device == "auto":  # the algorithms that take a device pick CUDA when there is one
        return make_algorithm(args.algorithm, checkpoint=args.checkpoint), train
    return _make_on_device(args.algorithm, args.checkpoint, device), train


def _make_on_device(name: str, checkpoint: Path | None, device: str):
    """The algorithm ``name`` on ``device`` (``cpu``, ``cuda``); one-line errors when it takes no device and
    ``cuda`` is asked for, or torch sees no GPU."""
    import inspect

    from vsbench.algorithms.registry import algorithm_class, make_algorithm

    cls = algorithm_class(name)
    if "device" not in inspect.signature(cls).parameters:
        if device == "cuda":
            raise ValueError(f"algorithm '{name}' runs on the CPU only (--device cuda is for the deep models)")
        return make_algorithm(name, checkpoint=checkpoint)
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ValueError("--device cuda: torch sees no CUDA device here (use --device auto or cpu)")
    if checkpoint is None:
        return cls(device=device)
    return cls(checkpoint=checkpoint, device=device)


def _cmd_predict_file(args) -> int:
    from vsbench.harness.local_runtime import fit_solution, predict_folder

    predictor, train = _predictor_and_train(args)
    fit_solution(predictor, train)
    results = predict_folder(predictor, args.input, args.output, progress=not args.quiet)
    failed = [r for r in results if r.status != "succeeded"]
    print(f"{args.output}: {len(results) - len(failed)} cases predicted, {len(failed)} failed")
    for r in failed[:10]:
        print(f"  {r.case}: {r.reason}")
    return 1 if failed else 0


def _cmd_predict(args) -> int:
    from vsbench.algorithms.registry import algorithm_task
    from vsbench.harness.predict import fit_if_needed, run_predictor
    from vsbench.harness.split import Split

    if _predict_mode(args) == "file":
        return _cmd_predict_file(args)
    split = Split(args.split)
    predictor, train = _predictor_and_train(args, split)
    if algorithm_task(args.algorithm) == "adipocyte":
        from vsbench.harness.predict_adipocyte import fit_adipocyte_if_needed, run_adipocyte_predictor

        fit_adipocyte_if_needed(predictor, train, for_split=split)
        record = run_adipocyte_predictor(predictor, split, args.out, overwrite=args.overwrite,
                                         progress=not args.quiet)
    else:
        fit_if_needed(predictor, train)
        record = run_predictor(predictor, split, args.out, overwrite=args.overwrite, progress=not args.quiet)
    failed = [c for c in record["cases"] if c["status"] != "ok"]
    print(f"{args.out}: {len(record['cases']) - len(failed)} cases predicted, {len(failed)} failed")
    for c in failed[:10]:
        print(f"  {c['image']}: {c['reason']}")
    return 1 if failed else 0


def _evaluate_adipocyte(args) -> int:
    from vsbench.harness.evaluate import write_metrics
    from vsbench.harness.evaluate_adipocyte import evaluate_adipocyte, summary_text, write_feature_csvs
    from vsbench.harness.feature_cache import default_cache_dir
    from vsbench.harness.split import Split

    cache = None if args.no_cache else (args.cache_dir or default_cache_dir())
    pairs = [(Split(s), p) for s, p in zip(args.split, args.predictions, strict=True)]
    if args.dask or args.scheduler:
        from vsbench.harness.scale import dask_client, evaluate_adipocyte_dask

        with dask_client(args.scheduler, workers=args.workers or 2) as client:
            metrics = evaluate_adipocyte_dask(pairs, client, progress=not args.quiet, cache_dir=cache,
                                              generic=not args.no_generic)
    else:
        metrics = evaluate_adipocyte(pairs, workers=args.workers, progress=not args.quiet, cache_dir=cache,
                                     generic=not args.no_generic)
    write_metrics(metrics, args.out)
    csvs = write_feature_csvs(metrics, args.out.parent / (args.out.stem + "-features"))
    print(summary_text(metrics))
    errors = metrics["errors"]
    print(f"wrote {args.out} and {len(csvs)} feature table(s) in {csvs[0].parent}: "
          f"{metrics['provenance']['n_sets']} image sets, {len(errors)} error(s)")
    if errors and not args.allow_partial:
        first = errors[0]
        print(f"vsbench: error: {len(errors)} image set(s) could not be scored, first: {first['image_set']}: "
              f"{first['reason']} (see 'errors' in {args.out}; --allow-partial to accept)", file=sys.stderr)
        return 1
    return 0


def _cmd_evaluate(args) -> int:
    from vsbench.harness.evaluate import evaluate_lmc, tidy_from_metrics, write_metrics
    from vsbench.harness.report import metrics_table_text
    from vsbench.harness.split import Split

    if len(args.split) != len(args.predictions):
        raise ValueError(f"give one --predictions per --split ({len(args.split)} splits, "
                         f"{len(args.predictions)} prediction folders)")
    if args.task == "adipocyte":
        return _evaluate_adipocyte(args)
    if len(args.split) > 1:
        raise ValueError("--task lmc scores one split at a time")
    args.split, args.predictions = args.split[0], args.predictions[0]
    if args.dask or args.scheduler:
        from vsbench.harness.scale import dask_client, evaluate_lmc_dask

        with dask_client(args.scheduler, workers=args.workers or 2) as client:
            metrics = evaluate_lmc_dask(Split(args.split), args.predictions, client, progress=not args.quiet,
                                        cellprofiler=args.cellprofiler)
    else:
        metrics = evaluate_lmc(Split(args.split), args.predictions, workers=args.workers, progress=not args.quiet,
                               cellprofiler=args.cellprofiler)
    write_metrics(metrics, args.out)
    print(metrics_table_text(tidy_from_metrics(metrics), "mean per organelle x metric x z-deviation"))
    errors = metrics["errors"]
    print(f"wrote {args.out}: {metrics['provenance']['n_cases']} cases, {len(errors)} error(s)")
    if errors and not args.allow_partial:
        first = errors[0]
        print(f"vsbench: error: {len(errors)} prediction(s) could not be scored, first: {first['image']} "
              f"{first['organelle']}: {first['reason']} (see 'errors' in {args.out}; --allow-partial to accept)",
              file=sys.stderr)
        return 1
    return 0


def _not_metrics(doc: object) -> str | None:
    """None when ``doc`` has what 'vsbench show' prints (a metrics.json of 'vsbench evaluate'), else what it
    looks like instead, in a few words."""
    needed = ("results", "aggregates", "z_deviation", "provenance")
    if isinstance(doc, dict) and all(key in doc for key in needed):
        return None
    expected = f"'vsbench evaluate --out' writes one, an object with {', '.join(needed)}"
    if not isinstance(doc, dict):
        return f"it holds a JSON {type(doc).__name__} ({expected})"
    if "split_hash" in doc and "files" in doc:
        what = "a split manifest (a split folder's manifest.json)"
    elif "cases" in doc and ("algorithm" in doc or "image" in doc or "summary" in doc):
        what = "a prediction run record (run.json)"
    elif "rules" in doc:
        what = "a regression policy"
    elif "verdict" in doc or "checks" in doc:
        what = "a 'vsbench compare --json' report"
    else:
        shown = ", ".join(list(doc)[:6]) + (", ..." if len(doc) > 6 else "")
        what = f"a JSON object with keys {shown or '(none)'}"
    return f"it looks like {what} ({expected})"


def _cmd_show(args) -> int:
    from vsbench.harness.evaluate import tidy_from_metrics
    from vsbench.harness.report import metrics_table_text

    try:
        metrics = json.loads(Path(args.metrics).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{args.metrics}: not a readable metrics.json ({exc})") from None
    problem = _not_metrics(metrics)
    if problem:
        raise ValueError(f"{args.metrics}: not a metrics.json: {problem}")
    if metrics.get("task") == "adipocyte":
        from vsbench.harness.evaluate_adipocyte import summary_text

        print(f"{args.metrics}\n{summary_text(metrics)}")
        return 0
    print(metrics_table_text(tidy_from_metrics(metrics), f"{args.metrics}"))
    return 0


def _cmd_demo(args) -> int:
    from vsbench.harness.demo import run_demo

    return run_demo(args.out, fovs=args.fovs, size=args.size, seed=args.seed, progress=not args.quiet,
                    images=args.images, workers=args.workers)


def _cmd_align_estimate(args) -> int:
    from vsbench.harness.alignment import alignment_table_text, estimate_split, result_json

    result = estimate_split(args.split, patch=args.patch, registration=args.registration,
                            fit_scale_factor=not args.no_scale, tolerance=args.tolerance,
                            max_iterations=args.max_iterations, progress=not args.quiet and not args.json)
    print(result_json(result) if args.json else alignment_table_text(result))
    return 0


def _plain_warning(message, category, filename, lineno, line=None) -> str:
    return f"vsbench: warning: {message}\n"


def main(argv: list[str] | None = None) -> int:
    """Run ``vsbench ARGV``; the exit status. A closed stdout (``vsbench ... | head -1``) ends the command quietly
    with 141, as a command killed by SIGPIPE (the Python docs' recipe for BrokenPipeError)."""
    try:
        try:
            return _main(argv)
        finally:
            sys.stdout.flush()  # here, not at interpreter exit, where a broken pipe prints "Exception ignored"
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)  # what is still buffered goes nowhere at exit
        os.dup2(devnull, sys.stdout.fileno())
        return 141


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.debug:
        warnings.formatwarning = _plain_warning
        # a local Dask cluster's nanny warns when a busy worker takes over 4 s to stop and is killed: routine at
        # the end of a run on a loaded machine, not the user's concern (--debug shows it)
        logging.getLogger("distributed.nanny").setLevel(logging.ERROR)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("vsbench: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        raise
    except Exception as exc:
        if args.debug:
            raise
        # a benchmark file's problems (BenchmarkError.problems) are each one line; anything else prints its first
        lines = getattr(exc, "problems", None) or [str(exc).splitlines()[0] if str(exc) else type(exc).__name__]
        for msg in lines:
            print(f"vsbench: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
