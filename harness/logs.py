"""The logs a runtime keeps (``PREDICTIONS/logs/``), and how a run's failures and untrusted log text are shown.

A container's stdout and stderr (and the reason taken from its last line) are untrusted text: a hostile image
can write terminal escape sequences that move the cursor, retitle or clear the terminal, hide lines, or a NUL.
:func:`escape_control` shows every control character escaped (``\\x1b``, ``\\x00``, ``\\r``); use it on anything
of a run that is printed (:func:`log_tail` does).

The paths of the logs are recorded absolute in ``run.json`` (``cases[].stdout`` / ``stderr`` and ``runs[]``) and
in the results database; a runtime writes them into a partial folder that the runner renames (or merges, for
``--retry-failed``) into the run's final folder, so :func:`relocate_logs` rewrites them to where they end up.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

TAIL_LINES = 5
TAIL_BYTES = 64 * 1024  # read at most this much of the end of a log
# C0 controls, DEL, C1 controls, and the Unicode controls that reorder or hide text (bidi overrides and isolates,
# line and paragraph separators)
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\t": "\\t", "\r": "\\r", "\n": "\\n"}


def _escaped(match: re.Match) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    return f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"


def escape_control(text: str | None) -> str:
    """``text`` with every control character shown escaped (``\\x1b``, ``\\x00``, ``\\t``, ``\\r``, ``\\n``,
    ``\\u202e``), safe to print on a terminal; '' for None."""
    return "" if text is None else _CONTROL.sub(_escaped, str(text))


def log_tail(path: Path | str | None, lines: int = TAIL_LINES) -> list[str]:
    """The last ``lines`` non-empty lines of the log file ``path``, escaped (:func:`escape_control`; bytes that
    are not UTF-8 as ``\\xNN``); [] when there is no such file."""
    if not path:
        return []
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(size - TAIL_BYTES, 0))
            data = fh.read()
    except OSError:
        return []
    text = data.decode("utf-8", "backslashreplace")
    kept = [line for line in text.split("\n") if line.strip()]
    return [escape_control(line) for line in kept[-lines:]]


def relocate_logs(record: dict, mapping: Callable[[str], str | None]) -> dict:
    """Rewrite the log paths of a ``run.json`` record in place (``cases[].stdout``/``stderr``,
    ``runs[].stdout``/``stderr``) with ``mapping`` (old path -> new path, or None to keep it); returns it."""
    for entry in [*record.get("cases", []), *record.get("runs", [])]:
        for key in ("stdout", "stderr"):
            old = entry.get(key)
            if old:
                new = mapping(old)
                if new is not None:
                    entry[key] = new
    return record


def moved(old_root: Path | str, new_root: Path | str) -> Callable[[str], str | None]:
    """A :func:`relocate_logs` mapping for a folder renamed from ``old_root`` to ``new_root``."""
    old_root, new_root = Path(old_root), Path(new_root)

    def mapping(path: str) -> str | None:
        try:
            return str(new_root / Path(path).relative_to(old_root))
        except ValueError:
            return None
    return mapping


def run_reason(cases: list[dict]) -> str | None:
    """Why a run's cases did not succeed, in one line (raw: escape it to print it): the most common
    ``status: reason`` (and how many other reasons there are); None when every case succeeded."""
    from collections import Counter

    bad = Counter(f"{c['status']}: {c.get('reason') or 'no reason given'}" for c in cases
                  if c["status"] != "succeeded")
    if not bad:
        return None
    (top, _), others = bad.most_common(1)[0], len(bad) - 1
    return top + (f" (and {others} other reason{'s' if others > 1 else ''})" if others else "")
