"""``vsbench demo``: the main job on the embedded default.

Synthesize a small Light My Cells dataset, fit and run every baseline on its test split, score
each with the organisers' metrics, print the tables and write ``metrics.json`` files.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from tqdm import tqdm

from vsbench.algorithms.registry import algorithm_names, make_algorithm
from vsbench.harness.evaluate import evaluate_lmc, tidy_from_metrics, write_metrics
from vsbench.harness.plots import plot_z_deviation
from vsbench.harness.predict import fit_if_needed, run_predictor
from vsbench.harness.report import comparison_text, metrics_table_text
from vsbench.harness.split import Split
from vsbench.harness.synth_lmc import synthesize_lmc

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
    steps = tqdm(algorithm_names(), desc="fit, predict, score", unit="algorithm", disable=not progress)
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
    return 0
