"""Ranking policies: one function per policy, all on the per-case long table of :mod:`vsbench.leaderboard.data`.

Every policy ranks the participants (``submission`` x ``version``) of each split separately, with
**competition ranking** (equal values share a rank and the next rank skips: 1, 1, 3), as grand-challenge does
(``evaluation/utils.py::rank_results``; ``docs/reference/platforms.md`` §1.3): ties need exact equality, or
equality after rounding to ``decimals`` when given (platforms.md §8 item 7, "optional rounding before ranking").
A missing (NaN) value ranks last. Each metric is ranked in its own direction (``higher_is_better``).

Policies (the names :func:`rank` accepts):

``absolute``
    grand-challenge "absolute": the mean of one metric over the cases (optionally of one ``group``).
``mean-rank`` / ``median-rank``
    grand-challenge "mean" / "median": each metric's case mean is ranked separately; the score is the mean
    (median) of a participant's per-metric ranks; the final ranking ranks that score (lower is better).
``lmc``
    Light My Cells: every cell of the organelle x metric x z-deviation matrix ("we will evaluate each
    participant on this 4x6 metrics matrix, and the winners will be the ones with the best average",
    lmc.md §1.4) holds the mean over that cell's cases; participants are ranked in every cell, the score is the
    mean position over the cells, the final ranking ranks that score. The page's wording fits this
    rank-then-average form; the exact formula is unverified (lmc.md §1.4).
``adipocyte``
    the Adipocyte combined MAE (adipocyte.md §1.4): per magnification ``MAE_m`` = mean over its image sets of
    the per-set combined MAE (``mae``, else the mean of ``pixel_mae`` and ``feature_mae``); score
    ``sum_m n_m MAE_m / sum_m n_m`` with ``n_m`` the sets scored in magnification ``m``; lower is better. The
    organisers pool the pixel MAE over a magnification's sets; the mean of per-set values equals it when the
    sets' images share a size.

All policies are computed by one kernel on a case x participant x cell array with per-case weights, so
:mod:`vsbench.leaderboard.stability` re-ranks bootstrap resamples with exactly the same rule.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from vsbench.metrics import higher_is_better

POLICIES = ("mean-rank", "median-rank", "absolute", "lmc", "adipocyte")
BOARD_COLUMNS = ["submission", "version", "split", "score", "rank", "n_cases"]


def competition_ranks(values, higher_is_better: bool = True, decimals: int | None = None, axis: int = -1):
    """Competition ranks ("1224" ranking) of ``values`` along ``axis``.

    ``rank_i = 1 + #{j : value_j strictly better than value_i}``: equal values share a rank and the next rank
    skips (1, 1, 3), as grand-challenge ranks its leaderboards (platforms.md §1.3). Equality is exact, or after
    ``np.round(values, decimals)`` when ``decimals`` is given. NaN ranks last: every NaN gets
    ``1 + number of non-NaN values``. Returns float ranks of the same shape (NaN where every value is NaN).
    """
    x = np.asarray(values, dtype=float)
    if decimals is not None:
        x = np.round(x, decimals)
    x = np.moveaxis(x, axis, -1)
    good = x if higher_is_better else -x
    nan = np.isnan(good)
    # better[..., i, j]: value j strictly better than value i (comparisons with NaN are False)
    better = good[..., None, :] > good[..., :, None]
    ranks = 1.0 + better.sum(axis=-1)
    n_valid = (~nan).sum(axis=-1, keepdims=True)
    ranks = np.where(nan, 1.0 + n_valid, ranks)
    ranks = np.where(n_valid == 0, np.nan, ranks)
    return np.moveaxis(ranks, -1, axis)


@dataclass
class Board:
    """A ranked board: ``table`` has one row per participant and split (:data:`BOARD_COLUMNS`)."""

    table: pd.DataFrame
    policy: str
    direction: str  # how the score reads, e.g. "lower is better"
    ties: str  # the tie rule in words
    definition: str  # the policy in one sentence
    metrics: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        rows = self.table.replace({np.nan: None}).to_dict(orient="records")
        return {"policy": self.policy, "direction": self.direction, "ties": self.ties,
                "definition": self.definition, "metrics": self.metrics, "rows": rows}


@dataclass
class _Problem:
    """One split, prepared for the kernel: values[case, participant, cell] (NaN = missing)."""

    split: str
    participants: list[tuple[str, str]]
    cases: list[str]
    cells: list[tuple]
    values: np.ndarray
    higher: np.ndarray  # per cell
    cell_group: np.ndarray  # per cell: index of its group (adipocyte weights), else 0


def _ties_text(decimals: int | None) -> str:
    if decimals is None:
        return "exactly equal values share a rank (competition ranking 1,1,3)"
    return f"values equal after rounding to {decimals} decimals share a rank (competition ranking 1,1,3)"


def _select(table: pd.DataFrame, metrics) -> pd.DataFrame:
    if metrics is not None:
        missing = sorted(set(metrics) - set(table["metric"]))
        if missing:
            raise ValueError(f"metric {missing[0]!r} is not in the table ({', '.join(sorted(set(table.metric)))})")
        table = table[table["metric"].isin(list(metrics))]
    if table.empty:
        raise ValueError("nothing to rank: the table is empty")
    return table


def _problems(table: pd.DataFrame, keys: list[str]) -> list[_Problem]:
    out = []
    for split, part in table.groupby("split", sort=True):
        part = part.copy()
        part["_z"] = part["z_deviation"].astype(object).where(part["z_deviation"].notna(), "")
        keys_ = ["_z" if k == "z_deviation" else k for k in keys]
        parts = sorted({(s, v) for s, v in zip(part["submission"], part["version"], strict=True)})
        cases = sorted(part["case"].astype(str).unique())
        cells = sorted({tuple(r) for r in part[keys_].astype(str).itertuples(index=False)})
        pi = {p: i for i, p in enumerate(parts)}
        ci = {c: i for i, c in enumerate(cases)}
        ki = {k: i for i, k in enumerate(cells)}
        values = np.full((len(cases), len(parts), len(cells)), np.nan)
        agg = part.assign(_case=part["case"].astype(str)).groupby(
            ["_case", "submission", "version", *keys_], sort=False)["value"].mean().reset_index()
        c_idx = agg["_case"].map(ci).to_numpy()
        p_idx = np.array([pi[(s, v)] for s, v in zip(agg["submission"], agg["version"], strict=True)], dtype=int)
        k_idx = np.array([ki[tuple(r)] for r in agg[keys_].astype(str).itertuples(index=False)], dtype=int)
        values[c_idx, p_idx, k_idx] = agg["value"].to_numpy(dtype=float)
        direction = part.groupby("metric")["higher_is_better"].first().to_dict()
        m_pos = keys.index("metric") if "metric" in keys else None
        higher = np.array([bool(direction[c[m_pos]]) if m_pos is not None else False for c in cells])
        g_pos = keys.index("group") if "group" in keys else None
        groups = sorted({c[g_pos] for c in cells}) if g_pos is not None else [""]
        cell_group = np.array([groups.index(c[g_pos]) if g_pos is not None else 0 for c in cells])
        out.append(_Problem(str(split), parts, cases, cells, values, higher, cell_group))
    return out


def _cell_means(values: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted case means per (resample, participant, cell) and their weight sums; weights[b, case]."""
    ok = ~np.isnan(values)
    v = np.where(ok, values, 0.0)
    total = np.einsum("bc,csk->bsk", weights, v)
    n = np.einsum("bc,csk->bsk", weights, ok.astype(float))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, total / n, np.nan), n


def _scores(problem: _Problem, policy: str, weights: np.ndarray, decimals: int | None) -> np.ndarray:
    """Scores [b, participant] of ``policy``; lower is better for the rank policies and adipocyte."""
    means, n = _cell_means(problem.values, weights)
    if policy in ("mean-rank", "median-rank", "lmc"):
        ranks = np.empty_like(means)
        for higher in (True, False):
            sel = problem.higher == higher
            if sel.any():
                ranks[..., sel] = competition_ranks(means[..., sel], higher, decimals, axis=1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmedian(ranks, axis=-1) if policy == "median-rank" else np.nanmean(ranks, axis=-1)
    if policy == "absolute":
        return means[..., 0]
    if policy == "adipocyte":
        n_groups = int(problem.cell_group.max()) + 1
        num = np.zeros(means.shape[:2])
        den = np.zeros(means.shape[:2])
        for g in range(n_groups):
            sel = problem.cell_group == g
            n_m = n[..., sel].max(axis=-1)  # sets scored in this magnification
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                mae_m = np.nanmean(means[..., sel], axis=-1)
            num += np.where(n_m > 0, n_m * np.nan_to_num(mae_m), 0.0)
            den += n_m
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(den > 0, num / den, np.nan)
    raise ValueError(f"unknown policy {policy!r}")


def _final_ranks(scores: np.ndarray, policy: str, higher: bool, decimals: int | None) -> np.ndarray:
    if policy in ("mean-rank", "median-rank", "lmc"):  # positions: exact equality (sums of integers)
        return competition_ranks(scores, False, None, axis=-1)
    return competition_ranks(scores, higher, decimals, axis=-1)


def _prepare(table: pd.DataFrame, policy: str, metrics=None, group=None) -> tuple[pd.DataFrame, list[str], bool]:
    """The rows a policy ranks, its cell keys and whether its score is higher-better."""
    if policy not in POLICIES:
        raise ValueError(f"unknown ranking policy {policy!r} (one of {', '.join(POLICIES)})")
    if policy == "adipocyte":
        sel = _select(table, metrics)
        mae_higher = higher_is_better("mae")  # the combined MAE (vsbench.metrics.adipocyte.combined_mae)
        if "mae" in set(sel["metric"]):
            return sel[sel["metric"] == "mae"], ["group"], mae_higher
        parts = sel[sel["metric"].isin(["pixel_mae", "feature_mae"])]
        if parts.empty:
            raise ValueError("the adipocyte policy needs 'mae' or 'pixel_mae' and 'feature_mae'")
        # the per-set combined MAE: mean of the two parts (missing if either is)
        key = ["submission", "version", "split", "case", "group"]
        wide = parts.pivot_table(index=key, columns="metric", values="value", aggfunc="mean", dropna=False)
        combined = wide.mean(axis=1, skipna=False).rename("value").reset_index()
        combined = combined.merge(parts.drop_duplicates(key)[key + ["z_deviation"]], on=key, how="left")
        combined["metric"], combined["higher_is_better"] = "mae", mae_higher
        return combined, ["group"], mae_higher
    sel = _select(table, metrics)
    if policy == "absolute":
        names = sorted(set(sel["metric"]))
        if len(names) != 1:
            raise ValueError(f"the absolute policy ranks one metric; choose one of {', '.join(names)}")
        if group is not None:
            sel = sel[sel["group"].astype(str) == str(group)]
            if sel.empty:
                raise ValueError(f"no rows of group {group!r}")
        return sel, ["metric"], bool(sel["higher_is_better"].iloc[0])
    if policy == "lmc":
        return sel, ["group", "metric", "z_deviation"], False
    return sel, ["metric"], False


DEFINITIONS = {
    "mean-rank": "mean of the per-metric ranks (each metric's case mean ranked in its own direction)",
    "median-rank": "median of the per-metric ranks (each metric's case mean ranked in its own direction)",
    "absolute": "the metric's mean over the cases",
    "lmc": "mean position over the organelle x metric x z-deviation cells (cell = mean over its cases; "
           "Light My Cells)",
    "adipocyte": "combined MAE weighted by image sets per magnification, sum n_m MAE_m / sum n_m (Adipocyte)",
}


def _board(table: pd.DataFrame, policy: str, metrics=None, decimals: int | None = None, group=None) -> Board:
    rows, keys, higher = _prepare(table, policy, metrics, group)
    out = []
    for problem in _problems(rows, keys):
        ones = np.ones((1, len(problem.cases)))
        scores = _scores(problem, policy, ones, decimals)
        ranks = _final_ranks(scores, policy, higher, decimals)[0]
        n_cases = (~np.isnan(problem.values)).any(axis=2).sum(axis=0)
        for i, (sub, ver) in enumerate(problem.participants):
            out.append({"submission": sub, "version": ver, "split": problem.split, "score": float(scores[0, i]),
                        "rank": int(ranks[i]) if not np.isnan(ranks[i]) else None, "n_cases": int(n_cases[i])})
    board = pd.DataFrame(out, columns=BOARD_COLUMNS).sort_values(["split", "rank", "submission", "version"],
                                                                 ignore_index=True)
    direction = "higher is better" if higher else "lower is better"
    if policy in ("mean-rank", "median-rank", "lmc"):
        ties = _ties_text(decimals).replace("values", "per-metric values" if policy != "lmc" else "cell values") \
            + "; equal final scores share a rank"
    else:
        ties = _ties_text(decimals).replace("values", "scores")
    definition = DEFINITIONS[policy]
    if policy == "absolute":
        definition = f"{rows['metric'].iloc[0]}: " + definition + (f" of group {group}" if group is not None else "")
    return Board(board, policy, direction, ties, definition, sorted(set(rows["metric"])))


def rank_absolute(table: pd.DataFrame, metric: str, group=None, decimals: int | None = None) -> Board:
    """grand-challenge "absolute": rank by the mean of ``metric`` over the cases (of ``group`` when given), in
    the metric's direction. Source: grand-challenge ``scoring_method_choice`` absolute (platforms.md §1.3)."""
    return _board(table, "absolute", [metric], decimals, group)


def rank_mean_position(table: pd.DataFrame, metrics=None, decimals: int | None = None) -> Board:
    """grand-challenge "mean": rank each metric's case mean (own direction), score = mean of the per-metric ranks,
    final competition ranking of the score. Source: ``evaluation/utils.py::rank_results`` (platforms.md §1.3)."""
    return _board(table, "mean-rank", metrics, decimals)


def rank_median_position(table: pd.DataFrame, metrics=None, decimals: int | None = None) -> Board:
    """grand-challenge "median": as :func:`rank_mean_position` with the median of the per-metric ranks."""
    return _board(table, "median-rank", metrics, decimals)


def rank_lmc(table: pd.DataFrame, metrics=None, decimals: int | None = None) -> Board:
    """Light My Cells: rank every participant in every organelle x metric x z-deviation cell (cell value = mean
    over the cell's cases; each metric in its direction), score = mean position over the cells, final
    competition ranking of the score. Source: lmc.md §1.4 (the 4x6 matrix, "best average"; unverified form)."""
    return _board(table, "lmc", metrics, decimals)


def rank_adipocyte(table: pd.DataFrame, decimals: int | None = None) -> Board:
    """Adipocyte: ``sum_m n_m MAE_m / sum_m n_m`` over magnifications (``group``), ``MAE_m`` the mean per-set
    combined MAE, ``n_m`` the sets scored; lower is better. Source: adipocyte.md §1.4 and
    :func:`vsbench.metrics.adipocyte.weighted_total`."""
    return _board(table, "adipocyte", None, decimals)


def rank(table: pd.DataFrame, policy: str, metrics=None, decimals: int | None = None) -> Board:
    """Rank ``table`` with ``policy`` (one of :data:`POLICIES`); ``metrics`` restricts the metrics used
    (``absolute`` needs exactly one)."""
    if policy not in POLICIES:
        raise ValueError(f"unknown ranking policy {policy!r} (one of {', '.join(POLICIES)})")
    if policy == "adipocyte" and metrics:
        table = table[table["metric"].isin(list(metrics))]
    return _board(table, policy, None if policy == "adipocyte" else metrics, decimals)
