"""Rank stability: how much a board's ranking depends on which cases happened to be in the test set.

:func:`bootstrap_ranks` resamples the CASES of each split with replacement (one resample for every participant:
a paired bootstrap, as challengeR does), re-ranks each resample with the board's own policy and tie rule
(:mod:`vsbench.leaderboard.ranking`, the same kernel), and reports per participant the rank distribution, the
median rank and the 95 % percentile interval, and per split Kendall's tau between every bootstrap ranking and
the reported one (mean and 2.5 / 97.5 % percentiles; undefined, None, with a single entry: :func:`tau_text` shows
it as "n/a"). Resamples are case-count weights, so all of them are ranked in one vectorised pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.stats import kendalltau

from vsbench.leaderboard.ranking import _final_ranks, _prepare, _problems, _scores, rank

SUMMARY_COLUMNS = ["submission", "version", "split", "rank", "median_rank", "rank_lo", "rank_hi", "p_first"]


@dataclass
class Stability:
    """Bootstrap rank stability of a board.

    ``summary``: one row per participant and split (:data:`SUMMARY_COLUMNS`; ``rank`` is the reported rank,
    ``rank_lo``/``rank_hi`` the 2.5 / 97.5 % percentiles of the bootstrap ranks, ``p_first`` the share of
    resamples ranking it first). ``ranks[split]``: int array [n, participants] of bootstrap ranks (participant
    order of ``participants[split]``); ``draws[split]``: the resampled case indices [n, cases]; ``tau[split]``:
    ``{"mean", "lo", "hi"}`` of Kendall's tau against the reported ranking.
    """

    policy: str
    n: int
    seed: int
    summary: pd.DataFrame
    tau: dict = field(default_factory=dict)
    ranks: dict = field(default_factory=dict, repr=False)
    draws: dict = field(default_factory=dict, repr=False)
    participants: dict = field(default_factory=dict, repr=False)

    def distribution(self, split: str) -> pd.DataFrame:
        """How often each participant (rows) got each rank (columns) on ``split``."""
        r = self.ranks[split]
        top = int(np.nanmax(r)) if r.size else 0
        counts = np.stack([(r == k).sum(axis=0) for k in range(1, top + 1)], axis=1) if top else np.zeros((0, 0))
        index = pd.MultiIndex.from_tuples(self.participants[split], names=["submission", "version"])
        return pd.DataFrame(counts, index=index, columns=range(1, top + 1))

    def to_dict(self) -> dict:
        return {"policy": self.policy, "n": self.n, "seed": self.seed, "tau": self.tau,
                "summary": self.summary.replace({np.nan: None}).to_dict(orient="records")}


def tau_text(tau: dict | None) -> str:
    """A split's Kendall's tau (:attr:`Stability.tau`) as boards show it: ``mean 0.812 [0.700, 0.900]``, or
    ``n/a`` when it is undefined (a single entry, or no resample ranks two entries apart)."""
    if not tau or tau.get("mean") is None:
        return "n/a (needs two or more entries with different ranks)"
    return f"mean {tau['mean']:.3f} [{tau['lo']:.3f}, {tau['hi']:.3f}]"


def bootstrap_ranks(table: pd.DataFrame, policy: str, n: int = 1000, seed: int = 0, metrics=None,
                    decimals: int | None = None) -> Stability:
    """Paired case bootstrap of ``rank(table, policy, metrics, decimals)``: ``n`` resamples of each split's cases
    with replacement (``numpy.random.default_rng(seed)``; the same draws for every participant), each re-ranked
    by the same rule. Deterministic for a given seed."""
    if n < 1:
        raise ValueError("n must be at least 1")
    board = rank(table, policy, metrics, decimals)
    reported = {(r.split, r.submission, r.version): r.rank for r in board.table.itertuples()}
    rows, keys, higher = _prepare(table if policy != "adipocyte" or not metrics
                                  else table[table["metric"].isin(list(metrics))],
                                  policy, None if policy == "adipocyte" else metrics)
    rng = np.random.default_rng(seed)
    out, result = [], Stability(policy, n, seed, pd.DataFrame(columns=SUMMARY_COLUMNS))
    for problem in _problems(rows, keys):
        n_cases = len(problem.cases)
        draws = rng.integers(0, n_cases, size=(n, n_cases))
        weights = np.zeros((n, n_cases))
        np.add.at(weights, (np.arange(n)[:, None], draws), 1.0)
        scores = _scores(problem, policy, weights, decimals)
        ranks = _final_ranks(scores, policy, higher, decimals)
        base = np.array([reported[(problem.split, s, v)] for s, v in problem.participants], dtype=float)
        taus = np.array([kendalltau(base, r).statistic if len(base) > 1 else np.nan for r in ranks])
        finite = taus[~np.isnan(taus)]
        result.tau[problem.split] = ({"mean": float(finite.mean()), "lo": float(np.percentile(finite, 2.5)),
                                      "hi": float(np.percentile(finite, 97.5))} if finite.size
                                     else {"mean": None, "lo": None, "hi": None})
        result.ranks[problem.split] = ranks
        result.draws[problem.split] = draws
        result.participants[problem.split] = problem.participants
        for i, (sub, ver) in enumerate(problem.participants):
            r = ranks[:, i]
            out.append({"submission": sub, "version": ver, "split": problem.split, "rank": base[i],
                        "median_rank": float(np.median(r)), "rank_lo": float(np.percentile(r, 2.5)),
                        "rank_hi": float(np.percentile(r, 97.5)), "p_first": float((r == 1).mean())})
    result.summary = pd.DataFrame(out, columns=SUMMARY_COLUMNS).sort_values(
        ["split", "rank", "submission", "version"], ignore_index=True)
    return result
