"""``vsbench leaderboard publish BENCH --out SITE/``: a static leaderboard site a challenge can host as is.

Per split of the benchmark: the ranked table with bootstrap rank intervals and the policy and tie rule stated;
metric-vs-z-deviation curves per submission; the rank-stability blob plot; on the Adipocyte task the pixel-MAE
vs CellProfiler-MAE trade-off; example panels (input, ground truth, each submission's prediction); the
provenance of every entry; CSV and JSON exports of every table. Plain HTML (Jinja2), no script.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from vsbench.leaderboard import figures
from vsbench.leaderboard.data import Entry, entry_label

TEMPLATES = Path(__file__).resolve().parent / "templates"


@dataclass
class SplitBoard:
    """Everything a split's section shows. ``board``: one row per entry in rank order, columns ``rank``,
    ``entry`` (``name@version``), ``submission``, ``version``, ``score`` and optionally ``rank_95_low``,
    ``rank_95_high``, ``p_first``, ``n_cases``; ``samples``: bootstrap ranks (``entry``, ``rank``), or None;
    ``policy``/``stability``: one sentence each, shown above the table; ``table``: the per-case table
    (:func:`vsbench.leaderboard.data.case_table`)."""

    split: str
    board: pd.DataFrame
    policy: str
    stability: str
    table: pd.DataFrame
    entries: list[Entry]
    samples: pd.DataFrame | None = None
    extra: dict = field(default_factory=dict)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "x"


def _fmt(value) -> tuple[str, bool]:
    if isinstance(value, (float, np.floating)):
        return ("–" if not np.isfinite(value) else f"{value:.4g}"), True
    if isinstance(value, (int, np.integer)):
        return str(int(value)), True
    return str(value), False


def _example_panels(task: str, board: SplitBoard, folder: Path) -> tuple[str | None, list[dict]]:
    """Input, ground truth and each submission's prediction for one case (nucleus / nuclei)."""
    from vsbench.harness.split import Split

    if not board.entries:
        return None, []
    split = Split(board.entries[0].run["split_path"])
    panels: list[tuple[str, np.ndarray]] = []
    try:
        if task == "lmc":
            from vsbench.harness.omeio import read_plane
            from vsbench.harness.predict import prediction_path

            case = next((c for c in split.cases() if "nucleus" in split.organelles(c)), None)
            if case is None:
                return None, []
            panels.append(("input", read_plane(split.input_path(case))[0]))
            panels.append(("ground truth (nucleus)", read_plane(split.target_path(case, "nucleus"))[0]))
            name = case.name
            for entry in board.entries:
                path = prediction_path(Path(entry.run["predictions_path"]), "nucleus", case.name)
                if path.is_file():
                    panels.append((f"{entry.label} (prediction)", read_plane(path)[0]))
        else:
            from vsbench.harness.adipocyte_split import adipocyte_sets, read_uint16_plane
            from vsbench.harness.predict_adipocyte import prediction_path

            aset = adipocyte_sets(split)[0]
            name = aset.key
            panels.append(("input (Z04)", read_uint16_plane(split.inputs_dir / aset.inputs[3])))
            if "nuclei" in aset.targets:
                truth = read_uint16_plane(split.ground_truth_dir / aset.targets["nuclei"])
                panels.append(("ground truth (nuclei)", truth))
            for entry in board.entries:
                path = prediction_path(Path(entry.run["predictions_path"]), "nuclei", aset)
                if path.is_file():
                    panels.append((f"{entry.label} (prediction)", read_uint16_plane(path)))
    except (OSError, ValueError, StopIteration):
        return None, []
    out = []
    for i, (label, image) in enumerate(panels):
        target = folder / f"panel-{i:02d}-{_slug(label)}.png"
        figures.image_panel(np.squeeze(image), target)
        out.append({"label": label, "src": f"{folder.name}/{target.name}"})
    return name, out


def _provenance(entry: Entry) -> dict:
    run, score = entry.run, entry.score
    hw = run.get("hardware") or {}
    identity = run.get("image_digest") or (f"checkpoint {run['checkpoint_hash'][:16]}" if run.get("checkpoint_hash")
                                           else run.get("image_ref") or "–")
    return {"entry": entry.label, "submission": entry.submission, "version": entry.version, "identity": identity,
            "runtime": f"{run.get('runtime')}{'' if run.get('sandboxed') else ' (not sandboxed)'}",
            "split_hash": (run.get("split_hash") or "")[:16], "evaluator": f"{score.get('evaluator_version')}",
            "vsbench": run.get("vsbench_version"),
            "hardware": ", ".join(str(x) for x in (hw.get("cpu"), hw.get("gpu") or "no GPU") if x),
            "run_key": entry.run_key[:12], "score_key": entry.score_key[:12]}


FIGURE_TEXT = {  # file stem: (alt text, caption); {group}: organelle or magnification
    "z_deviation": ("metric against z-deviation per entry",
                    "Mean over cases against the z-deviation (planes between the input and best focus), one panel "
                    "per {group} and metric, one line per entry (name@version)."),
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


def publish_site(out: Path | str, title: str, task: str, boards: list[SplitBoard], metrics: list[str],
                 database: str = "") -> Path:
    """Write the site into ``out`` (created; files there with the same names are replaced); returns
    ``out/index.html``."""
    import jinja2

    from vsbench.harness import __version__

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sections, everything = [], []
    styles = site_styles(boards)
    for board in boards:
        folder = out / f"split-{_slug(board.split)}"
        folder.mkdir(exist_ok=True)
        rel = folder.name
        b = board.board.reset_index(drop=True)
        b.to_csv(folder / "board.csv", index=False)
        (folder / "board.json").write_text(b.to_json(orient="records", indent=1))
        board.table.to_csv(folder / "cases.csv", index=False)
        figs = []
        for stem, fig in split_figures(task, board, metrics, styles).items():
            figures.save(fig, folder / f"{stem}.png")
            alt, caption = FIGURE_TEXT[stem]
            figs.append({"src": f"{rel}/{stem}.png", "alt": alt,
                         "caption": caption.format(group="organelle" if task == "lmc" else "magnification")})
        panel_case, panels = _example_panels(task, board, folder)
        header = [h for h in b.columns if h not in ("submission", "version")]  # the entry column says both
        rows = [{"submission": r["submission"], "entry": _label(r),
                 "cells": [{**dict(zip(("text", "num"), _fmt(r[h]), strict=True)),
                            "swatch": styles[_label(r)]["color"] if h == "entry" else None} for h in header]}
                for _, r in b.iterrows()]
        provenance = [_provenance(e) for e in board.entries]
        (folder / "provenance.json").write_text(json.dumps(provenance, indent=1, default=str))
        sections.append({"split": board.split, "policy": board.policy, "stability": board.stability,
                         "header": header, "rows": rows, "figures": figs, "panels": panels,
                         "panel_case": panel_case, "provenance": provenance, "board_csv": f"{rel}/board.csv",
                         "board_json": f"{rel}/board.json", "cases_csv": f"{rel}/cases.csv"})
        everything += [{"split": board.split, **r} for r in b.to_dict(orient="records")]
    (out / "leaderboard.json").write_text(json.dumps(everything, indent=1, default=str))
    pd.DataFrame(everything).to_csv(out / "leaderboard.csv", index=False)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True)
    html = env.get_template("index.html").render(
        title=title, task=task, sections=sections, version=__version__, database=database,
        generated=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        downloads=[("leaderboard.csv", "leaderboard.csv"), ("leaderboard.json", "leaderboard.json")])
    index = out / "index.html"
    index.write_text(html)
    return index


def build_boards(bench, store, policy: str, decimals: int | None = None, bootstrap: int = 1000,
                 seed: int = 0, metrics: list[str] | None = None) -> list[SplitBoard]:
    """Rank every split of ``bench`` from ``store`` and bootstrap its cases: one :class:`SplitBoard` per split.
    ``metrics``: the metrics ranked (default: the benchmark's ``ranking.metrics``, else all)."""
    from vsbench.leaderboard.data import board_entries, case_table
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
                         f"submission); rank_95_low/high: 2.5 and 97.5 % of each submission's bootstrap ranks; "
                         f"Kendall's tau between the bootstrap rankings and this one: "
                         f"{tau_text(stab.tau.get(split))}")
        policy_text = (f"{board.policy}: {board.definition}; score: {board.direction}. Ties: {board.ties}.")
        split_entries = [e for e in entries if e.split == split]
        sections.append(SplitBoard(split, shown, policy_text, stability, table[table["split"] == split],
                                   split_entries, samples))
    return sections
