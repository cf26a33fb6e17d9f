"""``vsbench containers ...``: run images in the sandbox (and build the packaged solutions)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from vsbench.harness.cli_args import positive_float, positive_int

# vsbench.harness.images.DEFAULT_BASE_IMAGE and OFFLINE_BASE_IMAGE (that module imports numpy)
DEFAULT_BASE_IMAGE = "pytorch/pytorch:2.9.0-cuda12.8-cudnn9-runtime"
OFFLINE_BASE_IMAGE = "vsbench/base:bookworm"

EPILOG_CONTAINERS_BUILD = """\
hermetic build: the packages come from a wheelhouse made on this host ('pip download' of
containers/runtime/requirements.txt, cached in ~/.cache/vsbench/wheelhouse/) and the vsbench wheel built from
this source tree; the engine builds with no network (network_mode none), so no RUN step fetches anything.
Images: a runtime image (vsbench/runtime:<version>-<key>, built once per base image and wheel set, reused after)
and the solution image FROM it with the weights baked into /opt/ml/model, the org.vsbench.* labels of
containers/CONTRACT.md and the entrypoint 'vsbench predict ALGORITHM --input /input --output /output
--checkpoint /opt/ml/model --device auto'. Building the same weights again gives the same image id.

base image: the default is a CUDA PyTorch image for hosts with a GPU (its own torch is used; the engine pulls it
if it is not here). Without a registry, make the offline Debian base once ('vsbench containers base', needs
root and debootstrap) and pass --base-image vsbench/base:bookworm: torch 2.13.0 then comes from the wheelhouse
(the CPU build where pip finds that one).

weights: patchgan: a 'vsbench train patchgan' folder (its checkpoint.pt and stage2_<channel>/ folders) or one
checkpoint file in it, e.g. OUT/best.pt; the config's task picks adipocyte-patchgan-tiny or patchgan-lmc-tiny.
vqgan: a root of 'vsbench train vqgan' specialist folders: nucleus, mitochondria, tubulin, actin (vqgan-lmc-tiny)
or nuclei, lipids, cytoplasm (adipocyte-vqgan-tiny); best.pt where there is one, else checkpoint.pt. The
weights are loaded once before the build; weights that do not load are refused.

The last line on stdout is the image id (sha256:...); the build steps go to stderr (--quiet: none).
"""


def _add_containers_build(sub: argparse._SubParsersAction) -> None:
    """``containers build`` and ``containers base``: add to the ``containers`` ACTION subparsers."""
    p = sub.add_parser(
        "build", help="build a solution image (patchgan, vqgan) with trained weights baked in, hermetically",
        description="Build the container image of a reference solution with its trained weights, from a host-side "
        "wheelhouse and with no network during the build. Prints the image id.",
        epilog=EPILOG_CONTAINERS_BUILD, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("solution", choices=["patchgan", "vqgan"], help="the solution whose weights these are")
    p.add_argument("--weights", type=Path, required=True, metavar="DIR",
                   help="trained weights (see below): a 'vsbench train' output folder or root")
    p.add_argument("--base-image", default=DEFAULT_BASE_IMAGE, metavar="IMG",
                   help=f"image with python 3.11 to build on (default {DEFAULT_BASE_IMAGE}; offline: "
                   f"{OFFLINE_BASE_IMAGE})")
    p.add_argument("--tag",
                   help="tag of the solution image (default vsbench/<solution>-<task>:<model version>-<runtime key>)")
    p.add_argument("--cache-dir", type=Path, default=None,
                   help="wheelhouse and wheel cache (default ~/.cache/vsbench)")
    p.set_defaults(func=_cmd_containers_build)

    b = sub.add_parser(
        "base", help=f"make the offline base image {OFFLINE_BASE_IMAGE} (debootstrap; for hosts without a registry)",
        description="Run containers/base/build.sh: a minimal Debian bookworm with python3 3.11 made with debootstrap "
        "and imported into the engine (needs root, debootstrap and the Debian mirror; does nothing when the tag "
        "exists). Prints the image id.",
    )
    b.add_argument("--tag", default=OFFLINE_BASE_IMAGE, help=f"image tag (default {OFFLINE_BASE_IMAGE})")
    b.set_defaults(func=_cmd_containers_base)


def _cmd_containers_build(args) -> int:
    from vsbench.harness.images import build_solution_image, inspect_weights

    model = inspect_weights(args.solution, args.weights)
    quiet = getattr(args, "quiet", False)
    if not quiet:
        print(f"{args.weights}: {model.algorithm} ({model.task}), {len(model.files)} weight file(s); building on "
              f"{args.base_image}", file=sys.stderr)
    image_id = build_solution_image(args.solution, args.weights, base_image=args.base_image, tag=args.tag,
                                    progress=not quiet, cache_dir=args.cache_dir)
    print(image_id)
    return 0


def _cmd_containers_base(args) -> int:
    from vsbench.harness.images import build_offline_base

    print(build_offline_base(args.tag))
    return 0


RUN_DESCRIPTION = """\
Run a container image on a split's inputs through the predict contract (containers/CONTRACT.md) and write its
predictions where 'vsbench evaluate' reads them, with OUT/run.json: per case status (succeeded, failed,
timed_out, oom, invalid_output), reason, exit code, durations, image digest, and the stdout/stderr kept in
OUT/logs/.

The image is not trusted: no network; read-only root filesystem; /input holds the staged inputs only (never
ground truth), read-only; /output fresh and empty; /tmp a fresh tmpfs; a non-root user; all capabilities
dropped; no-new-privileges; limits on processes, memory (no swap), CPUs, time and output size.

--contract auto: an image with org.vsbench.* labels runs as it declares (all cases in one run when
batch=true); an image without them runs as a grand-challenge algorithm, once per case. --runtime local runs an
in-process solution (IMAGE is then a name from 'vsbench algorithms') through the same contract, NOT
sandboxed (said so in run.json). Exit code 0 when every case succeeded, else 1."""


def add_containers(sub: argparse._SubParsersAction) -> argparse._SubParsersAction:
    """Add ``containers`` and its ``run`` action to the top-level subparsers; returns its own subparsers."""
    containers = sub.add_parser("containers", help="run container images (submissions, packaged solutions) "
                                "in the sandbox; build the solution images",
                                description="Run and build container images behind the predict contract.")
    actions = containers.add_subparsers(dest="containers_command", metavar="ACTION", required=True)
    run = actions.add_parser("run", help="run an image on a split in the sandbox and ingest its predictions",
                             description=RUN_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("image", help="image reference (tag or sha256 id) in the local engine; with --runtime local, "
                     "an in-process solution name")
    run.add_argument("--split", type=Path, required=True, help="split folder (its inputs only are staged)")
    run.add_argument("--predictions", type=Path, required=True,
                     help="output folder: predictions in the evaluate layout, run.json, logs/ (empty or absent)")
    run.add_argument("--contract", choices=["auto", "vsbench", "grand-challenge"], default="auto",
                     help="auto (default): labels decide; vsbench: all cases in one run; grand-challenge: one "
                     "run per case")
    run.add_argument("--runtime", choices=["docker", "local"], default="docker",
                     help="docker (default, sandboxed) or local (in-process, not sandboxed, no Docker needed)")
    run.add_argument("--time-limit", type=positive_float, default=1200.0, metavar="S",
                     help="wall-clock seconds per container run, then killed: timed_out (default 1200, as "
                     "grand-challenge's default)")
    run.add_argument("--memory", default="8g", metavar="M", help="memory limit, no swap (e.g. 512m, 8g; "
                     "default 8g); over it: oom")
    run.add_argument("--cpus", type=positive_float, default=2.0, help="CPU limit (default 2)")
    run.add_argument("--pids", type=positive_int, default=256, help="process/thread limit (default 256)")
    run.add_argument("--output-limit", metavar="M", help="disk /output may use per run (default: every expected "
                     "image at its largest float64 size); over it the container is killed: invalid_output")
    run.add_argument("--gpus", type=int, default=0, metavar="N",
                     help="GPUs to give (-1 all; default 0; needs the NVIDIA container toolkit)")
    run.add_argument("--cases", nargs="+", metavar="CASE", help="only these cases (LMC input file names, "
                     "adipocyte set keys)")
    run.add_argument("--checkpoint", type=Path, help="--runtime local: the solution's checkpoint (the committed ones: "
                     "\"$(vsbench model path NAME)\")")
    run.add_argument("--train", type=Path, metavar="SPLIT",
                     help="--runtime local: training split of a solution that learns (see 'vsbench algorithms')")
    run.add_argument("--overwrite", action="store_true", help="replace predictions, logs and run.json in "
                     "--predictions")
    run.add_argument("--json", action="store_true", help="print run.json instead of the summary")
    run.set_defaults(func=_cmd_run)
    _add_containers_build(actions)
    return actions


def _cmd_run(args) -> int:
    from vsbench.harness.docker_runtime import Limits, parse_bytes, run_image

    if args.runtime == "local":
        from vsbench.harness.local_runtime import run_local

        if args.contract == "grand-challenge":
            raise ValueError("--runtime local runs a solution in-process; --contract grand-challenge is for images")
        from vsbench.harness.cli_model import missing_weights

        if args.checkpoint is not None and args.train is not None:
            raise ValueError("give either --train (train the solution) or --checkpoint (load a trained one), not both")
        if args.checkpoint is None and args.train is None and (problem := missing_weights(args.image)):
            raise ValueError(problem)
        record = run_local(args.image, args.split, args.predictions, checkpoint=args.checkpoint, train=args.train,
                           cases=args.cases, overwrite=args.overwrite, progress=not args.quiet)
    else:
        for flag, value in (("--checkpoint", args.checkpoint), ("--train", args.train)):
            if value is not None:
                raise ValueError(f"{flag} is for --runtime local; an image carries its weights")
        limits = Limits(time_s=args.time_limit, memory_bytes=parse_bytes(args.memory), cpus=args.cpus,
                        pids=args.pids, gpus=args.gpus,
                        output_bytes=None if args.output_limit is None else parse_bytes(args.output_limit))
        record = run_image(args.image, args.split, args.predictions, contract=args.contract, limits=limits,
                           cases=args.cases, overwrite=args.overwrite, progress=not args.quiet)
    if args.json:
        print(json.dumps(record, indent=1))
    else:
        _print_summary(record, args.predictions)
    return 0 if record["summary"].get("succeeded", 0) == len(record["cases"]) else 1


def _print_summary(record: dict, predictions: Path) -> None:
    from vsbench.harness.docker_runtime import summary_line

    bad = [c for c in record["cases"] if c["status"] != "succeeded"]
    for case in bad[:10]:
        print(f"  {case['case']}: {case['status']}: {case['reason']}", file=sys.stderr)
    if len(bad) > 10:
        print(f"  ... {len(bad) - 10} more in {predictions / 'run.json'}", file=sys.stderr)
    for note in record.get("notes", [])[:5]:
        print(f"  note: {note}", file=sys.stderr)
    where = "sandboxed" if record.get("sandboxed") else "NOT sandboxed (local runtime)"
    what = record.get("image", {}).get("id", record.get("algorithm", "?"))
    print(f"{predictions}: {summary_line(record)} ({what}, {record.get('contract', 'local')}, {where})")
