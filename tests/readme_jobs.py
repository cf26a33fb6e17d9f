"""The README's job blocks as test scripts.

:func:`job_block` returns the one ```` ```bash ```` block under ``### N. ...`` of the README's "The three jobs";
:func:`commands` splits it into the commands a user types (backslash continuations joined, a here-document kept
with its command), each with the exit status the README expects (0 unless a trailing ``# exit N`` says
otherwise); :func:`run_job` runs them in order in one bash process, as a user pasting the block into a fresh shell
would, and returns what each command exited with. A command that exits otherwise than the README says stops the
job and fails the test with the transcript.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from cli_support import shell

README = Path(__file__).resolve().parents[1] / "README.md"
SECTION = "## The three jobs"
_EXIT = re.compile(r"#\s*exit\s+(\d+)\b")
_HEREDOC = re.compile(r"<<-?\s*['\"]?(\w+)['\"]?")
_MARK = "@@vsbench-readme-job@@"


@dataclass(frozen=True)
class Command:
    text: str  # as the README shows it (continuations and here-document included)
    expect: int  # the exit status the README says it has


def job_block(number: int, readme: Path = README) -> str:
    """The bash block of job ``number`` (1, 2, 3) of the README's "The three jobs"."""
    text = readme.read_text()
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    section = text[start:end if end != -1 else len(text)]
    parts = re.split(r"^### ", section, flags=re.M)
    heads = [p for p in parts[1:] if p.startswith(f"{number}. ")]
    if len(heads) != 1:
        raise AssertionError(f"README.md: no single '### {number}. ...' under {SECTION!r}")
    blocks = re.findall(r"^```bash\n(.*?)^```", heads[0], flags=re.M | re.S)
    if len(blocks) != 1:
        raise AssertionError(f"README.md: job {number} has {len(blocks)} bash blocks; one expected")
    return blocks[0]


def _comment_of(line: str) -> str:
    """The trailing comment of a shell line ('' if none); quotes respected."""
    quote, i = None, 0
    while i < len(line):
        ch = line[i]
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[i:]
        i += 1
    return ""


def commands(block: str) -> list[Command]:
    """The commands of a block, in order (comment-only and blank lines dropped)."""
    lines = block.splitlines()
    out, i = [], 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        text = [line]
        while text[-1].rstrip().endswith("\\") and i < len(lines):
            text.append(lines[i])
            i += 1
        heredoc = _HEREDOC.search(_strip_comment(text[-1]))
        if heredoc:
            while i < len(lines):
                text.append(lines[i])
                i += 1
                if text[-1].strip() == heredoc.group(1):
                    break
        match = _EXIT.search(_comment_of(text[-1] if not heredoc else text[0]))
        out.append(Command("\n".join(text), int(match.group(1)) if match else 0))
    return out


def _strip_comment(line: str) -> str:
    comment = _comment_of(line)
    return line[: len(line) - len(comment)] if comment else line


def script(cmds: list[Command]) -> str:
    """One bash script running ``cmds`` in order; after each it prints a marker line with the exit status and
    stops at the first that differs from the README's."""
    parts = []
    for n, cmd in enumerate(cmds):
        parts.append(f"{cmd.text}\nrc=$?\necho \"{_MARK} {n} $rc\" >&2\n"
                     f"if [ \"$rc\" -ne {cmd.expect} ]; then exit 99; fi\n")
    return "".join(parts)


def run_job(number: int, cwd: Path, env: dict[str, str] | None = None, timeout: float = 900):
    """Run job ``number``'s block in ``cwd``; returns ``(commands, exit statuses, CompletedProcess)``.
    Fails with the transcript when a command exits otherwise than the README says."""
    cmds = commands(job_block(number))
    proc = shell(script(cmds), cwd=cwd, env=env, timeout=timeout, expect=None)
    statuses = {int(n): int(rc) for n, rc in re.findall(rf"^{re.escape(_MARK)} (\d+) (\d+)$", proc.stderr, re.M)}
    transcript = "\n".join(f"$ {c.text}\n  -> exit {statuses.get(k, 'not run')} (README: {c.expect})"
                           for k, c in enumerate(cmds))
    if proc.returncode != 0 or len(statuses) != len(cmds):
        raise AssertionError(f"README job {number} failed in {cwd}:\n{transcript}\n--- stdout ---\n"
                             f"{proc.stdout[-5000:]}\n--- stderr ---\n{proc.stderr[-5000:]}")
    return cmds, [statuses[k] for k in range(len(cmds))], proc
