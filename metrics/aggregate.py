"""Aggregation of per-image scores: a tidy table, then the organisers' means.

The tidy table has one row per case x organelle x metric with the columns ``image``,
``modality``, ``image_z``, ``best_z``, ``z_deviation``, ``organelle``, ``metric`` and ``value``.
Means are plain means over the images that have the organelle's ground truth (``lmc.md`` §1.3);
a NaN score (SSIM of two constant images) makes its mean NaN, as it does for the organisers.
"""

from __future__ import annotations

import math

import pandas as pd

TIDY_COLUMNS = ["image", "modality", "image_z", "best_z", "z_deviation", "organelle", "metric", "value"]


def tidy(rows: list[dict]) -> pd.DataFrame:
    """Build the tidy table from dicts holding the ``TIDY_COLUMNS``."""
    return pd.DataFrame(rows, columns=TIDY_COLUMNS)


def _clean(value: float) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def _nested_means(df: pd.DataFrame, keys: list[str]) -> dict:
    out: dict = {}
    if df.empty:
        return out
    means = df.groupby(keys, sort=True, dropna=False)["value"].agg(lambda v: v.mean(skipna=False))
    for idx, value in means.items():
        node = out
        idx = idx if isinstance(idx, tuple) else (idx,)
        for k in idx[:-1]:
            node = node.setdefault(str(k), {})
        node[str(idx[-1])] = _clean(value)
    return out


def organelle_means(df: pd.DataFrame) -> dict:
    """organelle -> metric -> mean (the organisers' ``agregate``)."""
    return _nested_means(df, ["organelle", "metric"])


def modality_means(df: pd.DataFrame, modalities=("BF", "DIC", "PC")) -> dict:
    """modality -> organelle -> metric -> mean; every modality listed, ``None`` where no image
    (the organisers' ``transmitted_light``, which has NaN there)."""
    means = _nested_means(df, ["modality", "organelle", "metric"])
    pairs = df[["organelle", "metric"]].drop_duplicates().itertuples(index=False) if not df.empty else []
    pairs = list(pairs)
    out = {}
    for m in modalities:
        out[m] = {}
        for organelle, metric in pairs:
            out[m].setdefault(organelle, {})[metric] = means.get(m, {}).get(organelle, {}).get(metric)
    return out


def z_deviation_means(df: pd.DataFrame) -> dict:
    """organelle -> z-deviation -> metric -> mean (the organisers' ``z_deviation``)."""
    scored = df.dropna(subset=["z_deviation"])
    if scored.empty:
        return {}
    scored = scored.assign(z_deviation=scored["z_deviation"].astype(int))
    return _nested_means(scored, ["organelle", "z_deviation", "metric"])


def deviation_table(df: pd.DataFrame) -> pd.DataFrame:
    """Rows organelle x metric, columns z-deviation 0, 1, ... and ``all``: the table to print."""
    if df.empty:
        return pd.DataFrame()
    scored = df.dropna(subset=["z_deviation"])
    table = (
        scored.assign(z_deviation=scored["z_deviation"].astype(int))
        .pivot_table(index=["organelle", "metric"], columns="z_deviation", values="value", aggfunc="mean")
    )
    table["all"] = df.groupby(["organelle", "metric"])["value"].mean()
    order = {o: i for i, o in enumerate(("nucleus", "mitochondria", "tubulin", "actin"))}
    morder = {m: i for i, m in enumerate(("MAE", "PCC", "SSIM", "E_dist", "C_dist"))}
    table = table.sort_index(key=lambda idx: idx.map(lambda v: order.get(v, morder.get(v, 99))))
    table.columns = [str(c) for c in table.columns]
    return table
