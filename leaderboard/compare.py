"""Regression testing of model versions: ``vsbench compare BASELINE CANDIDATE``.

Two scored results on the same split (stored runs, by ``NAME@VERSION`` such as ``model@v1``, by run key or a
unique prefix of it; or a metrics.json file or a folder holding one; :func:`resolve`) are turned into the
per-case table of :mod:`vsbench.leaderboard.data` and paired on (case, group, metric, z-deviation). For every
metric x group x z-deviation cell, and for every metric x group over all z-deviations (the ``overall`` level),
:func:`paired_comparisons` gives the number of pairs, the mean and median of the differences candidate -
baseline, a Wilcoxon signed-rank test and a matched-pairs rank-biserial correlation, and the direction-aware
``worse_by`` (a drop for higher-is-better metrics, a rise for lower-is-better ones; negative when the candidate
improved).

A policy (YAML, :func:`load_policy`) is a list of rules such as ``{metric: SSIM, group: nucleus, max_drop:
0.01, p: 0.05, per_z_deviation: true}``: "nucleus SSIM may not get worse by more than 0.01 (mean of the paired
differences, absolute units) at any z-deviation with a Wilcoxon p < 0.05". ``metric`` and ``group`` are
shell-style patterns (``"*"`` matches all). Without a policy, :data:`DEFAULT_POLICY`: any metric of any group
worse by more than 0.01 with p < 0.05 at the overall level. :func:`check_policy` tests every rule on every
cell it matches; the candidate regresses when any check fails. A typo never passes the gate: a rule whose metric
or group pattern matches no metric or group of the two runs, or an unknown metric asked for, is an error
(:func:`check_names`), and so is a comparison that checks no cell at all unless ``allow_empty``.
"""

from __future__ import annotations

import fnmatch
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np
import pandas as pd
import yaml
from scipy import stats

from vsbench.harness.run_selection import RunSelectionError, select_run
from vsbench.leaderboard.data import Entry, case_table, entry_label

OVERALL = "overall"
KEYS = ["metric", "group", "z_deviation"]


# ------------------------------------------------------------------------------------------------ policy

@dataclass(frozen=True)
class Rule:
    """One policy rule: cells of ``metric`` x ``group`` (patterns) may not get worse by more than ``max_drop``
    (absolute, the mean paired difference) with Wilcoxon p < ``p``; at every z-deviation when
    ``per_z_deviation``, else over all z-deviations."""

    metric: str = "*"
    group: str = "*"
    max_drop: float = 0.01
    p: float = 0.05
    per_z_deviation: bool = False
    name: str = ""

    @property
    def label(self) -> str:
        level = "per z-deviation" if self.per_z_deviation else OVERALL
        return self.name or f"{self.metric}/{self.group} max_drop={self.max_drop:g} p<{self.p:g} ({level})"

    def matches(self, metric: str, group: str) -> bool:
        return fnmatch.fnmatchcase(str(metric), self.metric) and fnmatch.fnmatchcase(str(group), self.group)


DEFAULT_POLICY = (Rule(name="default: any metric worse by > 0.01 with p < 0.05 (overall)"),)
_RULE_FIELDS = {"metric", "group", "max_drop", "p", "per_z_deviation", "name"}


def _rule(raw, where: str) -> Rule:
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: a rule must be a mapping such as {{metric: SSIM, group: nucleus, max_drop: "
                         f"0.01, p: 0.05}}, not {raw!r}")
    where = f"{where} ({raw['name']})" if isinstance(raw.get("name"), str) else where
    unknown = sorted(set(raw) - _RULE_FIELDS)
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {', '.join(map(str, unknown))} (allowed: "
                         f"{', '.join(sorted(_RULE_FIELDS))})")
    for name in ("metric", "group", "name"):
        if name in raw and (not isinstance(raw[name], str) or (name != "name" and not raw[name])):
            raise ValueError(f"{where}: {name} must be a non-empty string (\"*\" for all), not {raw[name]!r}")
    max_drop = raw.get("max_drop", 0.01)
    if isinstance(max_drop, bool) or not isinstance(max_drop, (int, float)) or not max_drop >= 0 \
            or not math.isfinite(max_drop):
        raise ValueError(f"{where}: max_drop must be a number >= 0, not {max_drop!r}")
    p = raw.get("p", 0.05)
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 < p <= 1:
        raise ValueError(f"{where}: p must be a number in (0, 1], not {p!r}")
    per_z = raw.get("per_z_deviation", False)
    if not isinstance(per_z, bool):
        raise ValueError(f"{where}: per_z_deviation must be true or false, not {per_z!r}")
    return Rule(raw.get("metric", "*"), raw.get("group", "*"), float(max_drop), float(p), per_z,
                raw.get("name", ""))


def parse_policy(doc) -> tuple[Rule, ...]:
    """Rules from a parsed policy document: ``{rules: [...]}`` or a bare list of rules."""
    rules = doc.get("rules") if isinstance(doc, dict) else doc
    if isinstance(doc, dict) and set(doc) - {"rules", "name", "description"}:
        extra = ", ".join(sorted(map(str, set(doc) - {"rules", "name", "description"})))
        raise ValueError(f"policy: unknown top-level field(s) {extra} (allowed: rules, name, description)")
    if not isinstance(rules, list) or not rules:
        raise ValueError("policy: expected a non-empty list of rules (or a mapping with 'rules:')")
    return tuple(_rule(r, f"policy rule {i + 1}") for i, r in enumerate(rules))


def load_policy(path: Path | str | None) -> tuple[Rule, ...]:
    """The rules of a policy YAML file, or :data:`DEFAULT_POLICY` for None; :class:`ValueError` (one line,
    naming the rule) when the file is not a valid policy."""
    if path is None:
        return DEFAULT_POLICY
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ValueError(f"policy {path}: cannot read ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"policy {path}: not YAML ({' '.join(str(exc).split())})") from None
    try:
        return parse_policy(doc)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


# ------------------------------------------------------------------------------------------------ inputs

def _metrics_entry(path: Path) -> Entry:
    metrics_path = path / "metrics.json" if path.is_dir() else path
    if not metrics_path.is_file():
        raise ValueError(f"{path}: no metrics.json there")
    try:
        doc = json.loads(metrics_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{metrics_path}: not a readable metrics.json ({exc})") from None
    prov = doc.get("provenance") or {}
    name = str(prov.get("algorithm") or metrics_path.parent.name)
    run = {"split_hash": prov.get("split_hash"), "split_name": prov.get("split"), "submission": name}
    return Entry(name, "", str(prov.get("split") or ""), str(metrics_path), "", metrics_path, run, {})


def _run_entry(store, row: dict) -> Entry:
    scores = [s for s in (store.get_score(k) for k in row.get("score_keys") or []) if s]
    label = entry_label(row["submission"], row.get("submission_version"))
    if not scores:
        raise ValueError(f"run {row['run_key'][:12]} ({label}) has no score (run 'vsbench run' to score it)")
    latest = max(scores, key=lambda s: s.get("updated_at") or s.get("created_at"))
    if not latest.get("metrics_path"):
        raise ValueError(f"run {row['run_key'][:12]} ({label}): its latest score has no metrics.json")
    return Entry(row["submission"], row.get("submission_version") or "", row.get("split_name") or "",
                 row["run_key"], latest["score_key"], Path(latest["metrics_path"]), row, latest)


def resolve(store, ref: str, benchmark: str | None = None, split: str | None = None) -> Entry:
    """A stored run with its latest score, or a metrics.json file (or a folder holding one; split from its
    provenance) when ``ref`` is an existing path that selects no run.

    A stored run is selected by ``NAME@VERSION`` (e.g. ``model@v1``), by its run key or a unique prefix of it
    (as ``vsbench results show``), or by a bare ``NAME`` stored at one version only; ``benchmark`` and ``split``
    narrow the runs looked at. :class:`ValueError` (one line) when ``ref`` selects several runs or none, listing
    the candidates as ``name@version on split (run key prefix)``."""
    if store is not None:
        try:
            return _run_entry(store, select_run(store, ref, benchmark, split, otherwise=" nor a metrics.json"))
        except RunSelectionError:
            if not Path(ref).exists():
                raise
    if Path(ref).exists():
        return _metrics_entry(Path(ref))
    raise ValueError(f"{ref!r} is neither a stored run key, NAME@VERSION nor a metrics.json")


def describe(entry: Entry) -> str:
    key = entry.run_key[:12] if entry.score_key else entry.run_key
    return f"{entry.label} ({key})"


def check_same_split(baseline: Entry, candidate: Entry) -> None:
    """:class:`ValueError` naming both splits unless the two are on the same split (same ``split_hash``)."""
    hashes = [e.run.get("split_hash") for e in (baseline, candidate)]
    if not all(hashes) or hashes[0] != hashes[1]:
        def split(e: Entry) -> str:
            h = e.run.get("split_hash")
            return f"{e.run.get('split_name') or e.split or '?'} ({str(h)[:12] if h else 'no split hash'})"
        raise ValueError(f"not on the same split: baseline {describe(baseline)} is on {split(baseline)}, "
                         f"candidate {describe(candidate)} on {split(candidate)}")


# ------------------------------------------------------------------------------------------------ statistics

def rank_biserial(diffs: np.ndarray) -> float:
    """Matched-pairs rank-biserial correlation of paired differences: r = (R+ - R-) / (R+ + R-), with R+ and
    R- the sums of the ranks of |d| (average ranks for ties, zero differences dropped as in Wilcoxon's
    test) over the positive and the negative differences; in [-1, 1], positive when the candidate is higher.
    Kerby, D. S. (2014), "The simple difference formula: an approach to teaching nonparametric correlation",
    Comprehensive Psychology 3: 11.IT.3.1. 0 when every difference is zero."""
    d = diffs[diffs != 0]
    if d.size == 0:
        return 0.0
    ranks = stats.rankdata(np.abs(d))
    plus, minus = ranks[d > 0].sum(), ranks[d < 0].sum()
    return float((plus - minus) / (plus + minus))


def wilcoxon(diffs: np.ndarray) -> tuple[float, float]:
    """Two-sided Wilcoxon signed-rank test of the paired differences (zero differences dropped,
    ``zero_method="wilcox"``): (statistic, p). No change, (0, 1), when every difference is zero or none is
    left."""
    if diffs.size == 0 or not np.any(diffs != 0):
        return 0.0, 1.0
    res = stats.wilcoxon(diffs, zero_method="wilcox", alternative="two-sided")
    return float(res.statistic), float(res.pvalue)


def _cell(metric, group, z, level: str, higher: bool, base: np.ndarray, cand: np.ndarray) -> dict:
    diffs = cand - base
    n = int(diffs.size)
    stat, p = wilcoxon(diffs)
    mean = float(diffs.mean()) if n else float("nan")
    return {"metric": metric, "group": group, "z_deviation": z, "level": level, "n": n,
            "n_nonzero": int(np.count_nonzero(diffs)), "baseline_mean": float(base.mean()) if n else float("nan"),
            "candidate_mean": float(cand.mean()) if n else float("nan"), "mean_diff": mean,
            "median_diff": float(np.median(diffs)) if n else float("nan"), "wilcoxon_statistic": stat,
            "p_value": p, "rank_biserial": rank_biserial(diffs), "higher_is_better": bool(higher),
            "worse_by": (-mean if higher else mean)}


def paired_table(baseline: pd.DataFrame, candidate: pd.DataFrame) -> pd.DataFrame:
    """Per-case pairs (columns ``case, group, metric, z_deviation, higher_is_better, baseline, candidate``)
    of two per-case tables, rows with a missing value on either side dropped."""
    on = ["case", "group", "metric", "z_deviation"]
    left = baseline[on + ["higher_is_better", "value"]].rename(columns={"value": "baseline"})
    right = candidate[on + ["value"]].rename(columns={"value": "candidate"})
    for side in (left, right):
        side["z_deviation"] = side["z_deviation"].astype(object).where(side["z_deviation"].notna(), None)
    pairs = left.merge(right, on=on, how="inner")
    return pairs.dropna(subset=["baseline", "candidate"]).reset_index(drop=True)


def _z_label(z):
    if z is None or (isinstance(z, float) and math.isnan(z)):
        return None
    return int(z) if float(z).is_integer() else float(z)


def paired_comparisons(pairs: pd.DataFrame) -> pd.DataFrame:
    """One row per metric x group x z-deviation (``level`` ``z_deviation``) and per metric x group over all
    z-deviations (``level`` ``overall``, ``z_deviation`` None) of :func:`paired_table` pairs."""
    rows = []
    for (metric, group), part in pairs.groupby(["metric", "group"], sort=True):
        higher = bool(part["higher_is_better"].iloc[0])
        rows.append(_cell(metric, group, None, OVERALL, higher, part["baseline"].to_numpy(float),
                          part["candidate"].to_numpy(float)))
        zs = part["z_deviation"].map(_z_label)
        for z in sorted({z for z in zs if z is not None}):
            sub = part[zs == z]
            rows.append(_cell(metric, group, z, "z_deviation", higher, sub["baseline"].to_numpy(float),
                              sub["candidate"].to_numpy(float)))
    columns = ["metric", "group", "z_deviation", "level", "n", "n_nonzero", "baseline_mean", "candidate_mean",
               "mean_diff", "median_diff", "wilcoxon_statistic", "p_value", "rank_biserial", "higher_is_better",
               "worse_by"]
    table = pd.DataFrame(rows, columns=columns)
    table["z_deviation"] = pd.Series([r["z_deviation"] for r in rows], index=table.index, dtype=object)
    return table


# ------------------------------------------------------------------------------------------------ verdict

@dataclass
class Check:
    """One rule on one comparison cell."""

    rule: Rule
    cell: dict
    regressed: bool

    @property
    def where(self) -> str:
        z = _z_label(self.cell["z_deviation"])
        return f"{self.cell['metric']} {self.cell['group']} " + (OVERALL if z is None else f"z-deviation {z}")

    @property
    def message(self) -> str:
        c = self.cell
        direction = "higher" if c["higher_is_better"] else "lower"
        verb = "worse" if c["worse_by"] > 0 else "not worse"
        return (f"{self.where}: {verb} by {abs(c['worse_by']):.4g} ({direction} is better; mean diff "
                f"{c['mean_diff']:+.4g}, median {c['median_diff']:+.4g}, n={c['n']}, p={c['p_value']:.3g}, "
                f"r={c['rank_biserial']:+.2f}); allowed {self.rule.max_drop:g} at p<{self.rule.p:g}")


def check_policy(comparisons: pd.DataFrame, rules) -> tuple[list[Check], list[Rule]]:
    """Every rule on every cell it matches (its level), and the rules that matched no cell."""
    checks, unmatched = [], []
    cells = comparisons.to_dict("records")
    for rule in rules:
        level = "z_deviation" if rule.per_z_deviation else OVERALL
        found = [c for c in cells if c["level"] == level and c["n"] > 0 and rule.matches(c["metric"], c["group"])]
        if not found:
            unmatched.append(rule)
        for c in found:
            regressed = bool(c["worse_by"] > rule.max_drop and c["p_value"] < rule.p)
            checks.append(Check(rule, c, regressed))
    return checks, unmatched


@dataclass
class Comparison:
    """The outcome of :func:`compare`."""

    baseline: Entry
    candidate: Entry
    rules: tuple[Rule, ...]
    pairs: pd.DataFrame = field(repr=False)
    comparisons: pd.DataFrame = field(repr=False)
    checks: list[Check] = field(repr=False)
    unmatched: list[Rule]
    n_baseline_only: int = 0
    n_candidate_only: int = 0

    @property
    def regressions(self) -> list[Check]:
        return [c for c in self.checks if c.regressed]

    @property
    def regressed(self) -> bool:
        return bool(self.regressions)

    @property
    def verdict(self) -> str:
        head = f"candidate {describe(self.candidate)} vs baseline {describe(self.baseline)}"
        if self.regressed:
            metrics = sorted({f"{c.cell['metric']} ({c.cell['group']})" for c in self.regressions})
            return f"REGRESSION: {head}: {len(self.regressions)} check(s) failed: {', '.join(metrics)}"
        return f"OK: {head}: no regression beyond the policy ({len(self.checks)} check(s))"

    @property
    def exit_code(self) -> int:
        return 1 if self.regressed else 0


def check_names(rules, metrics: list[str] | None, known_metrics, known_groups) -> None:
    """:class:`ValueError` (one line, listing the known names) for a name of ``metrics`` that is not among
    ``known_metrics``, or a rule whose metric or group pattern matches none of ``known_metrics`` /
    ``known_groups`` (the metrics and groups of the compared runs): a typo must not pass the gate."""
    known_metrics = sorted(map(str, known_metrics))
    known_groups = sorted(map(str, known_groups))
    unknown = [m for m in metrics or () if m not in known_metrics]
    if unknown:
        raise ValueError(f"unknown metric(s) {', '.join(map(repr, unknown))} (the compared runs have: "
                         f"{', '.join(known_metrics)})")
    for i, rule in enumerate(rules):
        where = f"policy rule {i + 1}" + (f" ({rule.name})" if rule.name else "")
        for what, pattern, known in (("metric", rule.metric, known_metrics), ("group", rule.group, known_groups)):
            if not any(fnmatch.fnmatchcase(k, pattern) for k in known):
                raise ValueError(f"{where}: {what} {pattern!r} matches no {what} of the compared runs (they have: "
                                 f"{', '.join(known)})")


def compare_entries(baseline: Entry, candidate: Entry, rules=None, metrics: list[str] | None = None,
                    allow_empty: bool = False) -> Comparison:
    """Compare two scored entries on the same split under ``rules`` (default :data:`DEFAULT_POLICY`), on
    ``metrics`` only when given. :class:`ValueError` when a name in ``metrics`` or a rule's metric or group
    pattern matches nothing in the two runs (:func:`check_names`), and when the policy checks no cell at all
    unless ``allow_empty``."""
    check_same_split(baseline, candidate)
    rules = tuple(rules) if rules else DEFAULT_POLICY
    full = [case_table([e]) for e in (baseline, candidate)]
    check_names(rules, metrics, set(full[0]["metric"]) | set(full[1]["metric"]),
                set(full[0]["group"].astype(str)) | set(full[1]["group"].astype(str)))
    tables = [t[t["metric"].isin(metrics)].reset_index(drop=True) if metrics else t for t in full]
    pairs = paired_table(*tables)
    if pairs.empty:
        raise ValueError(f"baseline {describe(baseline)} and candidate {describe(candidate)} share no scored case"
                         + (f" for metrics {', '.join(metrics)}" if metrics else ""))
    on = ["case", "group", "metric"]
    keys = [set(map(tuple, t.dropna(subset=["value"])[on].to_numpy().tolist())) for t in tables]
    comparisons = paired_comparisons(pairs)
    checks, unmatched = check_policy(comparisons, rules)
    if not checks and not allow_empty:
        raise ValueError(f"the policy made 0 checks: none of its {len(rules)} rule(s) matched a compared metric x "
                         "group at its level (--allow-empty accepts an empty comparison)")
    checks.sort(key=lambda c: (not c.regressed, -c.cell["worse_by"]))
    return Comparison(baseline, candidate, rules, pairs, comparisons, checks, unmatched,
                      len(keys[0] - keys[1]), len(keys[1] - keys[0]))


def compare(store, baseline: str, candidate: str, policy: Path | str | None = None,
            metrics: list[str] | None = None, allow_empty: bool = False) -> Comparison:
    """``vsbench compare``: resolve both references (:func:`resolve`), load the policy, compare."""
    rules = load_policy(policy)
    return compare_entries(resolve(store, baseline), resolve(store, candidate), rules, metrics, allow_empty)


# ------------------------------------------------------------------------------------------------ reports

def _fmt(value, spec: str = ".4g") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, spec)


def _z_text(z) -> str:
    z = _z_label(z)
    return OVERALL if z is None else str(z)


def summary(result: Comparison, limit: int = 20) -> str:
    """Terminal summary: the verdict, the regressions (at most ``limit``) and the notes."""
    lines = [result.verdict]
    for check in result.regressions[:limit]:
        lines.append(f"  FAIL {check.message}  [{check.rule.label}]")
    if len(result.regressions) > limit:
        lines.append(f"  ... and {len(result.regressions) - limit} more (see --markdown or --json)")
    lines += _notes(result)
    return "\n".join(lines)


def _notes(result: Comparison) -> list[str]:
    notes = [f"  note: rule matched no comparison: {r.label}" for r in result.unmatched]
    if result.n_baseline_only or result.n_candidate_only:
        notes.append(f"  note: unpaired cases left out: {result.n_baseline_only} baseline-only, "
                     f"{result.n_candidate_only} candidate-only (case x group x metric)")
    return notes


def to_markdown(result: Comparison) -> str:
    """Markdown report: the verdict on top, the policy checks (regressions first), then every comparison."""
    verdict = f"**{result.verdict}**"
    out = ["# vsbench compare", "", verdict, "",
           f"- baseline: {describe(result.baseline)}, split {result.baseline.split}, metrics "
           f"`{result.baseline.metrics_path}`",
           f"- candidate: {describe(result.candidate)}, split {result.candidate.split}, metrics "
           f"`{result.candidate.metrics_path}`",
           f"- paired cases: {result.pairs['case'].nunique()}; Wilcoxon signed-rank (two-sided), effect size: "
           "matched-pairs rank-biserial r (positive: candidate higher)"]
    out += [n.replace("  note:", "- note:") for n in _notes(result)]
    out += ["", "## Policy checks", "", "| status | rule | metric | group | z-deviation | n | mean diff | "
            "median diff | worse by | p | r |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for c in result.checks:
        cell = c.cell
        out.append(f"| {'FAIL' if c.regressed else 'pass'} | {c.rule.label} | {cell['metric']} | {cell['group']} | "
                   f"{_z_text(cell['z_deviation'])} | {cell['n']} | {_fmt(cell['mean_diff'], '+.4g')} | "
                   f"{_fmt(cell['median_diff'], '+.4g')} | {_fmt(cell['worse_by'], '+.4g')} | "
                   f"{_fmt(cell['p_value'], '.3g')} | {_fmt(cell['rank_biserial'], '+.2f')} |")
    out += ["", "## All comparisons (worst first)", "", "| metric | group | z-deviation | n | baseline | candidate | "
            "mean diff | median diff | worse by | p | r |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for cell in result.comparisons.sort_values("worse_by", ascending=False).to_dict("records"):
        out.append(f"| {cell['metric']} | {cell['group']} | {_z_text(cell['z_deviation'])} | {cell['n']} | "
                   f"{_fmt(cell['baseline_mean'])} | "
                   f"{_fmt(cell['candidate_mean'])} | {_fmt(cell['mean_diff'], '+.4g')} | "
                   f"{_fmt(cell['median_diff'], '+.4g')} | {_fmt(cell['worse_by'], '+.4g')} | "
                   f"{_fmt(cell['p_value'], '.3g')} | {_fmt(cell['rank_biserial'], '+.2f')} |")
    return "\n".join(out) + "\n"


def to_junit(result: Comparison) -> str:
    """JUnit XML: a test suite with one test case per rule x cell (a failure for each regression) and a
    skipped test case per rule that matched nothing."""
    suite = ET.Element("testsuite", name="vsbench compare", tests=str(len(result.checks) + len(result.unmatched)),
                       failures=str(len(result.regressions)), errors="0", skipped=str(len(result.unmatched)))
    props = ET.SubElement(suite, "properties")
    for name, entry in (("baseline", result.baseline), ("candidate", result.candidate)):
        ET.SubElement(props, "property", name=name, value=describe(entry))
    for check in result.checks:
        case = ET.SubElement(suite, "testcase", classname=f"vsbench.compare.{check.rule.label}", name=check.where)
        if check.regressed:
            failure = ET.SubElement(case, "failure", message=check.message, type="regression")
            failure.text = check.message
        else:
            ET.SubElement(case, "system-out").text = check.message
    for rule in result.unmatched:
        case = ET.SubElement(suite, "testcase", classname=f"vsbench.compare.{rule.label}", name="(no comparison)")
        ET.SubElement(case, "skipped", message="the rule matched no metric x group of these results")
    root = ET.Element("testsuites", name="vsbench compare", tests=suite.get("tests"), failures=suite.get("failures"))
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _clean(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return _clean(value.item())
    return value


def to_json(result: Comparison) -> dict:
    """A JSON-safe dict of the whole comparison (for --json)."""
    def entry(e: Entry) -> dict:
        return {"submission": e.submission, "version": e.version, "split": e.split,
                "split_hash": e.run.get("split_hash"), "run_key": e.run_key, "score_key": e.score_key,
                "metrics_path": str(e.metrics_path)}
    return {
        "verdict": result.verdict, "regressed": result.regressed, "exit_code": result.exit_code,
        "baseline": entry(result.baseline), "candidate": entry(result.candidate),
        "policy": [asdict(r) for r in result.rules],
        "unmatched_rules": [r.label for r in result.unmatched],
        "unpaired": {"baseline_only": result.n_baseline_only, "candidate_only": result.n_candidate_only},
        "checks": [{"rule": c.rule.label, "regressed": c.regressed, "message": c.message,
                    **{k: _clean(v) for k, v in c.cell.items()}} for c in result.checks],
        "comparisons": [{k: _clean(v) for k, v in row.items()} for row in result.comparisons.to_dict("records")],
    }
