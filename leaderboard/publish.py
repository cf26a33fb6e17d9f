"""``vsbench leaderboard publish BENCH --out SITE/``: a static leaderboard site a challenge can host as is.

``index.html``: per split, the ranked board (rank, entry, the policy's score, the 95 % bootstrap rank interval,
P(rank 1), the cases scored, and the case mean of every target x metric with its direction), sortable in the
browser; the submissions that failed or are partial listed below it with their status and reason; the
metric-vs-z-deviation curves, the rank-stability blob plot and (Adipocyte) the pixel vs CellProfiler MAE
trade-off, every entry in one colour throughout; example panels; the provenance of every entry; CSV and JSON
exports. ``entries/<name@version>.html``: one page per entry (:mod:`vsbench.leaderboard.entry_pages`).

Two modes (:data:`vsbench.leaderboard.site.MODES`): ``public`` (for participants: no ground-truth or difference
image of a hidden split, no container log) and ``private`` (for organisers: everything). No page or export of
either mode holds a local path or a credential (:mod:`vsbench.leaderboard.redact`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from vsbench.leaderboard import figures
from vsbench.leaderboard.data import Entry, entry_label, provenance
from vsbench.leaderboard.entry_pages import shown_reason, write_entry_pages
from vsbench.leaderboard.site import Site, cell, slug
from vsbench.metrics import metric_title


@dataclass
class SplitBoard:
    """Everything a split's section shows. ``board``: one row per entry in rank order, columns ``rank``,
    ``entry`` (``name@version``), ``submission``, ``version``, ``score`` and optionally ``rank_95_low``,
    ``rank_95_high``, ``p_first``, ``n_cases``; ``samples``: bootstrap ranks (``entry``, ``rank``), or None;
    ``policy``/``stability``: one sentence each, shown above the table; ``table``: the per-case table
    (:func:`vsbench.leaderboard.data.case_table`); ``unranked``: the submissions that failed or are not scored
    (:func:`vsbench.leaderboard.data.unranked_runs`, each with its stored ``run``); ``hidden``: the split's
    ground truth is secret (no truth image on a public site)."""

    split: str
    board: pd.DataFrame
    policy: str
    stability: str
    table: pd.DataFrame
    entries: list[Entry]
    samples: pd.DataFrame | None = None
    extra: dict = field(default_factory=dict)
    unranked: list[dict] = field(default_factory=list)
    hidden: bool = True


FIGURE_TEXT = {  # file stem: (alt text, caption); {group}: organelle or magnification
    "z_deviation": ("metric against z-deviation per entry",
                    "Mean over cases against the z-deviation (planes between the input and best focus), one panel "
                    "per {group} and metric (↑ higher is better, ↓ lower is better), one line per entry."),
    "rank_stability": ("rank stability blob plot",
                       "Rank stability: how often each entry took each rank over bootstrap resamples of the cases "
                       "(blob area); x marks the reported rank."),
    "tradeoff": ("pixel MAE against CellProfiler feature MAE",
                 "Pixel MAE against CellProfiler-feature MAE per entry (lower-left is better on both)."),
}


def _label(row) -> str:
    return entry_label(row["submission"], row["version"])


def site_styles(boards: list[SplitBoard]) -> dict[str, dict]:
    """The style (colour, marker) of every entry (``name@version``) of the page: one per entry, the same in every
    figure and split (:func:`vsbench.leaderboard.figures.entry_styles` over all the page's entries)."""
    return figures.entry_styles(_label(r) for board in boards for _, r in board.board.iterrows())


def split_figures(task: str, board: SplitBoard, metrics: list[str],
                  styles: dict[str, dict]) -> dict[str, figures.Figure]:
    """The figures of one split's section by file stem (matplotlib Figures, unsaved): ``z_deviation``;
    ``rank_stability`` when the board was bootstrapped; ``tradeoff`` on the Adipocyte task. Every entry is
    labelled ``name@version`` and drawn in its ``styles`` colour (:func:`site_styles`)."""
    b = board.board.reset_index(drop=True)
    order = [_label(r) for _, r in b.iterrows()]  # the reported (rank) order
    out = {"z_deviation": figures.z_deviation_figure(board.table, order, metrics, styles)}
    if board.samples is not None and not board.samples.empty:
        out["rank_stability"] = figures.rank_blobs_figure(board.samples, order, dict(zip(order, b["rank"],
                                                                                          strict=True)), styles)
    if task == "adipocyte":
        t = board.table[board.table["metric"].isin(["pixel_mae", "feature_mae"])]
        t = t.assign(entry=figures.entry_labels(t))
        points = t.pivot_table(index="entry", columns="metric", values="value", aggfunc="mean")
        out["tradeoff"] = figures.tradeoff_figure(points.reindex(order).reset_index(), styles)
    return out


def metric_columns(table: pd.DataFrame, metrics: list[str]) -> list[tuple[str, str]]:
    """The board's (group, metric) columns: every group of the per-case table (organelle, magnification) in
    order of appearance, with each of ``metrics`` it has a value for, in ``metrics`` order."""
    present = table.dropna(subset=["value"])
    out = []
    for group in dict.fromkeys(present["group"]):
        have = set(present.loc[present["group"] == group, "metric"])
        out += [(group, m) for m in metrics if m in have]
    return out


def board_table(board: SplitBoard, metrics: list[str], styles: dict[str, dict], pages: dict[str, str]) -> dict:
    """The ranked table of a split as the page shows it: ``groups`` (the header's first row: a group and how many
    metric columns it spans), ``header`` (cells with ``title``, ``type`` num/text and ``tip``) and ``rows``."""
    from vsbench.leaderboard.case_views import target_means

    b = board.board.reset_index(drop=True)
    columns = metric_columns(board.table, metrics)
    means = board.table.assign(entry=figures.entry_labels(board.table)).groupby(
        ["entry", "group", "metric"], sort=False)["value"].mean().to_dict()
    for entry in board.entries:  # per-target columns the per-case table has no axis for (Adipocyte channels)
        extra = {(entry.label, *k): v for k, v in target_means(entry.metrics).items() if k[1] in metrics}
        means.update(extra)
        columns += [k[1:] for k in extra if k[1:] not in columns]
    direction = board.extra.get("direction", "")
    header = [{"title": "rank", "type": "num", "tip": "1 = best; ties share a rank"},
              {"title": "entry", "type": "text", "tip": "name@version; its colour in every plot; click for its page"},
              {"title": f"score {'↑' if direction.startswith('higher') else '↓'}", "type": "num",
               "tip": f"the ranking policy's score ({direction})" if direction else "the ranking policy's score"}]
    has_interval = "rank_95_low" in b.columns
    if has_interval:
        header += [{"title": "95 % rank interval", "type": "num",
                    "tip": "2.5th-97.5th percentile of the entry's bootstrap ranks"},
                   {"title": "P(rank 1)", "type": "num", "tip": "share of bootstrap resamples that rank it first"}]
    header.append({"title": "cases", "type": "num", "tip": "cases scored (of the split's cases)"})
    header += [{"title": metric_title(m), "type": "num", "group": g,
                "tip": f"{g}: mean {metric_title(m, arrow=False)} over cases "
                       f"({'higher' if metric_title(m).endswith('↑') else 'lower'} is better)"} for g, m in columns]
    groups = []
    for g, _ in columns:
        if groups and groups[-1]["name"] == g:
            groups[-1]["span"] += 1
        else:
            groups.append({"name": g, "span": 1})
    by_label = {e.label: e for e in board.entries}
    rows = []
    for _, r in b.iterrows():
        label = _label(r)
        entry = by_label.get(label)
        partial = entry is not None and (entry.run.get("n_succeeded") or 0) < (entry.run.get("n_cases") or 0)
        cells = [cell(r["rank"]), cell(label, swatch=styles[label]["color"], href=pages.get(label)),
                 cell(float(r["score"]))]
        if has_interval:
            lo, hi = r["rank_95_low"], r["rank_95_high"]
            cells.append(cell(f"{lo:g}–{hi:g}" if pd.notna(lo) else None, sort=float(lo) if pd.notna(lo) else ""))
            cells[-1]["num"] = True
            cells.append(cell(float(r["p_first"]), digits=3))
        scored = int(entry.run.get("n_succeeded")) if partial else int(r["n_cases"])
        cases = f"{scored}" + (f" of {entry.run.get('n_cases')} (partial)" if partial else "")
        cells.append({**cell(cases, sort=scored), "num": True})
        cells += [cell(float(means.get((label, g, m), np.nan)), digits=3) for g, m in columns]
        rows.append({"entry": label, "cells": cells, "attrs": {"data-entry": label, "data-submission": r["submission"],
                                                               **({"class": "partial"} if partial else {})}})
    return {"groups": groups, "header": header, "rows": rows, "n_fixed": len(header) - len(columns)}


def not_ranked(board: SplitBoard, pages: dict[str, str], public: bool = True) -> list[dict]:
    """The split's failed, unscored and partial entries, for the list below its board: ``entry``, ``status``,
    ``cases`` ("ok of total"), ``reason`` (one line; on a ``public`` site without what a container wrote:
    :func:`vsbench.leaderboard.entry_pages.shown_reason`) and ``href`` (the entry's page)."""
    out = []
    for e in board.entries:
        n, ok = e.run.get("n_cases") or 0, e.run.get("n_succeeded") or 0
        if ok < n:
            out.append({"entry": e.label, "status": "partial", "cases": f"{ok} of {n}", "href": pages.get(e.label),
                        "reason": f"ranked on {ok} cases; " + shown_reason(e.run.get("cases") or [], public)})
    for u in board.unranked:
        label = entry_label(u["submission"], u["version"])
        out.append({"entry": label, "status": u["status"], "cases": f"{u['n_succeeded'] or 0} of {u['n_cases'] or 0}",
                    "reason": shown_reason((u.get("run") or {}).get("cases") or [], public, u["reason"]),
                    "href": pages.get(label)})
    return out


def _example_panels(site: Site, task: str, board: SplitBoard, folder: str) -> tuple[str | None, list[dict]]:
    """Input, ground truth (unless withheld) and each entry's prediction of one case of the split."""
    from vsbench.leaderboard.case_views import case_images, example_case

    if not board.entries:
        return None, []
    split_path = board.entries[0].run["split_path"]
    chosen = example_case(task, split_path)
    if chosen is None:
        return None, []
    case, target = chosen
    with_truth = not (site.public and board.hidden)
    first = case_images(task, split_path, None, case, target, with_truth)
    panels = [site.image(first.input, f"{folder}/example-input.png", "input", "input"),
              site.image(first.truth, f"{folder}/example-truth.png", f"ground truth ({target})", "truth")]
    for entry in board.entries:
        images = case_images(task, split_path, entry.run.get("predictions_path"), case, target, with_truth=False)
        panels.append(site.image(images.prediction, f"{folder}/example-{slug(entry.label)}.png",
                                 f"{entry.label} (prediction)", "prediction"))
    return f"{case} ({target})", [p for p in panels if p is not None]


def publish_site(out: Path | str, title: str, task: str, boards: list[SplitBoard], metrics: list[str],
                 mode: str = "public") -> Path:
    """Write the site into ``out`` (created; files there with the same names are replaced) in ``mode``
    (``public`` or ``private``, module docstring); returns ``out/index.html``."""
    from vsbench.harness import __version__
    from vsbench.leaderboard.case_views import forget_splits

    forget_splits()
    styles = site_styles(boards)
    site = Site(out, mode, styles)
    pages = write_entry_pages(site, task, boards, metrics)  # entry label -> its page, relative to the index
    sections, everything = [], []
    group_word = "organelle" if task == "lmc" else "magnification"
    for board in boards:
        folder = f"split-{slug(board.split)}"
        b = board.board.reset_index(drop=True)
        site.write_csv(f"{folder}/board.csv", b)
        site.write_json(f"{folder}/board.json", b.to_dict(orient="records"))
        site.write_csv(f"{folder}/cases.csv", board.table)
        figs = []
        for stem, fig in split_figures(task, board, metrics, styles).items():
            alt, caption = FIGURE_TEXT[stem]
            figs.append(site.figure(fig, f"{folder}/{stem}.png", alt, caption.format(group=group_word)))
        panel_case, panels = _example_panels(site, task, board, folder)
        prov = [provenance(e) for e in board.entries]
        site.write_json(f"{folder}/provenance.json", prov)
        sections.append({"split": board.split, "anchor": f"split-{slug(board.split)}", "policy": board.policy,
                         "stability": board.stability, "table": board_table(board, metrics, styles, pages),
                         "not_ranked": not_ranked(board, pages, site.public), "figures": figs, "panels": panels,
                         "panel_case": panel_case, "hidden": board.hidden,
                         "truth_withheld": site.public and board.hidden,
                         "provenance": [{**p, "href": pages.get(p["entry"]), "split_hash": p["split_hash"][:16],
                                         "run_key": p["run_key"][:12], "score_key": p["score_key"][:12]}
                                        for p in prov],
                         "downloads": [("board.csv", f"{folder}/board.csv"), ("board.json", f"{folder}/board.json"),
                                       ("per-case values (CSV)", f"{folder}/cases.csv"),
                                       ("provenance.json", f"{folder}/provenance.json")]})
        everything += [{"split": board.split, **r} for r in b.to_dict(orient="records")]
    site.write_json("leaderboard.json", everything)
    site.write_csv("leaderboard.csv", pd.DataFrame(everything))
    return site.render("index.html", "index.html", title=title, task=task, sections=sections, version=__version__,
                       generated=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                       entries=sorted(pages.items()),
                       downloads=[("leaderboard.csv", "leaderboard.csv"), ("leaderboard.json", "leaderboard.json")])


def build_boards(bench, store, policy: str, decimals: int | None = None, bootstrap: int = 1000,
                 seed: int = 0, metrics: list[str] | None = None) -> list[SplitBoard]:
    """Rank every split of ``bench`` from ``store`` and bootstrap its cases: one :class:`SplitBoard` per split.
    ``metrics``: the metrics ranked (default: the benchmark's ``ranking.metrics``, else all)."""
    from vsbench.leaderboard.data import board_entries, case_table, unranked_runs
    from vsbench.leaderboard.ranking import rank
    from vsbench.leaderboard.stability import bootstrap_ranks, tau_text

    metrics = list(metrics or bench.ranking.metrics) or None
    entries = board_entries(store, bench.name)
    table = case_table(entries, bench.metric_set)
    board = rank(table, policy, metrics, decimals)
    stab = bootstrap_ranks(table, policy, bootstrap, seed, metrics, decimals) if bootstrap > 0 else None
    sections = []
    for split in sorted(board.table["split"].unique()):
        rows = board.table[board.table["split"] == split].sort_values(["rank", "submission", "version"])
        cols = ["rank", "submission", "version", "score", "n_cases"]
        shown = rows[cols].copy()
        shown.insert(1, "entry", [entry_label(s, v) for s, v in zip(shown["submission"], shown["version"],
                                                                      strict=True)])
        samples = None
        stability = "no bootstrap"
        if stab is not None:
            summary = stab.summary[stab.summary["split"] == split].set_index(["submission", "version"])
            keys = list(zip(shown["submission"], shown["version"], strict=True))
            shown["rank_95_low"] = [summary.loc[k, "rank_lo"] for k in keys]
            shown["rank_95_high"] = [summary.loc[k, "rank_hi"] for k in keys]
            shown["p_first"] = [summary.loc[k, "p_first"] for k in keys]
            ranks = stab.ranks[split]
            names = [entry_label(*p) for p in stab.participants[split]]
            samples = pd.DataFrame({"entry": np.repeat([names], ranks.shape[0], axis=0).ravel(),
                                    "rank": ranks.ravel()})
            stability = (f"{stab.n} bootstrap resamples of the cases (seed {stab.seed}, the same draw for every "
                         f"submission); the 95 % rank interval: the 2.5th to 97.5th percentile of each entry's "
                         f"bootstrap ranks; "
                         f"P(rank 1): the share of resamples that rank it first; "
                         f"Kendall's tau between the bootstrap rankings and this one: "
                         f"{tau_text(stab.tau.get(split))}")
        policy_text = (f"{board.policy}: {board.definition}; score: {board.direction}. Ties: {board.ties}.")
        split_entries = [e for e in entries if e.split == split]
        unranked = [{**u, "run": store.get_run(u["run_key"]) or {}} for u in unranked_runs(store, bench.name, entries,
                                                                                            split)]
        hidden = next((s.hidden for s in bench.splits if s.name == split), True)
        sections.append(SplitBoard(split, shown, policy_text, stability, table[table["split"] == split],
                                   split_entries, samples, {"direction": board.direction}, unranked, hidden))
    return sections
