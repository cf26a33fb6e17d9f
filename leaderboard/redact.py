"""What a published site may not show: the local paths and credentials of the machine that built it.

Every text the site writes (each value of a page, each string of a JSON or CSV export) passes through
:func:`redact_text`: an absolute path is cut to its last component (``/home/org/data/lmc/test`` -> ``…/test``),
a URL keeps its scheme and host but loses its password and path (``postgresql://u:s3cret@db/x`` ->
``postgresql://u:***@db/…``), and control characters are escaped. :func:`redact_json` does it throughout a
JSON document.
"""

from __future__ import annotations

import re

from vsbench.harness.logs import escape_control

_URL = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://)(?:([^\s:/@]*)(?::[^\s/@]*)?@)?([^\s/?#]*)([^\s\"'<>]*)")
# an absolute POSIX path: '/' not preceded by a word character, '.', ':' or '/', then at least two components
# (so '1/2', 'n/a', '</td>' and relative paths are left alone), or a home path '~/...', or a Windows path
_PATH = re.compile(r"(?<![\w.:/~-])(?:~?/)(?:[^\s/\"'<>|]+/)+([^\s/\"'<>|,;)]*)|\b[A-Za-z]:\\(?:[^\s\\\"'<>]+\\)*"
                   r"([^\s\\\"'<>,;)]*)")


def _url(match: re.Match) -> str:
    scheme, user, host, rest = match.groups()
    if scheme.lower().startswith("file"):
        return "…/" + rest.rstrip("/").rsplit("/", 1)[-1] if rest else scheme + "…"
    credentials = f"{user}:***@" if user is not None else ""
    return f"{scheme}{credentials}{host}" + ("/…" if rest.strip("/") else rest)


def _path(match: re.Match) -> str:
    last = match.group(1) if match.group(1) is not None else match.group(2)
    return "…/" + (last or "")


def redact_text(text: object) -> str:
    """``text`` with every URL's password and path, every absolute local path and every control character
    hidden (module docstring); '' for None."""
    if text is None:
        return ""
    text = escape_control(str(text))
    parts, last = [], 0
    for m in _URL.finditer(text):  # URLs first, so that their paths are not taken for local paths
        parts.append(_PATH.sub(_path, text[last:m.start()]))
        parts.append(_url(m))
        last = m.end()
    parts.append(_PATH.sub(_path, text[last:]))
    return "".join(parts)


def redact_json(value):
    """A copy of a JSON-like value with :func:`redact_text` applied to every string (keys included)."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {redact_text(k): redact_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_json(v) for v in value]
    return value
