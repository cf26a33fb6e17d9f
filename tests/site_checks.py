"""What every page of a published leaderboard site must pass in a real headless Chromium at 1280 px: no console
error, every image loaded, nothing wider than the page (a wide table may scroll inside its own box), every link
resolving to a file of the site (and its #fragment to an element there), every entry of the board in every plot's
legend; and, read from the files, no local path and no credential anywhere in the site."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote, urlparse

WIDTH = 1280

_OVERFLOW = """
const limit = window.innerWidth + 0.5, out = [];
if (document.documentElement.scrollWidth > window.innerWidth) out.push('page scrolls: ' +
    document.documentElement.scrollWidth);
for (const el of document.body.querySelectorAll('*')) {
  if (el.closest('.scroll') && !el.classList.contains('scroll')) continue;  // a wide table scrolls in its box
  const r = el.getBoundingClientRect();
  if (r.width > 0 && (r.right > limit || r.left < -0.5)) out.push(el.tagName + '.' + el.className + ' ' +
      Math.round(r.left) + '..' + Math.round(r.right));
}
return out;"""


def open_page(browser, page: Path) -> None:
    """Load ``page`` at 1280 px wide, with the console log emptied first."""
    browser.set_window_size(WIDTH + 20, 1000)
    width = browser.execute_script("return window.innerWidth")
    browser.set_window_size(WIDTH + 20 + (WIDTH - width), 1000)  # the viewport, not the window, is 1280 px
    browser.get_log("browser")
    browser.get(page.as_uri())


def page_problems(browser, page: Path, site: Path) -> list[str]:
    """Everything wrong with ``page`` of the site folder ``site``, as one line each ([] when it passes)."""
    open_page(browser, page)
    problems = [f"console: {e['message']}" for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert browser.execute_script("return window.innerWidth") == WIDTH
    broken = browser.execute_script(
        "return Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)")
    problems += [f"image does not load: {src}" for src in broken]
    problems += [f"overflows {WIDTH} px: {what}" for what in browser.execute_script(_OVERFLOW)]
    for href in browser.execute_script("return Array.from(document.querySelectorAll('a[href]')).map(a => a.href)"):
        url = urlparse(href)
        if url.scheme != "file":
            problems.append(f"link leaves the site: {href}")
            continue
        target = Path(unquote(url.path))
        if not target.is_file():
            problems.append(f"broken link: {href}")
        elif site.resolve() not in target.resolve().parents:
            problems.append(f"link outside the site: {href}")
        elif url.fragment and f'id="{url.fragment}"' not in target.read_text(errors="replace"):
            problems.append(f"no #{url.fragment} in {target.name}")
    return problems


def legends(browser) -> list[list[str]]:
    """The entries of every plot's legend on the open page (``data-legend`` of each figure)."""
    return browser.execute_script(
        "return Array.from(document.querySelectorAll('figure.plot')).map(f => f.dataset.legend.split('|'))")


def board_entries(browser) -> list[str]:
    """The entries of the open page's ranked tables, in the order shown."""
    return browser.execute_script(
        "return Array.from(document.querySelectorAll('table.leaderboard tbody tr')).map(r => r.dataset.entry)")


def leaks(site: Path, secrets: list[str]) -> list[str]:
    """Files of ``site`` holding any of ``secrets`` or an absolute path under /tmp, /root or /home."""
    found = []
    pattern = re.compile(r"(?<![\w.:/~-])/(?:tmp|root|home|work|var|private)/[^\s\"'<>]+")
    for path in site.rglob("*"):
        if path.suffix not in (".html", ".json", ".csv", ".js", ".css", ".txt"):
            continue
        text = path.read_text(errors="replace")
        found += [f"{path.relative_to(site)}: {s!r}" for s in secrets if s and s in text]
        found += [f"{path.relative_to(site)}: {m}" for m in pattern.findall(text)[:3]]
    return found
