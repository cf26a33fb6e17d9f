"""Score adipocyte predictions the way the challenge organisers did, and break the score down.

For each split (one magnification) and its prediction folder (container output layout,
``PRED/<channel>-fluorescence-tiff/<target file name>``, channel in nuclei / lipids / cytoplasm,
uint16 at the original size):

- every image set goes through the organisers' CellProfiler pipeline (:mod:`vsbench.metrics.cp_adipocyte`)
  for the ground truth and for the prediction, in parallel worker processes; the ground truth's
  feature rows come from a content-addressed cache (:mod:`vsbench.harness.feature_cache`) when an
  earlier evaluation measured the same files;
- pixel MAE (pooled per channel, / pooled target median), feature MAE (per feature, / the split's
  target median of that feature) and their mean, per magnification, then weighted by the number of
  image sets (:mod:`vsbench.metrics.adipocyte`);
- the same three numbers per z-deviation ``d`` (the 7-plane input window's distance, in planes, from
  the best-focus-centred window, from the split's manifest), each with the split's normalisers, so
  the rows are comparable with the split's score;
- the generic metrics of the LMC engine (MAE, SSIM, PCC, E_dist, C_dist on percentile-normalised
  images) per channel.

A set whose prediction is missing or unusable is recorded in ``errors`` and left out of every mean
(the ``complete`` flag is then false); it never stops the run. The ground truth of every set still
defines the split's normalisers, so a submission cannot change its own denominator by leaving sets out.
"""

from __future__ import annotations

import datetime as dt
import io
import os
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from vsbench.harness import __version__
from vsbench.harness.adipocyte_split import (
    CHANNELS,
    AdipocyteSet,
    adipocyte_sets,
    read_uint16_plane,
    split_magnification,
)
from vsbench.harness.evaluate import _predictions_digest, json_safe
from vsbench.harness.feature_cache import FeatureCache, cellprofiler_library_version, feature_key
from vsbench.harness.split import GROUND_TRUTH, Split, sha256_file
from vsbench.metrics import adipocyte as am
from vsbench.metrics.lmc import ALL_METRICS, MetricInputError, image_metrics

EVALUATOR = "vsbench.metrics.adipocyte + cp_adipocyte (Adipocyte Cell Imaging Challenge definitions)"
PREDICTION_SOCKET = "{channel}-fluorescence-tiff"


def prediction_path(predictions: Path, channel: str, target_name: str) -> Path:
    return Path(predictions) / PREDICTION_SOCKET.format(channel=channel) / target_name


class _SetError(Exception):
    pass


def _read_uint16(path: Path, what: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
    try:
        image = read_uint16_plane(path)
    except ValueError as exc:
        raise _SetError(f"{what} {exc}") from None
    if shape is not None and image.shape != shape:
        raise _SetError(f"{what} {path.name}: shape {image.shape} differs from the ground truth's {shape}")
    return image


def _features(images: list[np.ndarray], magnification: str, cache: FeatureCache, key: str) -> tuple[dict, bool]:
    row = cache.get(key)
    if row is not None:
        return row, True
    from vsbench.metrics.cp_adipocyte import adipocyte_features  # heavy import, in the worker only

    try:
        row = adipocyte_features(*images, magnification).features
    except Exception as exc:  # CellProfiler's own checks (e.g. an image smaller than an adaptive window)
        raise _SetError(f"CellProfiler pipeline failed: {str(exc).strip().splitlines()[-1].strip()}") from None
    cache.put(key, row)
    return row, False


@dataclass
class _Job:
    split_root: Path
    predictions: Path
    aset: AdipocyteSet
    magnification: str
    digests: dict[str, str]
    cache_root: Path | None
    generic: bool


def _score_set(job: _Job) -> dict:
    """Everything about one image set; runs in a worker process."""
    from vsbench.metrics.cp_adipocyte import PIPELINE_VERSION

    aset, cache = job.aset, FeatureCache(job.cache_root)
    out = {"key": aset.key, "target_features": None, "prediction_features": None, "accumulator": None,
           "truth": None, "generic": {}, "errors": [], "cached": False}
    try:
        targets, digests = [], []
        for ch in CHANNELS:
            path = job.split_root / GROUND_TRUTH / aset.targets[ch]
            rel = f"{GROUND_TRUTH}/{aset.targets[ch]}"
            digest = sha256_file(path) if path.is_file() else None
            if digest is None:
                raise _SetError(f"ground truth {aset.targets[ch]}: missing")
            if job.digests.get(rel) != digest:
                raise _SetError(f"ground truth {aset.targets[ch]}: differs from the split's manifest "
                                "(run 'vsbench data verify')")
            targets.append(_read_uint16(path, "ground truth"))
            digests.append(digest)
        truth = am.PixelMAEAccumulator(CHANNELS)  # target histograms: the split's pooled medians
        for ch, t in zip(CHANNELS, targets, strict=True):
            truth.add(ch, t, t)
        out["truth"] = truth
        out["target_features"], out["cached"] = _features(
            targets, job.magnification, cache, feature_key(digests, job.magnification, PIPELINE_VERSION))
    except _SetError as exc:
        out["errors"].append({"image_set": aset.key, "role": "ground truth", "reason": str(exc)})
        return out

    try:
        preds, pdigests = [], []
        for ch, target in zip(CHANNELS, targets, strict=True):
            path = prediction_path(job.predictions, ch, aset.targets[ch])
            if not path.is_file():
                raise _SetError(f"missing prediction {path.parent.name}/{path.name}")
            preds.append(_read_uint16(path, "prediction", target.shape))
            pdigests.append(sha256_file(path))
        acc = am.PixelMAEAccumulator(CHANNELS)
        for ch, t, p in zip(CHANNELS, targets, preds, strict=True):
            acc.add(ch, t, p)
        out["accumulator"] = acc
        if job.generic:
            for ch, t, p in zip(CHANNELS, targets, preds, strict=True):
                try:
                    out["generic"][ch] = image_metrics(t, p)
                except MetricInputError as exc:
                    out["errors"].append({"image_set": aset.key, "role": "generic metrics", "channel": ch,
                                          "reason": str(exc)})
        out["prediction_features"], _ = _features(
            preds, job.magnification, cache, feature_key(pdigests, job.magnification, PIPELINE_VERSION))
    except (_SetError, ValueError) as exc:
        out["accumulator"] = None
        out["errors"].append({"image_set": aset.key, "role": "prediction", "reason": str(exc)})
    return out


def _table(rows: dict[str, dict[str, float]]) -> pd.DataFrame:
    frame = pd.DataFrame.from_dict(rows, orient="index").reindex(columns=list(am.ADIPOCYTE_FEATURES))
    return frame.reindex(sorted(frame.index))


def image_csv(table: pd.DataFrame, sets: dict[str, AdipocyteSet]) -> str:
    """A feature table as CellProfiler's ExportToSpreadsheet writes ``Adipocytes_Image.csv``."""
    meta = pd.DataFrame({"ImageNumber": np.arange(1, len(table) + 1),
                         "Metadata_Well": [sets[k].well for k in table.index],
                         "Metadata_FoV": [f"F{sets[k].site:03d}" for k in table.index]}, index=table.index)
    buf = io.StringIO()
    pd.concat([meta, table], axis=1).to_csv(buf, index=False, na_rep="NaN")
    return buf.getvalue()


def _scores(keys: list[str], accs: dict, targ: pd.DataFrame, pred: pd.DataFrame, pixel_norm: dict,
            feat_norm: dict) -> dict:
    """Pixel, feature and combined MAE of the sets ``keys`` with the split's normalisers."""
    scored = [k for k in keys if accs.get(k) is not None]
    if not scored:
        return {"n_sets": 0, "pixel_mae": None, "feature_mae": None, "mae": None}
    acc = am.PixelMAEAccumulator(CHANNELS)
    for k in scored:
        acc.merge(accs[k])
    pixel = acc.result(given_normalisers=pixel_norm)
    feats = am.feature_mae(targ.loc[scored], pred.loc[scored], normalisers=feat_norm)
    return {"n_sets": len(scored), "pixel_mae": pixel["pixel_mae"], "feature_mae": feats["feature_mae"],
            "mae": am.combined_mae(feats["feature_mae"], pixel["pixel_mae"]),
            "pixel_per_channel": {am.CHANNEL_NAMES[c]: v for c, v in pixel["per_channel"].items()},
            "_feature": feats}


def _evaluate_split(split: Split, predictions: Path, pool, cache_root: Path | None, generic: bool,
                    progress: bool) -> dict:
    magnification = split_magnification(split)
    sets = {s.key: s for s in adipocyte_sets(split)}
    if not sets:
        raise ValueError(f"{split.root}: the split has no image sets")
    missing_truth = [k for k, s in sets.items() if set(s.targets) != set(CHANNELS)]
    if missing_truth:
        raise ValueError(f"{split.root}: image set {missing_truth[0]} has no complete ground truth (3 channels)")
    digests = {f["path"]: f["sha256"] for f in split.manifest["files"]}
    jobs = [_Job(split.root, Path(predictions), s, magnification, digests, cache_root, generic) for s in sets.values()]
    futures = [pool.submit(_score_set, j) for j in jobs]
    done = {}
    truth_acc = am.PixelMAEAccumulator(CHANNELS)  # the split's pooled target medians, over every set
    for fut in tqdm(as_completed(futures), total=len(futures), desc=f"evaluate {magnification}", unit="set",
                    disable=not progress):
        res = fut.result()
        if res["truth"] is not None:
            truth_acc.merge(res.pop("truth"))  # 1.5 MB of histograms per set: merged as they arrive
        done[res["key"]] = res
    errors = [e for k in sorted(done) for e in done[k]["errors"]]
    truth_failed = [k for k in sorted(done) if done[k]["target_features"] is None]
    if truth_failed:
        raise ValueError(f"{split.root}: ground truth of {truth_failed[0]} cannot be measured: "
                         f"{done[truth_failed[0]]['errors'][0]['reason']}")

    targ = _table({k: d["target_features"] for k, d in done.items()})
    pred_rows = {k: d["prediction_features"] for k, d in done.items() if d["prediction_features"] is not None}
    pred = _table(pred_rows) if pred_rows else targ.iloc[0:0]
    accs = {k: d["accumulator"] for k, d in done.items()}
    feat_norm = am.feature_normalisers(targ)
    pixel_norm = {c: v["value"] for c, v in truth_acc.result()["normalisers"].items()}
    scored = [k for k in sorted(done) if accs[k] is not None]
    if not scored:
        return {"magnification": magnification, "sets": sets, "errors": errors, "n_sets": len(sets),
                "results": [], "score": {"n_sets": 0, "pixel_mae": None, "feature_mae": None, "mae": None},
                "z_deviation": {}, "generic": {}, "targ": targ, "pred": pred, "feat_norm": feat_norm,
                "pixel_norm": pixel_norm, "n_cached": sum(d["cached"] for d in done.values())}
    unscored = [k for k in sorted(done) if accs[k] is None]

    score = _scores(sorted(done), accs, targ, pred, pixel_norm, feat_norm)
    feats = score.pop("_feature")
    score.update({"per_feature": feats["per_feature"], "feature_rules": feats["rules"],
                  "substitutions": feats["substitutions"], "pixel_normalisers": pixel_norm,
                  "feature_normalisers": feat_norm, "missing_predictions": unscored})

    results = []
    for k in sorted(done):
        s, d = sets[k], done[k]
        entry = {"image_set": k, "well": s.well, "site": s.site, "magnification": magnification, "d": s.d,
                 "z_shift": s.z_shift, "inputs": list(s.inputs), "targets": dict(s.targets)}
        if accs[k] is not None:
            one = _scores([k], accs, targ, pred, pixel_norm, feat_norm)
            one.pop("_feature")
            entry.update({kk: one[kk] for kk in ("pixel_mae", "pixel_per_channel", "feature_mae", "mae")})
            entry["generic"] = d["generic"]
        entry["features"] = {"target": d["target_features"], "prediction": d["prediction_features"]}
        results.append(entry)

    by_d: dict[str, dict] = {}
    for dval in sorted({s.d for s in sets.values()}, key=lambda v: (v is None, v)):
        keys = [k for k in sorted(done) if sets[k].d == dval]
        row = _scores(keys, accs, targ, pred, pixel_norm, feat_norm)
        row.pop("_feature", None)
        row["generic"] = _generic_means([done[k]["generic"] for k in keys if accs[k] is not None])
        by_d["unknown" if dval is None else str(dval)] = row
    return {"magnification": magnification, "sets": sets, "errors": errors, "n_sets": len(sets), "results": results,
            "score": score, "z_deviation": by_d,
            "generic": _generic_means([done[k]["generic"] for k in scored]), "targ": targ, "pred": pred,
            "feat_norm": feat_norm, "pixel_norm": pixel_norm, "n_cached": sum(d["cached"] for d in done.values())}


def _generic_means(entries: list[dict]) -> dict:
    out = {}
    for ch in CHANNELS:
        for metric in ALL_METRICS:
            vals = [e[ch][metric] for e in entries if ch in e and e[ch].get(metric) is not None]
            vals = [v for v in vals if np.isfinite(v)]
            if vals:
                out.setdefault(ch, {})[metric] = float(np.mean(vals))
    return out


def evaluate_adipocyte(pairs: list[tuple[Split, Path]], workers: int | None = None, progress: bool = True,
                       cache_dir: Path | None = None, generic: bool = True, executor: Executor | None = None) -> dict:
    """Score prediction folders on adipocyte splits (one per magnification); returns metrics.json.

    ``pairs``: (split, prediction folder), at most one split per magnification. ``cache_dir`` None
    disables the feature cache (with a cache, a killed evaluation resumes: every set already measured,
    ground truth or prediction, is read back). ``workers``: parallel processes (default: one per core,
    as many as the free memory holds at 1.5 GB each).

    ``executor``: run the per-set work there instead of in a pool of ``workers`` processes made here
    (e.g. a Dask client's ``get_executor()``, :func:`vsbench.harness.scale.evaluate_adipocyte_dask`);
    ``workers`` is then only recorded in the provenance.
    """
    if not pairs:
        raise ValueError("evaluate_adipocyte: give at least one split and prediction folder")
    seen = {}
    for split, predictions in pairs:
        if split.task != "adipocyte":
            raise ValueError(f"{split.root} is a '{split.task}' split, not 'adipocyte'")
        if not Path(predictions).is_dir():
            raise ValueError(f"{predictions}: prediction folder not found")
        mag = split_magnification(split)
        if mag in seen:
            raise ValueError(f"two splits of magnification {mag}: {seen[mag]} and {split.root}")
        seen[mag] = split.root
    n_sets = sum(len(adipocyte_sets(s)) for s, _ in pairs)
    started = dt.datetime.now(dt.timezone.utc)
    if executor is not None:
        workers = workers or 1
        parts = [_evaluate_split(s, Path(p), executor, cache_dir, generic, progress) for s, p in pairs]
    else:
        workers = max(1, min(workers or _default_workers(), n_sets))
        with ProcessPoolExecutor(max_workers=workers) as pool:
            parts = [_evaluate_split(s, Path(p), pool, cache_dir, generic, progress) for s, p in pairs]

    per_mag = {p["magnification"]: {k: v for k, v in p["score"].items()} for p in parts}
    scored = {m: {"feature_mae": v["feature_mae"], "pixel_mae": v["pixel_mae"], "mae": v["mae"], "n_sets": v["n_sets"]}
              for m, v in per_mag.items() if v["n_sets"]}
    total = am.weighted_total(scored) if scored else {"n_sets": 0, "pixel_mae": None, "feature_mae": None,
                                                      "mae": None}
    errors = [e | {"magnification": p["magnification"]} for p in parts for e in p["errors"]]
    metrics = {
        "task": "adipocyte",
        "results": [r for p in parts for r in p["results"]],
        "aggregates": {"per_magnification": per_mag, "total": total,
                       "generic": {p["magnification"]: p["generic"] for p in parts}},
        "z_deviation": {p["magnification"]: p["z_deviation"] for p in parts},
        "feature_tables": {p["magnification"]: {"targets": image_csv(p["targ"], p["sets"]),
                                                "predictions": image_csv(p["pred"], p["sets"])} for p in parts},
        "errors": errors,
        "complete": not errors,
        "provenance": {
            "task": "adipocyte",
            "splits": [{"magnification": split_magnification(s), "split": str(s.root.resolve()),
                        "split_hash": s.split_hash, "inputs_hash": s.manifest.get("inputs_hash"),
                        "predictions": str(Path(p).resolve()), "predictions_hash": _predictions_digest(Path(p))}
                       for s, p in pairs],
            "evaluator": EVALUATOR,
            "pipeline": _pipeline_version(),
            "pipeline_settings": {split_magnification(s): _pipeline_settings(split_magnification(s)) for s, _ in pairs},
            "cellprofiler_library": cellprofiler_library_version(),
            "generic_metrics": list(ALL_METRICS) if generic else [],
            "vsbench_version": __version__,
            "created_utc": started.isoformat(timespec="seconds"),
            "seconds": round((dt.datetime.now(dt.timezone.utc) - started).total_seconds(), 1),
            "workers": workers,
            "n_sets": n_sets,
            "n_target_feature_rows_from_cache": sum(p["n_cached"] for p in parts),
            "n_errors": len(errors),
        },
    }
    return json_safe(metrics)


PROCESS_MEMORY_BYTES = 1.5e9  # peak of one worker on a 2154 x 2554 set (measured 1.4 GB)


def _default_workers() -> int:
    """One process per core, as many as the memory holds."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        memory = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return cores
    return max(1, min(cores, int(memory // PROCESS_MEMORY_BYTES)))


def _pipeline_settings(magnification: str) -> dict:
    from vsbench.metrics.cp_adipocyte import settings_dict

    return settings_dict(magnification)


def _pipeline_version() -> str:
    from vsbench.metrics.cp_adipocyte import PIPELINE_VERSION

    return PIPELINE_VERSION


def write_feature_csvs(metrics: dict, out_dir: Path) -> list[Path]:
    """Write each magnification's target and prediction tables as ``Adipocytes_Image_<mag>_<role>.csv``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for mag, tables in metrics["feature_tables"].items():
        for role, text in tables.items():
            path = out_dir / f"Adipocytes_Image_{mag}_{role}.csv"
            path.write_text(text)
            written.append(path)
    return written


def summary_text(metrics: dict) -> str:
    """Per-magnification pixel, feature and average MAE, the weighted total, and the z-deviation rows."""
    def f(v):
        return "-" if v is None else f"{v:.3f}"

    lines = [f"{'':<10}{'sets':>5}{'pixel MAE':>11}{'feature MAE':>13}{'MAE':>8}"]
    for mag, s in metrics["aggregates"]["per_magnification"].items():
        lines.append(f"{mag:<10}{s['n_sets']:>5}{f(s['pixel_mae']):>11}{f(s['feature_mae']):>13}{f(s['mae']):>8}")
    t = metrics["aggregates"]["total"]
    lines.append(f"{'weighted':<10}{t.get('n_sets', 0):>5}{f(t.get('pixel_mae')):>11}"
                 f"{f(t.get('feature_mae')):>13}{f(t.get('mae')):>8}")
    lines.append("")
    lines.append("by z-deviation d (planes between the input window and the best-focus-centred window)")
    lines.append(f"{'':<10}{'d':>5}{'sets':>6}{'pixel MAE':>11}{'feature MAE':>13}{'MAE':>8}")
    for mag, rows in metrics["z_deviation"].items():
        for d, s in rows.items():
            lines.append(f"{mag:<10}{d:>5}{s['n_sets']:>6}{f(s['pixel_mae']):>11}{f(s['feature_mae']):>13}"
                         f"{f(s['mae']):>8}")
    return "\n".join(lines)
