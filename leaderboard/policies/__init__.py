"""Regression policies shipped with vsbench (package data): ``vsbench compare ... --policy NAME``, NAME the stem of
one of this folder's YAML files (``default``), works from any folder.

No imports beyond the standard library: the compare parser lists :func:`names` in its help.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["ROOT", "names", "resolve"]

ROOT = Path(__file__).resolve().parent


def names() -> list[str]:
    """The shipped policies' names (file stems), sorted."""
    return sorted(p.stem for p in ROOT.glob("*.yaml"))


def resolve(policy: str | Path) -> Path:
    """The policy file ``policy`` names: an existing file as given, else the shipped policy of that name;
    :class:`ValueError` (one line, listing the shipped names) when it is neither."""
    path = Path(policy).expanduser()
    if path.is_file():
        return path
    if str(policy) in names():
        return ROOT / f"{policy}.yaml"
    raise ValueError(f"--policy {policy}: no such file, nor a shipped policy (shipped: {', '.join(names())}; or give "
                     "a policy YAML file)")
