"""Stored runs by what a reader can type: ``NAME@VERSION`` (``model@v1``), a run key or a unique prefix of it, or
a bare ``NAME`` stored at one version only; ``--benchmark`` and ``--split`` narrow the runs looked at.

Used by ``vsbench results show`` and ``vsbench compare``. Every miss is one line (:class:`RunSelectionError`,
a :class:`ValueError`) that lists the runs the selector could have meant, as ``name@version on split
(run key prefix)``, with ``in BENCHMARK`` where they span benchmarks.
"""

from __future__ import annotations

__all__ = ["RunSelectionError", "describe_runs", "run_label", "scope_runs", "select_run", "select_runs"]


class RunSelectionError(ValueError):
    """A selector that picks no stored run, or several (one line, with the candidates)."""


def run_label(submission: str, version: str | None) -> str:
    """How a submission is named wherever it is shown: ``name@version`` (``model@v1`` and ``model@v2`` are two
    submissions), or the bare name when there is no version."""
    return f"{submission}@{version}" if version not in (None, "") else str(submission)


def _candidate(row: dict, with_benchmark: bool) -> str:
    where = f" in {row['benchmark']}" if with_benchmark else ""
    return (f"{run_label(row['submission'], row.get('submission_version'))} on {row.get('split_name')}{where} "
            f"({row['run_key'][:12]})")


def describe_runs(rows: list[dict], limit: int = 8) -> str:
    """``name@version on split [in benchmark] (run key prefix)`` of each row (at most ``limit``), one line."""
    several = len({r["benchmark"] for r in rows}) > 1
    rows = sorted(rows, key=lambda r: (r["benchmark"], r["submission"], str(r.get("submission_version")),
                                       str(r.get("split_name")), r["run_key"]))
    shown = [_candidate(r, several) for r in rows[:limit]]
    return ", ".join(shown) + (f" and {len(rows) - limit} more" if len(rows) > limit else "")


def scope_runs(store, benchmark: str | None = None, split: str | None = None) -> list[dict]:
    """The stored runs of ``benchmark`` on ``split`` (None: all), newest first; :class:`ValueError` naming the
    known ones when either selects nothing."""
    runs = store.list_runs(benchmark=benchmark)
    if benchmark is not None and not runs:
        known = sorted({r["benchmark"] for r in store.list_runs()})
        raise ValueError(f"no stored runs of benchmark {benchmark!r} (benchmarks: {', '.join(known) or 'none'})")
    if split is not None:
        on = [r for r in runs if r.get("split_name") == split]
        if not on:
            known = sorted({str(r.get("split_name")) for r in runs})
            of = f" of benchmark {benchmark!r}" if benchmark is not None else ""
            raise ValueError(f"no stored runs on split {split!r}{of} (splits: {', '.join(known) or 'none'})")
        runs = on
    return runs


def select_runs(runs: list[dict], ref: str) -> tuple[list[dict], list[dict]]:
    """The runs ``ref`` selects (``NAME@VERSION``, a run key prefix, else a bare NAME) and, for an error, the
    runs it could have meant."""
    name, at, version = ref.partition("@")
    if at:
        same_name = [r for r in runs if r["submission"] == name]
        return [r for r in same_name if (r.get("submission_version") or "") == version], same_name or runs
    by_key = [r for r in runs if r["run_key"].startswith(ref)]
    if by_key:
        return by_key, by_key
    same_name = [r for r in runs if r["submission"] == ref]
    return same_name, same_name or runs


def select_run(store, ref: str, benchmark: str | None = None, split: str | None = None,
               otherwise: str = "") -> dict:
    """The one stored run (a ``list_runs`` row) that ``ref`` selects among those of ``benchmark`` on ``split``;
    :class:`RunSelectionError` when it selects several (saying what narrows it) or none (``otherwise``, e.g.
    ``" nor a metrics.json"``, ends the 'is neither ...' message of a selector that is no NAME@VERSION)."""
    matches, near = select_runs(scope_runs(store, benchmark, split), ref)
    if len(matches) == 1:
        return matches[0]
    scope = "".join(f" {what} {value!r}" for what, value in (("of benchmark", benchmark), ("on split", split))
                    if value is not None)
    if len(matches) > 1:
        def differ(key) -> bool:
            return len({key(r) for r in matches}) > 1
        hint = " and ".join(h for h, key in (("NAME@VERSION", lambda r: r.get("submission_version")),
                                              ("--benchmark NAME", lambda r: r["benchmark"]),
                                              ("--split NAME", lambda r: r.get("split_name"))) if differ(key))
        raise RunSelectionError(f"{ref!r} is ambiguous: it matches {len(matches)} stored runs{scope}: "
                                f"{describe_runs(matches)}; narrow it with {hint or 'a run key prefix'}")
    could = f" (candidates: {describe_runs(near)})" if near else ""
    if "@" in ref:
        raise RunSelectionError(f"{ref!r} matches no stored run{scope}{could}")
    raise RunSelectionError(f"{ref!r} is neither a stored run key, NAME@VERSION{scope}{otherwise}{could}")
