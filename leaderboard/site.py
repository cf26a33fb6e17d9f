"""Writing a static leaderboard site: pages, exports, figures and image panels, all under one folder.

:class:`Site` is what the pages of :mod:`vsbench.leaderboard.publish` are written through. Every text it writes
is redacted (:func:`vsbench.leaderboard.redact.redact_text`: no local path, no credential, no control character)
and every page value is HTML-escaped (Jinja2 autoescape); links are relative, and the stylesheet and the
table-sorting script are files of the site, so it works offline, from ``file://`` and hosted as is.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from hashlib import sha1
from pathlib import Path

import numpy as np
import pandas as pd

from vsbench.leaderboard import figures
from vsbench.leaderboard.redact import redact_json, redact_text

TEMPLATES = Path(__file__).resolve().parent / "templates"
STATIC = ("site.css", "site.js")  # in TEMPLATES; copied into every site
MODES = ("public", "private")


def slug(text: str) -> str:
    """A file-name-safe form of ``text``; a short hash is added when characters had to be replaced, so two
    different texts never share a slug."""
    safe = re.sub(r"[^A-Za-z0-9._@-]+", "-", text).strip("-.") or "x"
    return safe if safe == text else f"{safe}-{sha1(text.encode()).hexdigest()[:6]}"


def cell(value, swatch: str | None = None, href: str | None = None, sort=None, digits: int = 4) -> dict:
    """One table cell: ``text`` (numbers to ``digits`` significant digits, '–' for a missing one), ``sort`` (the raw
    value the table sorts by), ``num`` (right-aligned), and optionally a colour ``swatch`` and a link."""
    if isinstance(value, (bool, np.bool_)):
        value = str(bool(value)).lower()
    if isinstance(value, (int, np.integer)):
        text, key, num = str(int(value)), int(value), True
    elif isinstance(value, (float, np.floating)):
        finite = math.isfinite(float(value))
        text, key, num = (f"{float(value):.{digits}g}" if finite else "–"), (float(value) if finite else ""), True
    elif value is None or (isinstance(value, str) and value == ""):
        text, key, num = "–", "", False
    else:
        text, key, num = str(value), str(value), False
    return {"text": text, "sort": key if sort is None else sort, "num": num, "swatch": swatch, "href": href}


def _redact_value(value):
    """Jinja2 ``finalize``: every value a page prints is redacted; markup (a macro's output, whose own values
    were redacted as it was rendered) passes as it is."""
    from markupsafe import Markup

    return value if isinstance(value, Markup) else redact_text(value)


class Site:
    """A site being written into ``out`` in ``mode`` (``public``: for participants; ``private``: for
    organisers), with one style per entry (``styles``, :func:`vsbench.leaderboard.figures.entry_styles`)."""

    def __init__(self, out: Path | str, mode: str, styles: dict[str, dict]):
        import jinja2

        if mode not in MODES:
            raise ValueError(f"site mode {mode!r}: one of {', '.join(MODES)}")
        self.out = Path(out)
        self.mode = mode
        self.styles = styles
        self.out.mkdir(parents=True, exist_ok=True)
        self.env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                                      finalize=_redact_value, undefined=jinja2.StrictUndefined)
        for name in STATIC:
            shutil.copyfile(TEMPLATES / name, self.out / name)

    @property
    def public(self) -> bool:
        return self.mode == "public"

    def path(self, rel: str) -> Path:
        target = self.out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def write_json(self, rel: str, obj) -> str:
        """Write ``obj`` (redacted) as JSON at ``rel``; returns ``rel``."""
        self.path(rel).write_text(json.dumps(redact_json(json.loads(json.dumps(obj, default=str))), indent=1,
                                             allow_nan=True) + "\n")
        return rel

    def write_csv(self, rel: str, frame: pd.DataFrame) -> str:
        """Write ``frame`` (every text cell redacted) as CSV at ``rel``; returns ``rel``."""
        frame = frame.copy()
        for column in frame.columns:
            if frame[column].dtype == object:
                frame[column] = [redact_text(v) if isinstance(v, str) else v for v in frame[column]]
        frame.columns = [redact_text(c) for c in frame.columns]
        frame.to_csv(self.path(rel), index=False)
        return rel

    def render(self, template: str, rel: str, **context) -> Path:
        """Render ``template`` into the page ``rel``; ``root`` (the way back to the site's top folder) is given."""
        depth = rel.count("/")
        html = self.env.get_template(template).render(root="../" * depth, mode=self.mode, **context)
        target = self.path(rel)
        target.write_text(html)
        return target

    def figure(self, fig, rel: str, alt: str, caption: str) -> dict:
        """Save a matplotlib figure at ``rel``: its ``src``, ``alt``, ``caption`` and ``legend`` (the entries its
        legend shows, for the page's ``data-legend``)."""
        legend = figures.legend_entries(fig)
        figures.save(fig, self.path(rel))
        return {"src": rel, "alt": alt, "caption": caption, "legend": legend}

    def image(self, image: np.ndarray | None, rel: str, label: str, kind: str, lo: float | None = None,
              hi: float | None = None) -> dict | None:
        """A greyscale panel of ``image`` at ``rel`` (None for no image): ``src``, ``label``, ``kind``
        (``input``, ``truth``, ``prediction``, ``difference``) and ``note`` (e.g. that the image is constant)."""
        if image is None:
            return None
        info = figures.image_panel(np.squeeze(image), self.path(rel), lo=lo, hi=hi)
        note = f"constant image: every pixel {info['value']:.4g}" if info.get("constant") and \
            info.get("value") is not None else ("constant image" if info.get("constant") else "")
        return {"src": rel, "label": label, "kind": kind, "note": note}

    def difference(self, diff: np.ndarray | None, rel: str, label: str) -> dict | None:
        """A diverging panel of prediction minus ground truth at ``rel`` (None for no difference)."""
        if diff is None:
            return None
        info = figures.difference_panel(np.squeeze(diff), self.path(rel))
        note = "no difference anywhere" if info.get("constant") else \
            f"scale ±{info['limit']:.3g} (orange: prediction too bright, purple: too dark)"
        return {"src": rel, "label": label, "kind": "difference", "note": note}
