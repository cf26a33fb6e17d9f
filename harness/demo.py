"""``vsbench demo`` (``make demo``): the main job on the embedded default, end to end.

1. Synthesize a small Light My Cells dataset (train and test) and a small 20x Adipocyte dataset.
2. Get both reference solutions: their tiny trained checkpoints are committed
   (:mod:`vsbench.algorithms.checkpoints`, with the ``vsbench train`` commands that regenerate them). When a
   Docker engine answers, they are packaged as images (``vsbench containers build`` on the offline base) and run
   in the sandbox; otherwise they run in-process (the local runtime, marked not sandboxed).
3. Write one benchmark file per task (``OUT/lmc.yaml``, ``OUT/adipocyte.yaml``: the solution and the
   baselines) and run them with :func:`vsbench.harness.runner.run_benchmark`: inference, scoring, and every
   result stored in ``OUT/.vsbench/results.db`` with its provenance.
4. Print the comparisons and where everything is; plot the z-deviation curves (``OUT/z_deviation.png``; each
   entry labelled ``name@version``, in its colour on the published leaderboard).
5. Publish the leaderboard site of each task (``OUT/site/lmc/index.html``, ``OUT/site/adipocyte/index.html``).
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import yaml

from vsbench.harness.split import Split

ADIPOCYTE_SIZE = (384, 384)  # the smallest size CellProfiler's 185 px adaptive window allows, rounded up
# LMC baselines and the small U-Net (about a minute in all); the VQGAN specialists come from their checkpoints
DEMO_ALGORITHMS = ("input", "inverted", "blurred", "train-mean", "filterbank", "tiny-unet")
LEARNED = ("train-mean", "filterbank", "tiny-unet", "adipocyte-train-median", "adipocyte-ridge")
ADIPOCYTE_BASELINES = ("adipocyte-train-median", "adipocyte-ridge")
SOLUTIONS = {"lmc": ("vqgan", "vqgan-lmc-tiny"), "adipocyte": ("patchgan", "adipocyte-patchgan-tiny")}
MAIN_ALGORITHM = "vqgan-lmc-tiny"  # its organelle x metric x z-deviation table is printed in full
OFFLINE_BASE = "vsbench/base:bookworm"


def _solution_images(progress: bool) -> dict[str, str]:
    """Build the two solution images from the committed checkpoints when an engine answers and an offline base
    is (or can be made) available; {} otherwise, with the reason printed."""
    import os

    from vsbench.algorithms.checkpoints import DEMO_CHECKPOINTS
    from vsbench.harness.docker_runtime import RuntimeUnavailable, docker_client

    try:
        client = docker_client()
    except RuntimeUnavailable as exc:
        print(f"images: no Docker engine ({str(exc).split(';')[0]}): the solutions run in-process (not sandboxed)")
        return {}
    from vsbench.harness.images import ImageBuildError, build_offline_base, build_solution_image

    try:
        client.images.get(OFFLINE_BASE)
    except Exception:
        if os.geteuid() != 0 or shutil.which("debootstrap") is None:
            print(f"images: no {OFFLINE_BASE} and it cannot be made here (root and debootstrap): the solutions "
                  "run in-process (not sandboxed)")
            return {}
        print(f"images: building the offline base {OFFLINE_BASE} (debootstrap, about a minute)")
        try:
            build_offline_base(OFFLINE_BASE)
        except ImageBuildError as exc:
            print(f"images: {exc}; the solutions run in-process (not sandboxed)")
            return {}

    images = {}
    for task, (solution, algorithm) in SOLUTIONS.items():
        t0 = time.perf_counter()
        try:
            images[task] = build_solution_image(solution, DEMO_CHECKPOINTS[algorithm], base_image=OFFLINE_BASE,
                                                client=client, progress=False)
        except ImageBuildError as exc:
            print(f"images: building {solution} failed ({exc}); the solutions run in-process (not sandboxed)")
            return {}
        print(f"images: {solution} ({algorithm}) {images[task][:19]} in {time.perf_counter() - t0:.0f} s")
    return images


def _benchmark_file(out: Path, task: str, test: Path, train: Path, image: str | None) -> Path:
    from vsbench.algorithms.checkpoints import DEMO_CHECKPOINTS

    test, train = Path(test).resolve(), Path(train).resolve()  # the file's own folder is out: no relative paths
    solution, algorithm = SOLUTIONS[task]
    baselines = DEMO_ALGORITHMS if task == "lmc" else ADIPOCYTE_BASELINES
    subs = [{"name": name, "version": "demo", "solution": name, **({"train": str(train)} if name in LEARNED else {})}
            for name in baselines]
    if image is not None:
        subs.insert(0, {"name": algorithm, "version": "committed", "image": image})
    else:
        subs.insert(0, {"name": algorithm, "version": "committed", "solution": algorithm,
                        "checkpoint": str(DEMO_CHECKPOINTS[algorithm])})
    doc = {"name": f"demo-{task}", "task": task, "workspace": ".vsbench",
           "splits": [{"name": "test", "path": str(test)}], "submissions": subs,
           "limits": {"time_s": 600, "memory": "4g", "cpus": 2}}
    path = out / f"{task}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _scores(store, outcome) -> dict[str, dict]:
    """Submission name -> its metrics.json (the latest score of its run)."""
    found = {}
    for row in outcome.rows:
        if row["score_key"]:
            score = store.get_score(row["score_key"])
            found[row["submission"]] = json.loads(Path(score["metrics_path"]).read_text())
    return found


def run_demo(out: Path, fovs: int = 6, size: int = 256, seed: int = 0, progress: bool = True,
             images: str = "auto", workers: int = 2) -> int:
    """The whole flow (module docstring); ``images``: ``auto`` (build and run the solution images when an
    engine answers) or ``never``. Returns the exit code (1 when some case or score failed)."""
    from vsbench.harness.benchmark import load_benchmark
    from vsbench.harness.evaluate import tidy_from_metrics
    from vsbench.harness.evaluate_adipocyte import summary_text
    from vsbench.harness.plots import plot_z_deviation
    from vsbench.harness.report import comparison_text, metrics_table_text
    from vsbench.harness.runner import run_benchmark
    from vsbench.harness.store import ResultStore
    from vsbench.harness.synth_adipocyte import synthesize_adipocyte
    from vsbench.harness.synth_lmc import synthesize_lmc

    out = Path(out)
    t0 = time.perf_counter()
    if (out / "data").exists():
        shutil.rmtree(out / "data")
    lmc = synthesize_lmc(out / "data" / "lmc", fovs=fovs, size=size, seed=seed, progress=progress)
    adipocyte = {part: synthesize_adipocyte(out / "data" / "adipocyte" / part, "20x", sets=4, size=ADIPOCYTE_SIZE,
                                            seed=seed + offset) for part, offset in (("train", 1), ("test", 2))}
    print(f"synthesized Light My Cells: {len(Split(lmc['train']).cases())} training and "
          f"{len(Split(lmc['test']).cases())} test slices; Adipocyte 20x: 4 training and 4 test image sets "
          f"({ADIPOCYTE_SIZE[0]} px), in {out / 'data'}")
    built = _solution_images(progress) if images == "auto" else {}

    failed = False
    with ResultStore(workspace=out / ".vsbench") as store:
        results, benches = {}, {}
        for task, test, train in (("lmc", lmc["test"], lmc["train"]),
                                  ("adipocyte", adipocyte["test"], adipocyte["train"])):
            bench = benches[task] = load_benchmark(_benchmark_file(out, task, Path(test), Path(train),
                                                                  built.get(task)))
            outcome = run_benchmark(bench, store, workers=workers, progress=progress)
            failed |= bool(outcome.errors) or any(r["n_cases"] != r["n_succeeded"] for r in outcome.rows)
            for error in outcome.errors:
                print(f"vsbench: error: {error}")
            results[task] = _scores(store, outcome)
            for name, metrics in results[task].items():
                target = out / task / name / "metrics.json"
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(json.dumps(metrics, indent=1) + "\n")

        tables = {name: tidy_from_metrics(m) for name, m in results["lmc"].items()}
        print("\nLight My Cells: mean over all test slices, per submission (↑ higher is better, ↓ lower is better)")
        print(comparison_text(tables))
        if MAIN_ALGORITHM in tables:
            print()
            print(metrics_table_text(tables[MAIN_ALGORITHM],
                                     f"{MAIN_ALGORITHM}: organelle x metric x z-deviation (|image_z - best_z|)"))
        labels = {s.name: s.label for s in benches["lmc"].submissions}  # name@version, coloured as on the site
        plot = plot_z_deviation({labels[name]: table for name, table in tables.items()}, out / "z_deviation.png")
        for name, metrics in results["adipocyte"].items():
            print(f"\nAdipocyte, {name}: the organisers' score (lower is better)")
            print(summary_text(metrics))
        sites = {}
        for task, bench in benches.items():
            from vsbench.harness.cli_leaderboard import default_policy
            from vsbench.leaderboard.publish import build_boards, publish_site

            boards = build_boards(bench, store, default_policy(bench), bootstrap=1000, seed=seed)
            sites[task] = publish_site(out / "site" / task, f"{bench.name} leaderboard", task, boards,
                                       bench.metric_set, mode="private")  # the organiser's own view
        runtime = "as sandboxed images" if built else "in-process (local runtime, not sandboxed)"
        print(f"\nsolutions ran {runtime}; done in {time.perf_counter() - t0:.0f} s")
        print(f"results: {store.display_url}  (vsbench results list --workspace {out / '.vsbench'})")
        print(f"metrics: {out}/lmc/<submission>/metrics.json, {out}/adipocyte/<submission>/metrics.json; plot {plot}")
        print(f"benchmark files: {out / 'lmc.yaml'}, {out / 'adipocyte.yaml'} (vsbench run FILE reruns nothing)")
        print(f"leaderboard sites: {sites['lmc']} and {sites['adipocyte']} (open in a browser; host the folders as is)")
    return 1 if failed else 0
