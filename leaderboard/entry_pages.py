"""One page per entry (``name@version``) of a published leaderboard: ``entries/<name@version>.html``.

For every split the entry ran on: its rank, score and rank interval, or its status and reason when it is not
ranked; its provenance (``provenance.json``) and ``metrics.json``; its z-deviation curves against the board's best
entry and the ``input`` baseline (the identity prediction, when the board has it); the worst case of every target
as input | ground truth | prediction | difference panels; its failed cases with status, reason and (private site)
the tail of their stderr; and its per-case table, sortable. A public site leaves out the ground-truth and
difference panels of a hidden split and every container log.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from vsbench.leaderboard import figures
from vsbench.leaderboard.case_views import case_images, case_table, curve_metrics, public_metrics, worst_cases
from vsbench.leaderboard.data import entry_label, provenance
from vsbench.leaderboard.site import Site, cell, slug
from vsbench.metrics import metric_title

BASELINE = "input"  # the identity prediction: the floor every entry should beat
_EXIT = re.compile(r"^(exit code -?\d+)")


def page_of(label: str) -> str:
    """The page of entry ``label``, relative to the site's top folder."""
    return f"entries/{slug(label)}.html"


def public_reason(case: dict) -> str:
    """A case's reason as a public site shows it: without what the container wrote (a failed case's reason ends
    with the last line of its stderr, which only the organisers see)."""
    reason = str(case.get("reason") or "")
    found = _EXIT.match(reason)
    return found.group(1) + " (log withheld)" if found else reason


def failed_cases(site: Site, cases: list[dict]) -> list[dict]:
    """The cases of a run that did not succeed: ``case``, ``status``, ``reason``, ``exit_code`` and (private site
    only) ``stderr``, the last lines of the case's stderr (escaped)."""
    from vsbench.harness.logs import log_tail

    out = []
    for c in cases:
        if c.get("status") == "succeeded":
            continue
        out.append({"case": c.get("case"), "status": c.get("status"), "exit_code": c.get("exit_code"),
                    "reason": public_reason(c) if site.public else str(c.get("reason") or ""),
                    "stderr": [] if site.public else log_tail(c.get("stderr"), lines=12)})
    return out


def _curves(site: Site, task: str, board, entry, metrics: list[str], folder: str) -> dict | None:
    """The entry's z-deviation curves with the board's best entry and the input baseline."""
    table = board.table
    labels = figures.entry_labels(table)
    ranked = [entry_label(s, v) for s, v in zip(board.board["submission"], board.board["version"], strict=True)]
    notes = {}
    order = [entry.label]
    if ranked and ranked[0] != entry.label:
        order.append(ranked[0])
        notes[ranked[0]] = "board's best"
    baseline = next((label for label in ranked if label.split("@", 1)[0] == BASELINE), None)
    if baseline and baseline not in order:
        order.append(baseline)
        notes[baseline] = "input baseline"
    elif baseline == entry.label:
        notes[entry.label] = "input baseline"
    part = table[labels.isin(order)]
    metrics = curve_metrics(task, metrics)
    if part.empty:
        return None
    fig = figures.z_deviation_figure(part, order, metrics, site.styles, notes=notes, emphasis=entry.label)
    caption = (f"Mean {' and '.join(metric_title(m) for m in metrics)} over cases against the z-deviation: this entry "
               "(thick line)"
               + (f", the board's best ({ranked[0]})" if ranked[0] != entry.label else ", which is the board's best")
               + (f" and the input baseline ({baseline})" if baseline and baseline != entry.label else "")
               + (". The board has no input baseline (submission 'input')." if baseline is None else "."))
    return site.figure(fig, f"{folder}/z_deviation.png", f"z-deviation curves of {entry.label}", caption)


def _worst(site: Site, task: str, board, entry, doc: dict, folder: str) -> list[dict]:
    """Input | truth | prediction | difference panels of the worst case of every target."""
    withheld = site.public and board.hidden
    out = []
    for w in worst_cases(doc):
        images = case_images(task, entry.run["split_path"], entry.run.get("predictions_path"), w.case, w.target,
                             with_truth=not withheld)
        stem = f"{folder}/worst-{slug(w.target)}"
        lo = hi = None
        if task == "lmc":
            lo, hi = 0.0, 1.0  # the percentile-normalised images: 0 = 2nd, 1 = 99.8th percentile
        elif images.truth is not None:
            lo, hi = (float(v) for v in np.nanpercentile(images.truth, [1, 99.8]))
        panels = [site.image(images.input, f"{stem}-input.png", "input", "input"),
                  None if withheld else site.image(images.truth, f"{stem}-truth.png", "ground truth", "truth", lo, hi),
                  site.image(images.prediction, f"{stem}-prediction.png", "prediction", "prediction", lo, hi),
                  None if withheld else site.difference(images.difference, f"{stem}-difference.png",
                                                        "prediction − ground truth")]
        out.append({"target": w.target, "case": w.case, "metric": metric_title(w.metric), "value": cell(w.value),
                    "panels": [p for p in panels if p is not None], "scale": images.scale, "withheld": withheld})
    return out


def _case_table(doc: dict) -> dict:
    table = case_table(doc)
    keys = [("case", "text"), ("target", "text"), ("modality", "text"), ("z-deviation", "num")]
    header = [{"title": t, "type": k} for t, k in keys]
    header += [{"title": (f"{column.split(' ', 1)[1]} " if " " in column else "") + metric_title(metric),
                "type": "num"} for column, metric in table.metrics.items()]
    rows = [{"cells": [cell(r["case"]), cell(r["target"]), cell(r["modality"]),
                       cell(int(r["z_deviation"]) if pd.notna(r["z_deviation"]) else None),
                       *(cell(float(r[c])) for c in table.metrics)]}
            for _, r in table.frame.iterrows()]
    return {"header": header, "rows": rows}


def _ranked_section(site: Site, task: str, board, entry, metrics: list[str], folder: str) -> dict:
    row = board.board[(board.board["submission"] == entry.submission) & (board.board["version"] == entry.version)]
    r = row.iloc[0]
    doc = entry.metrics
    prov = provenance(entry)
    files = [("provenance.json", site.write_json(f"{folder}/provenance.json", prov)),
             ("metrics.json", site.write_json(f"{folder}/metrics.json",
                                              public_metrics(doc) if site.public and board.hidden else doc))]
    n, ok = entry.run.get("n_cases") or 0, entry.run.get("n_succeeded") or 0
    interval = f"{r['rank_95_low']:g}–{r['rank_95_high']:g}" if pd.notna(r.get("rank_95_low")) else None
    return {"split": board.split, "ranked": True, "rank": int(r["rank"]), "of": len(board.board),
            "score": cell(float(r["score"])), "direction": board.extra.get("direction", ""), "interval": interval,
            "status": "partial" if ok < n else "complete", "cases": f"{ok} of {n}", "files": files,
            "provenance": {**prov, "split_hash": prov["split_hash"][:16], "run_key": prov["run_key"][:12],
                           "score_key": prov["score_key"][:12]},
            "curves": _curves(site, task, board, entry, metrics, folder), "worst": _worst(site, task, board, entry, doc,
                                                                                     folder),
            "failed": failed_cases(site, entry.run.get("cases") or []), "table": _case_table(doc),
            "truth_withheld": site.public and board.hidden}


def _unranked_section(site: Site, board, u: dict, folder: str) -> dict:
    run = u.get("run") or {}
    keep = ("submission", "submission_version", "split_name", "status", "image_ref", "image_digest",
            "checkpoint_hash", "runtime", "sandboxed", "split_hash", "vsbench_version", "started_at", "finished_at",
            "n_cases", "n_succeeded", "n_failed", "run_key")
    files = [("provenance.json", site.write_json(f"{folder}/provenance.json", {k: run.get(k) for k in keep}))]
    return {"split": board.split, "ranked": False, "status": u["status"],
            "reason": shown_reason(run.get("cases") or [], site.public, u["reason"]),
            "cases": f"{u['n_succeeded'] or 0} of {u['n_cases'] or 0}",
            "files": files, "failed": failed_cases(site, run.get("cases") or []),
            "provenance": {"identity": run.get("image_digest") or run.get("image_ref") or "–",
                           "split_hash": (run.get("split_hash") or "")[:16], "run_key": u["run_key"][:12]}}


def shown_reason(cases: list[dict], public: bool, fallback: str = "") -> str:
    """Why a run's cases did not succeed, in one line (:func:`vsbench.harness.logs.run_reason`), each case's
    reason as the site shows it (:func:`public_reason` on a ``public`` site); ``fallback`` when none failed."""
    from vsbench.harness.logs import run_reason

    return run_reason([{**c, "reason": public_reason(c)} if public else c for c in cases]) or fallback


def write_entry_pages(site: Site, task: str, boards: list, metrics: list[str]) -> dict[str, str]:
    """Write the page of every entry of ``boards`` (ranked or not); returns entry label -> page (relative to the
    site's top folder)."""
    sections: dict[str, list[dict]] = {}
    for board in boards:
        for entry in board.entries:
            folder = f"entries/{slug(entry.label)}/{slug(board.split)}"
            sections.setdefault(entry.label, []).append(_ranked_section(site, task, board, entry, metrics, folder))
        for u in board.unranked:
            label = entry_label(u["submission"], u["version"])
            folder = f"entries/{slug(label)}/{slug(board.split)}"
            sections.setdefault(label, []).append(_unranked_section(site, board, u, folder))
    pages = {}
    for label, parts in sections.items():
        pages[label] = page_of(label)
        site.render("entry.html", pages[label], label=label, sections=parts,
                    color=(site.styles.get(label) or {}).get("color"), task=task)
    return pages
