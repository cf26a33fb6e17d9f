"""``vsbench demo``: the main job on the embedded default.

Synthesize a small Light My Cells dataset, fit and run every baseline on its test split, score
each with the organisers' metrics, print the tables and write ``metrics.json`` files. Then the same
for the Adipocyte task at 20x (four training and four test image sets of 384 x 384 pixels, the two
adipocyte baselines, the organisers' pixel + CellProfiler-feature MAE).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from tqdm import tqdm

from vsbench.algorithms.registry import make_algorithm
from vsbench.harness.evaluate import evaluate_lmc, tidy_from_metrics, write_metrics
from vsbench.harness.plots import plot_z_deviation
from vsbench.harness.predict import fit_if_needed, run_predictor
from vsbench.harness.report import comparison_text, metrics_table_text
from vsbench.harness.split import Split
from vsbench.harness.synth_lmc import synthesize_lmc

ADIPOCYTE_SIZE = (384, 384)  # the smallest size CellProfiler's 185 px adaptive window allows, rounded up
# the baselines and the small U-Net, about a minute in all; the deep solutions (patchgan-lmc-tiny, vqgan-lmc-tiny)
# train for minutes each and are run with 'vsbench train' / 'vsbench predict --checkpoint' (README)
DEMO_ALGORITHMS = ("input", "inverted", "blurred", "train-mean", "filterbank", "tiny-unet")
MAIN_ALGORITHM = "tiny-unet"  # the best learned baseline: its table is the one printed in full


def run_demo(out: Path, fovs: int = 6, size: int = 256, seed: int = 0, progress: bool = True) -> int:
    out = Path(out)
    t0 = time.perf_counter()
    data = out / "data"
    if data.exists():
        shutil.rmtree(data)
    paths = synthesize_lmc(data, fovs=fovs, size=size, seed=seed, progress=progress)
    train, test = Split(paths["train"]), Split(paths["test"])
    print(f"synthesized {len(train.cases())} training and {len(test.cases())} test slices in {data}")

    tables = {}
    steps = tqdm(DEMO_ALGORITHMS, desc="fit, predict, score", unit="algorithm", disable=not progress)
    for name in steps:
        steps.set_postfix_str(name)
        predictor = make_algorithm(name)
        fit_if_needed(predictor, train)
        pred_dir = out / name / "predictions"
        run_predictor(predictor, test, pred_dir, overwrite=True, progress=False)
        metrics = evaluate_lmc(test, pred_dir, progress=False)
        write_metrics(metrics, out / name / "metrics.json")
        if metrics["errors"]:
            print(f"{name}: {len(metrics['errors'])} case(s) could not be scored")
        tables[name] = tidy_from_metrics(metrics)
        if name == MAIN_ALGORITHM:
            write_metrics(metrics, out / "metrics.json")

    print()
    print("mean over all test slices, per algorithm (↑ higher is better, ↓ lower is better)")
    print(comparison_text(tables))
    print()
    print(metrics_table_text(tables[MAIN_ALGORITHM],
                             f"{MAIN_ALGORITHM}: organelle x metric x z-deviation (|image_z - best_z|)"))
    plot = plot_z_deviation(tables, out / "z_deviation.png")
    print()
    print(f"wrote {out / 'metrics.json'} ({MAIN_ALGORITHM}), {out}/<algorithm>/metrics.json and {plot} "
          f"in {time.perf_counter() - t0:.0f} s")
    print()
    run_adipocyte_demo(out / "adipocyte", seed=seed, progress=progress)
    return 0


def run_adipocyte_demo(out: Path, sets: int = 4, seed: int = 0, progress: bool = True) -> None:
    """The Adipocyte task on synthetic 20x data: baselines, then the organisers' score."""
    from vsbench.harness.evaluate_adipocyte import evaluate_adipocyte, summary_text, write_feature_csvs
    from vsbench.harness.predict_adipocyte import fit_adipocyte_if_needed, run_adipocyte_predictor
    from vsbench.harness.synth_adipocyte import synthesize_adipocyte

    t0 = time.perf_counter()
    out = Path(out)
    train = Split(synthesize_adipocyte(out / "data" / "train", "20x", sets=sets, size=ADIPOCYTE_SIZE, seed=seed + 1))
    test = Split(synthesize_adipocyte(out / "data" / "test", "20x", sets=sets, size=ADIPOCYTE_SIZE, seed=seed + 2))
    print(f"adipocyte: synthesized {sets} training and {sets} test image sets (20x, {ADIPOCYTE_SIZE[0]} px)")
    for name in ("adipocyte-train-median", "adipocyte-ridge"):
        predictor = make_algorithm(name)
        fit_adipocyte_if_needed(predictor, train, for_split=test)
        pred_dir = out / name / "predictions"
        run_adipocyte_predictor(predictor, test, pred_dir, overwrite=True, progress=False)
        metrics = evaluate_adipocyte([(test, pred_dir)], progress=progress, cache_dir=out / "cache")
        write_metrics(metrics, out / name / "metrics.json")
        write_feature_csvs(metrics, out / name / "features")
        print(f"\n{name}: the organisers' score (lower is better)")
        print(summary_text(metrics))
    print(f"\nwrote {out}/<algorithm>/metrics.json and the CellProfiler feature tables "
          f"in {time.perf_counter() - t0:.0f} s")
